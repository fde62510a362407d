"""Faithfulness of a saliency map: does the model's score follow the pixels the map points at?

One protocol for every function here (stated once, relied on by the tests):

* everything happens at the model's input resolution, on the **resized RGB uint8 image before
  preprocess** (:func:`cam_widget.imaging.resize_to`, exactly what the engine feeds its
  ``preprocess``): perturbations are model-agnostic and cheap;
* the saliency is the raw map (``engine.cam(image, class_index, layer, method)`` unless one is
  given) **upsampled bilinearly** to the input size; pixels are ranked by decreasing saliency and ties
  keep raster order (:func:`cam_widget.metrics.scoring.removal_order`);
* scores are the model's **probability** for the class (the engine's own softmax/sigmoid); the
  pre-softmax **logit** variant is reported next to it;
* every perturbed image of one call goes through the model in batched forward passes
  (``engine.features_many(images, [], cache=False)``), nothing is cached;
* every report carries the same metric for a **seeded random map** of the raw map's resolution
  (``random``), so a number has something to be compared with.

Metrics:

* :func:`deletion_insertion` - RISE (Petsiuk et al., BMVC 2018): remove pixels in order of decreasing
  saliency (deletion, lower area is better) or insert them into a blurred copy (insertion, higher
  is better); areas by the trapezoid rule over the fraction of pixels changed, in [0, 1].
* :func:`confidence_change` - Average Drop / Increase in Confidence (Chattopadhay et al., WACV 2018):
  the score on the image multiplied by the normalised map, against the score on the image.
* :func:`road` - ROAD (Rong et al., ICML 2022): remove the most (MoRF) or least (LeRF) relevant
  10..90 % of pixels and fill them by noisy linear imputation, which leaks far less of the removed
  shape than a constant fill, so the model is not judged on out-of-distribution artefacts.

The engine is only used through its public API (``cam``, ``features_many``, ``input_size``,
``num_classes``, ``probability``, ``prepare``): no Keras import here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ClassIndexError
from ..imaging import resize_to
from ..render import normalize_cam
from .scoring import (
    Baseline,
    MetricInputError,
    auc,
    baseline_image,
    check_steps,
    mix_in,
    noisy_linear_imputation,
    probabilities,
    random_saliency,
    removal_order,
    saliency_at,
    step_counts,
)

__all__ = [
    "ROAD_PERCENTILES",
    "ConfidenceReport",
    "DeletionInsertionReport",
    "ROADReport",
    "check_class_index",
    "confidence_change",
    "deletion_insertion",
    "road",
]

#: ROAD's fixed percentiles of pixels removed.
ROAD_PERCENTILES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)


# ------------------------------------------------------------------------------ shared set-up


@dataclass
class _Subject:
    """The image at input size, the class, and the saliency (raw and upsampled) a metric works on."""

    rgb: np.ndarray
    class_index: int
    raw: np.ndarray
    saliency: np.ndarray
    random_raw: np.ndarray


def check_class_index(engine: Any, class_index: Any) -> int:
    """``class_index`` as an int in ``0 .. engine.num_classes - 1``, else :class:`ClassIndexError` with the fix."""
    n = int(engine.num_classes)
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
        raise ClassIndexError(
            f"class_index must be an int; got {class_index!r}. Find indices with engine.top_k(image)."
        )
    if not 0 <= int(class_index) < n:
        raise ClassIndexError(f"class_index {class_index} is out of range: the model has {n} classes (0..{n - 1}).")
    return int(class_index)


def _subject(
    engine: Any,
    image: Any,
    class_index: Any,
    saliency: Any,
    layer: str | None,
    method: str,
    method_options: Mapping[str, Any] | None,
    seed: int,
) -> _Subject:
    cls = check_class_index(engine, class_index)
    _, rgb = engine.prepare(image)
    size = tuple(int(s) for s in engine.input_size)
    small = resize_to(rgb, size)
    if saliency is None:
        raw = np.asarray(engine.cam(rgb, cls, layer=layer, method=method, **dict(method_options or {})))
    else:
        raw = np.asarray(saliency)
    full = saliency_at(raw, size)
    rnd = random_saliency(raw.shape[:2] if raw.ndim >= 2 else raw.shape, seed)
    return _Subject(small, cls, raw, full, rnd)


def _class_scores(engine: Any, images: np.ndarray | list[np.ndarray], cls: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, logits)`` of class ``cls`` for each image, in batched uncached passes."""
    logits, _ = engine.features_many(list(images), [], cache=False, batch_size=batch_size)
    logits = np.asarray(logits, np.float64)
    probs = probabilities(logits, getattr(engine, "probability", "softmax"))
    return probs[:, cls], logits[:, cls]


