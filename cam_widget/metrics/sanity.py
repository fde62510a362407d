"""Model parameter randomisation test (Adebayo et al., NeurIPS 2018, "Sanity Checks for Saliency Maps").

An explanation of *this model* must change when the model's learned weights are destroyed.
:func:`sanity_check` re-initialises the weights of a **clone** of the model block by block from the
top (``mode="cascade"``: the head, then the head and the block below it, ...) or one block at a time
(``mode="independent"``), recomputes the map after each step and compares it with the original map:

* both maps are upsampled bilinearly to the model's input size and min-max scaled to [0, 1] the same
  way (:func:`cam_widget.metrics.scoring.unit_range`);
* Spearman rank correlation of the maps (``spearman``) and of their absolute values
  (``spearman_abs``: a map whose sign flips but keeps its shape counts as unchanged), and SSIM of the
  scaled maps (``ssim``);
* the verdict: ``"changes with the weights"`` when some randomised map's ``spearman_abs`` falls below
  ``threshold``, else ``"insensitive to the weights: do not trust it as an explanation of this model"``.

Re-initialising means drawing each variable afresh from its layer's own initializer (what an untrained
copy of the model would hold: ``kernel_initializer``, ``gamma_initializer``, ...), seeded; a variable
without one (a custom layer's) gets a seeded random permutation of its values.  The user's model and
engine are never modified: the clone is built with ``keras.models.clone_model`` and wrapped in its own
engine (:meth:`cam_widget.CAMEngine.with_model`).

Blocks are groups of consecutive weighted layers sharing a name prefix (``block6a_expand_conv``,
``block6a_bn``, ... -> ``block6a``; ``top_conv``, ``top_bn`` -> ``top``), listed from the output down;
``blocks=5`` randomises the top five, ``None`` all of them, or pass the groups explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import CAMError
from ..imaging import resize_to
from .faithfulness import check_class_index
from .scoring import MetricInputError, rank_correlation, saliency_at, ssim, unit_range

__all__ = [
    "INSENSITIVE",
    "SENSITIVE",
    "SanityReport",
    "SanityStage",
    "clone_engine",
    "edge_map",
    "sanity_check",
    "weight_blocks",
]

SENSITIVE = "changes with the weights"
INSENSITIVE = "insensitive to the weights: do not trust it as an explanation of this model"

#: ``saliency_fn(engine, rgb, class_index) -> raw 2-D map``: any explanation to be checked.
SaliencyFn = Callable[[Any, np.ndarray, int], np.ndarray]


@dataclass
class SanityStage:
    """The map after randomising ``block`` (cascade: and every block above it) against the original."""

    block: str
    layers: list[str]
    spearman: float
    spearman_abs: float
    ssim: float


@dataclass
class SanityReport:
    """Outcome of :func:`sanity_check`: one :class:`SanityStage` per randomisation step, top block first."""

    mode: str
    method: str
    layer: str | None
    class_index: int
    stages: list[SanityStage]
    insensitive: bool
    verdict: str
    threshold: float
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return asdict(self)

    def summary(self) -> str:
        """One line: the method, the verdict and the lowest rank correlation reached."""
        lowest = min((s.spearman_abs for s in self.stages if np.isfinite(s.spearman_abs)), default=float("nan"))
        return (
            f"{self.method}: {self.verdict} ({self.mode} over {len(self.stages)} blocks, "
            f"lowest |rank correlation| {lowest:.2f}, threshold {self.threshold:g})"
        )


# ------------------------------------------------------------------------------------ blocks


def _leaf_layers(model: Any) -> list[Any]:
    """Layers that own weights, in the model's (topological) order, nested models opened."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += _leaf_layers(layer)
        elif layer.weights:
            out.append(layer)
    return out


def _prefix(name: str) -> str:
    return name.split("_", 1)[0]


def weight_blocks(model: Any) -> list[tuple[str, list[str]]]:
    """``[(block, [layer names])]``: consecutive weighted layers with the same name prefix, output first."""
    groups: list[tuple[str, list[str]]] = []
    for layer in _leaf_layers(model):
        key = _prefix(layer.name)
        if groups and groups[-1][0] == key:
            groups[-1][1].append(layer.name)
        else:
            groups.append((key, [layer.name]))
    # The same prefix may come back later (conv2d, batch_normalization, conv2d_1 ...): name blocks apart.
    seen: dict[str, int] = {}
    named = []
    for key, names in groups:
        seen[key] = seen.get(key, 0) + 1
        named.append((key if seen[key] == 1 else f"{key}#{seen[key]}", names))
    return named[::-1]