def _floats(a: Any) -> list[float]:
    return [float(v) for v in np.asarray(a, np.float64).ravel()]


# ------------------------------------------------------------------------- deletion/insertion


@dataclass
class DeletionInsertionReport:
    """RISE deletion and insertion curves of one map (and, in ``random``, of a seeded random map).

    ``deletion_auc`` (lower is better) and ``insertion_auc`` (higher is better) are trapezoid areas of
    the class probability over the fraction of pixels changed, in [0, 1]; ``*_auc_logit`` the same for
    the logit (not bounded).  Curves have ``steps + 1`` points at ``fractions``.
    """

    class_index: int
    steps: int
    fractions: list[float]
    deletion_curve: list[float]
    insertion_curve: list[float]
    deletion_logits: list[float]
    insertion_logits: list[float]
    deletion_auc: float
    insertion_auc: float
    deletion_auc_logit: float
    insertion_auc_logit: float
    deletion_baseline: str
    insertion_baseline: str
    random: DeletionInsertionReport | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def gain_over_random(self) -> dict[str, float]:
        """How much better than the random map: ``deletion`` (random AUC - AUC) and ``insertion``
        (AUC - random AUC); positive is better for both."""
        if self.random is None:
            return {}
        return {
            "deletion": self.random.deletion_auc - self.deletion_auc,
            "insertion": self.insertion_auc - self.random.insertion_auc,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the random report nested under ``random``)."""
        out = asdict(self)
        out["gain_over_random"] = self.gain_over_random
        return out


def _baseline_label(baseline: Baseline) -> str:
    return baseline if isinstance(baseline, str) else ("image" if isinstance(baseline, np.ndarray) else f"grey {baseline}")


def deletion_insertion(
    engine: Any,
    image: Any,
    class_index: int,
    saliency: Any = None,
    layer: str | None = None,
    method: str = "cam",
    steps: int = 32,
    deletion_baseline: Baseline = "zeros",
    insertion_baseline: Baseline = "blur",
    *,
    random_baseline: bool = True,
    seed: int = 0,
    batch_size: int = 64,
    method_options: Mapping[str, Any] | None = None,
) -> DeletionInsertionReport:
    """RISE's deletion and insertion metrics (Petsiuk et al., BMVC 2018) for one map.

    Deletion replaces the most salient pixels first with ``deletion_baseline`` (default black);
    insertion starts from ``insertion_baseline`` (default RISE's Gaussian blur, 11 x 11, sigma 5) and
    puts the most salient original pixels back first.  ``steps`` intervals give ``steps + 1`` images
    per curve (``2 * (steps + 1)`` in all, twice that with the random baseline), scored in batched
    forward passes of ``batch_size``.  See the module docstring for the protocol.

    Args:
        engine: a :class:`cam_widget.CAMEngine`.
        image: anything the engine accepts (RGB uint8 array, path, bytes).
        class_index: the class whose probability is followed.
        saliency: a raw 2-D map covering the image (any resolution); ``None`` computes
            ``engine.cam(image, class_index, layer=layer, method=method, **method_options)``.
        deletion_baseline, insertion_baseline: ``"zeros"``, ``"blur"``, ``"mean"``, a grey level or
            an RGB uint8 image of the input size.
        random_baseline: also score a seeded random map (``report.random``), same resolution.
    """
    steps = check_steps(steps)
    sub = _subject(engine, image, class_index, saliency, layer, method, method_options, seed)
    deleted = baseline_image(sub.rgb, deletion_baseline)
    blurred = baseline_image(sub.rgb, insertion_baseline)
    n = sub.rgb.shape[0] * sub.rgb.shape[1]
    counts = step_counts(n, steps)
    fractions = counts / n
    maps = [sub.saliency]
    if random_baseline:
        maps.append(saliency_at(sub.random_raw, sub.rgb.shape[:2]))
    series = []
    for sal in maps:
        order = removal_order(sal)
        series += [mix_in(sub.rgb, deleted, order, counts), mix_in(blurred, sub.rgb, order, counts)]
    probs, logits = _class_scores(engine, np.concatenate(series), sub.class_index, batch_size)
    k = steps + 1
    settings = {"method": method if saliency is None else "given", "layer": layer, "seed": seed}

    def report(j: int, rnd: DeletionInsertionReport | None) -> DeletionInsertionReport:
        dp, ip = probs[2 * j * k : (2 * j + 1) * k], probs[(2 * j + 1) * k : (2 * j + 2) * k]
        dl, il = logits[2 * j * k : (2 * j + 1) * k], logits[(2 * j + 1) * k : (2 * j + 2) * k]
        return DeletionInsertionReport(
            class_index=sub.class_index, steps=steps, fractions=_floats(fractions),
            deletion_curve=_floats(dp), insertion_curve=_floats(ip),
            deletion_logits=_floats(dl), insertion_logits=_floats(il),
            deletion_auc=auc(fractions, dp), insertion_auc=auc(fractions, ip),
            deletion_auc_logit=auc(fractions, dl), insertion_auc_logit=auc(fractions, il),
            deletion_baseline=_baseline_label(deletion_baseline), insertion_baseline=_baseline_label(insertion_baseline),
            random=rnd, settings=dict(settings),
        )  # fmt: skip

    rnd = report(1, None) if random_baseline else None
    return report(0, rnd)


# ---------------------------------------------------------------------------- confidence change


@dataclass
class ConfidenceReport:
    """Chattopadhay et al.'s confidence change for one image and map.

    ``score`` is the class probability on the image, ``masked_score`` on the image multiplied by the
    map (ReLU, min-max normalised to [0, 1], upsampled).  ``drop = max(0, score - masked_score) /
    score`` (Average Drop is its mean over images, in %; lower is better); ``increase`` is
    ``masked_score > score`` (Increase in Confidence is the share of images where it holds; higher is
    better).  ``*_logit`` give the logits.  ``random`` is the same for a seeded random map.
    """

    class_index: int
    score: float
    masked_score: float
    drop: float
    increase: bool
    score_logit: float
    masked_logit: float
    random: ConfidenceReport | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the random report nested under ``random``)."""
        return asdict(self)


def _explanation_image(rgb: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """``E = L ∘ I``: the image weighted per pixel by the map normalised to [0, 1] (negative evidence 0)."""
    unit = normalize_cam(saliency.astype(np.float32), "minmax", relu=True).astype(np.float64)
    return np.clip(np.rint(rgb * unit[..., None]), 0, 255).astype(np.uint8)


def confidence_change(
    engine: Any,
    image: Any,
    class_index: int,
    saliency: Any = None,
    layer: str | None = None,
    method: str = "cam",
    *,
    random_baseline: bool = True,
    seed: int = 0,
    method_options: Mapping[str, Any] | None = None,
) -> ConfidenceReport:
    """Drop / increase in confidence when the model sees only what the map shows (Chattopadhay et al.,
    WACV 2018, "Grad-CAM++"), for one image: one batched pass of 2 images (4 with the random baseline).
    Arguments as in :func:`deletion_insertion`."""
    sub = _subject(engine, image, class_index, saliency, layer, method, method_options, seed)
    batch = [sub.rgb, _explanation_image(sub.rgb, sub.saliency)]
    if random_baseline:
        batch.append(_explanation_image(sub.rgb, saliency_at(sub.random_raw, sub.rgb.shape[:2])))
    probs, logits = _class_scores(engine, batch, sub.class_index, len(batch))
    settings = {"method": method if saliency is None else "given", "layer": layer, "seed": seed}

    def report(j: int, rnd: ConfidenceReport | None) -> ConfidenceReport:
        y, o = float(probs[0]), float(probs[j])
        return ConfidenceReport(
            class_index=sub.class_index, score=y, masked_score=o,
            drop=max(0.0, y - o) / y if y > 0 else 0.0, increase=bool(o > y),
            score_logit=float(logits[0]), masked_logit=float(logits[j]),
            random=rnd, settings=dict(settings),
        )  # fmt: skip

    return report(1, report(2, None) if random_baseline else None)


# ----------------------------------------------------------------------------------------- ROAD


@dataclass
class ROADReport:
    """ROAD (Rong et al., ICML 2022) curves at ``percentiles`` of pixels removed and imputed.

    ``morf`` (most relevant first; lower is better) and ``lerf`` (least relevant first; higher is
    better) are the class probability at each percentile; ``morf_mean`` / ``lerf_mean`` their means;
    ``combined = mean(lerf - morf) / 2`` (higher is better; pytorch-grad-cam's ROADCombined).
    ``*_logits`` give the logits, ``score`` the probability on the untouched image.
    """

    class_index: int
    percentiles: list[int]
    score: float
    morf: list[float]
    lerf: list[float]
    morf_logits: list[float]
    lerf_logits: list[float]
    morf_mean: float
    lerf_mean: float
    combined: float
    noise: float
    random: ROADReport | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def gain_over_random(self) -> dict[str, float]:
        """``morf`` (random - map), ``lerf`` (map - random), ``combined`` (map - random): positive is better."""
        if self.random is None:
            return {}
        return {
            "morf": self.random.morf_mean - self.morf_mean,
            "lerf": self.lerf_mean - self.random.lerf_mean,
            "combined": self.combined - self.random.combined,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the random report nested under ``random``)."""
        out = asdict(self)
        out["gain_over_random"] = self.gain_over_random
        return out


def _check_percentiles(percentiles: Sequence[Any]) -> list[int]:
    try:
        vals = [int(p) for p in percentiles]
    except (TypeError, ValueError):
        raise MetricInputError(f"percentiles must be integers in 1..99; got {percentiles!r}.") from None
    if not vals or any(not 0 < p < 100 for p in vals) or any(float(p) != float(q) for p, q in zip(vals, percentiles, strict=True)):
        raise MetricInputError(f"percentiles must be a non-empty list of integers in 1..99; got {percentiles!r}.")
    return vals


def road(
    engine: Any,
    image: Any,
    class_index: int,
    saliency: Any = None,
    layer: str | None = None,
    method: str = "cam",
    percentiles: Sequence[int] = ROAD_PERCENTILES,
    noise: float = 0.01,
    *,
    random_baseline: bool = True,
    seed: int = 0,
    batch_size: int = 64,
    method_options: Mapping[str, Any] | None = None,
) -> ROADReport:
    """ROAD's MoRF and LeRF curves for one map (Rong et al., ICML 2022, "A Consistent and Efficient
    Evaluation Strategy for Attribution Methods").

    For each percentile ``p`` the top (MoRF) or bottom (LeRF) ``p`` % of pixels by saliency are removed
    and filled by :func:`cam_widget.metrics.scoring.noisy_linear_imputation` (noise std ``noise`` on the
    0..1 scale, seeded per image); all ``2 * len(percentiles)`` images (twice that with the random
    baseline) are scored in batched passes.  Arguments otherwise as in :func:`deletion_insertion`.
    """
    pcts = _check_percentiles(percentiles)
    if not 0.0 <= float(noise) < 1.0:
        raise MetricInputError(f"noise is a standard deviation on the 0..1 scale, in [0, 1); got {noise!r}.")
    sub = _subject(engine, image, class_index, saliency, layer, method, method_options, seed)
    h, w = sub.rgb.shape[:2]
    n = h * w
    maps = [sub.saliency]
    if random_baseline:
        maps.append(saliency_at(sub.random_raw, (h, w)))
    batch = [sub.rgb]
    for sal in maps:
        order = removal_order(sal)
        for most_first in (True, False):
            ranked = order if most_first else order[::-1]
            for i, p in enumerate(pcts):
                removed = np.zeros(n, bool)
                removed[ranked[: round(n * p / 100)]] = True
                batch.append(noisy_linear_imputation(sub.rgb, removed.reshape(h, w), noise, seed + i))
    probs, logits = _class_scores(engine, batch, sub.class_index, batch_size)
    k = len(pcts)
    settings = {"method": method if saliency is None else "given", "layer": layer, "seed": seed}

    def report(j: int, rnd: ROADReport | None) -> ROADReport:
        base = 1 + 2 * j * k
        morf, lerf = probs[base : base + k], probs[base + k : base + 2 * k]
        return ROADReport(
            class_index=sub.class_index, percentiles=pcts, score=float(probs[0]),
            morf=_floats(morf), lerf=_floats(lerf),
            morf_logits=_floats(logits[base : base + k]), lerf_logits=_floats(logits[base + k : base + 2 * k]),
            morf_mean=float(morf.mean()), lerf_mean=float(lerf.mean()), combined=float((lerf - morf).mean() / 2),
            noise=float(noise), random=rnd, settings=dict(settings),
        )  # fmt: skip

    return report(0, report(1, None) if random_baseline else None)