def _select_blocks(model: Any, blocks: int | Sequence[Sequence[str]] | None) -> list[tuple[str, list[str]]]:
    if blocks is None or (isinstance(blocks, (int, np.integer)) and not isinstance(blocks, bool)):
        found = weight_blocks(model)
        if blocks is not None:
            if int(blocks) < 1:
                raise MetricInputError(f"blocks must be >= 1 (or None for all, or lists of layer names); got {blocks}.")
            found = found[: int(blocks)]
        if not found:
            raise MetricInputError("The model has no layer with weights: there is nothing to randomise.")
        return found
    names = {layer.name for layer in _leaf_layers(model)}
    chosen = []
    for group in blocks:
        if isinstance(group, str) or not all(isinstance(n, str) for n in group) or not group:
            raise MetricInputError(f"Each block must be a non-empty list of layer names; got {group!r}.")
        unknown = [n for n in group if n not in names]
        if unknown:
            raise MetricInputError(
                f"No weighted layer named {', '.join(map(repr, unknown))}; blocks are listed by "
                "cam_widget.metrics.sanity.weight_blocks(engine.model)."
            )
        chosen.append((str(group[0]), list(group)))
    return chosen


# ---------------------------------------------------------------------------- re-initialising


def _initializer_for(layer: Any, var_name: str) -> Any:
    """The layer's own initializer for a variable (``kernel`` -> ``kernel_initializer``; depthwise and
    separable kernels -> ``depthwise_initializer`` / ``pointwise_initializer``), or ``None``."""
    import keras

    candidates = [f"{var_name}_initializer", f"{var_name.replace('_kernel', '')}_initializer"]
    if var_name == "kernel":
        candidates.append("depthwise_initializer")
    for attr in candidates:
        init = getattr(layer, attr, None)
        if init is not None:
            return keras.initializers.get(init)
    return None


def _fresh_value(layer: Any, variable: Any, seed: int) -> np.ndarray:
    import keras

    shape = tuple(int(s) for s in variable.shape)
    init = _initializer_for(layer, variable.name.split("/")[-1])
    if init is not None:
        config = init.get_config()
        if "seed" in config:
            init = init.__class__.from_config({**config, "seed": seed})
        return np.asarray(keras.ops.convert_to_numpy(init(shape, dtype=variable.dtype)))
    values = np.asarray(keras.ops.convert_to_numpy(variable))
    return np.random.default_rng(seed).permutation(values.ravel()).reshape(shape)


def _layers_by_name(model: Any) -> dict[str, Any]:
    return {layer.name: layer for layer in _leaf_layers(model)}


def _randomise(layers: Mapping[str, Any], names: Sequence[str], seed: int) -> None:
    for i, name in enumerate(names):
        for j, variable in enumerate(layers[name].weights):
            variable.assign(_fresh_value(layers[name], variable, seed * 100_003 + i * 101 + j))


def _snapshot(layers: Mapping[str, Any], names: Sequence[str]) -> dict[str, list[np.ndarray]]:
    import keras

    return {n: [np.array(keras.ops.convert_to_numpy(v)) for v in layers[n].weights] for n in names}


def _restore(layers: Mapping[str, Any], saved: Mapping[str, list[np.ndarray]]) -> None:
    for name, values in saved.items():
        for variable, value in zip(layers[name].weights, values, strict=True):
            variable.assign(value)


def clone_engine(engine: Any) -> Any:
    """A new engine on a weight-for-weight clone of ``engine.model`` (same preprocess, classes, input
    size, refitted heads).  Changing the clone's weights leaves the user's model untouched."""
    import keras

    try:
        clone = keras.models.clone_model(engine.model)
    except Exception as exc:
        raise CAMError(
            f"The model cannot be cloned for the randomisation test ({type(exc).__name__}: {exc}). "
            "Models with custom layers need get_config()/from_config() to be cloned."
        ) from exc
    clone.set_weights(engine.model.get_weights())
    return engine.with_model(clone)


# ------------------------------------------------------------------------------------ the test


def _compare(original: np.ndarray, randomised: np.ndarray, size: tuple[int, int]) -> tuple[float, float, float]:
    a, b = saliency_at(original, size), saliency_at(randomised, size)
    ua, ub = unit_range(a), unit_range(b)
    return (
        rank_correlation(a, b),
        rank_correlation(np.abs(a), np.abs(b)),
        ssim(ua, ub, data_range=1.0),
    )


def sanity_check(
    engine: Any,
    image: Any,
    class_index: int,
    layer: str | None = None,
    method: str = "cam",
    mode: str = "cascade",
    blocks: int | Sequence[Sequence[str]] | None = 5,
    *,
    threshold: float = 0.5,
    seed: int = 0,
    saliency_fn: SaliencyFn | None = None,
    method_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    clone: Any = None,
) -> SanityReport:
    """Adebayo et al.'s model parameter randomisation test for one image, class and method.

    Args:
        engine: a :class:`cam_widget.CAMEngine` (never modified: the test runs on a clone).
        image, class_index, layer, method: which map to test (``engine.cam(image, class_index,
            layer=layer, method=method, **method_options)``).
        mode: ``"cascade"`` (randomise from the top block down, cumulatively) or ``"independent"``
            (one block at a time, the others left trained).
        blocks: how many blocks from the top (default 5), ``None`` for all, or explicit lists of
            layer names (see :func:`weight_blocks`).
        threshold: the ``spearman_abs`` below which a map counts as changed.
        saliency_fn: check any explanation instead of ``engine.cam``: ``fn(engine, rgb, class_index)``
            returns a raw 2-D map (it is called with the user's engine first, then with the clone's).
        progress: ``progress(done, total)`` after each randomised map.
        clone: an engine from :func:`clone_engine` to reuse across calls (cloning and tracing cost seconds);
            its weights are restored afterwards.  Default: a fresh clone per call.
    """
    if mode not in ("cascade", "independent"):
        raise MetricInputError(f"mode must be 'cascade' or 'independent'; got {mode!r}.")
    if not 0.0 < float(threshold) < 1.0:
        raise MetricInputError(f"threshold is a rank correlation in (0, 1); got {threshold!r}.")
    cls = check_class_index(engine, class_index)
    _, rgb = engine.prepare(image)
    size = tuple(int(s) for s in engine.input_size)
    options = dict(method_options or {})

    def explain(eng: Any) -> np.ndarray:
        if saliency_fn is not None:
            return np.asarray(saliency_fn(eng, rgb, cls))
        return np.asarray(eng.cam(rgb, cls, layer=layer, method=method, **options))

    start = time.perf_counter()
    original = explain(engine)
    saliency_at(original, size)  # a bad map fails before the clone is built
    chosen = _select_blocks(engine.model, blocks)
    twin = clone if clone is not None else clone_engine(engine)
    layers = _layers_by_name(twin.model)
    pristine = _snapshot(layers, [n for _, names in chosen for n in names])
    stages = []
    saved: dict[str, list[np.ndarray]] = {}
    try:
        for i, (block, names) in enumerate(chosen):
            if mode == "independent":
                _restore(layers, saved)
                saved = _snapshot(layers, names)
            _randomise(layers, names, seed + i)
            twin.reload_head()  # the head's weights are copied at construction; cached features are stale
            rho, rho_abs, s = _compare(original, explain(twin), size)
            stages.append(SanityStage(block, list(names), rho, rho_abs, s))
            if progress is not None:
                progress(i + 1, len(chosen))
    finally:
        _restore(layers, pristine)  # a reused clone is handed back trained
        twin.reload_head()
    changed = [st for st in stages if not (np.isfinite(st.spearman_abs) and st.spearman_abs >= threshold)]
    if np.ptp(original) == 0:
        changed = []  # a constant map shows nothing, whatever the weights
    insensitive = not changed
    return SanityReport(
        mode=mode,
        method="custom" if saliency_fn is not None else method,
        layer=layer,
        class_index=cls,
        stages=stages,
        insensitive=insensitive,
        verdict=INSENSITIVE if insensitive else SENSITIVE,
        threshold=float(threshold),
        seconds=time.perf_counter() - start,
        settings={"blocks": [b for b, _ in chosen], "seed": seed, "input_size": list(size)},
    )


def edge_map(engine: Any, rgb: np.ndarray, class_index: int) -> np.ndarray:
    """A deliberately weight-independent "explanation": the Sobel gradient magnitude of the resized
    grey image.  It must fail the randomisation test (the tests and docs use it as the control)."""
    import cv2

    grey = cv2.cvtColor(resize_to(rgb, tuple(engine.input_size)), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
