"""Pure numpy/OpenCV scoring for faithfulness metrics and sanity checks (no Keras, no engine).

Everything here works on arrays: saliency maps, RGB uint8 images at the model's input size, score
curves.  :mod:`cam_widget.metrics.faithfulness` and :mod:`cam_widget.metrics.sanity` build the
perturbed images with these functions, hand them to an engine for batched forward passes, and
score the answers with these functions again, so the scoring itself is importable and testable
without TensorFlow.

* :func:`saliency_at` - validate a raw map and upsample it bilinearly to the input size;
* :func:`removal_order`, :func:`step_counts`, :func:`mix_in` - RISE's deletion/insertion series
  (Petsiuk et al., BMVC 2018);
* :func:`rise_blur`, :func:`baseline_image` - the baselines pixels are replaced with / inserted into;
* :func:`auc` - trapezoid area under a curve over the fraction of pixels changed;
* :func:`probabilities` - softmax/sigmoid of logits, as the engine defines them;
* :func:`noisy_linear_imputation` - ROAD's imputation (Rong et al., ICML 2022; scipy's sparse solver);
* :func:`rank_correlation`, :func:`ssim` - Spearman's rho and Wang et al.'s SSIM (Adebayo et al. 2018);
* :func:`random_saliency` - the seeded random map every metric is compared with;
* :func:`bootstrap_ci` - a percentile bootstrap interval of a mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Union

import cv2
import numpy as np

from ..errors import CAMError
from ..render import upsample

__all__ = [
    "Baseline",
    "MetricInputError",
    "auc",
    "baseline_image",
    "bootstrap_ci",
    "check_steps",
    "mix_in",
    "noisy_linear_imputation",
    "probabilities",
    "random_saliency",
    "rank_correlation",
    "removal_order",
    "rise_blur",
    "saliency_at",
    "ssim",
    "step_counts",
    "unit_range",
]

#: ``"zeros"`` (black), ``"blur"`` (RISE's Gaussian blur), ``"mean"`` (the image's mean colour), a
#: grey level 0..255, or an RGB uint8 image of the input size.
Baseline = Union[str, float, np.ndarray]

# RISE's insertion baseline: a Gaussian kernel of size 11 and sigma 5 (the authors' code, gkern(11, 5)).
RISE_BLUR_KSIZE = 11
RISE_BLUR_SIGMA = 5.0


class MetricInputError(CAMError):
    """A metric was given unusable input (steps, saliency shape, baseline, percentiles...)."""


# ----------------------------------------------------------------------------------- saliency


def check_steps(steps: Any) -> int:
    """``steps`` as an int >= 2 (a curve needs at least three points: 0, one middle step, all)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or int(steps) < 2:
        raise MetricInputError(f"steps must be an integer >= 2 (the curve's number of intervals); got {steps!r}.")
    return int(steps)


def saliency_at(saliency: Any, size: tuple[int, int]) -> np.ndarray:
    """A raw saliency map validated and upsampled bilinearly to ``size=(height, width)`` (float64).

    The map may have any resolution that covers the whole input (a layer's ``7 x 7`` map, or the
    input size itself): each side at most the input's, with the same aspect within a factor 1.5.
    NaN/infinite values, non-2-D arrays and maps of another aspect are refused with the fix.
    """
    arr = np.asarray(saliency)
    h, w = int(size[0]), int(size[1])
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.size == 0:
        hint = " For a per-channel (h, w, 3) attribution pass e.g. np.abs(a).sum(-1)." if arr.ndim == 3 else ""
        raise MetricInputError(f"A saliency map must be a non-empty 2-D array (h, w); got shape {arr.shape}.{hint}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise MetricInputError(f"A saliency map must hold real numbers; got dtype {arr.dtype}.")
    mh, mw = arr.shape
    stride_h, stride_w = h / mh, w / mw
    if mh > h or mw > w or max(stride_h, stride_w) > 1.5 * min(stride_h, stride_w):
        raise MetricInputError(
            f"A saliency map of shape {arr.shape} does not cover the {h}x{w} input: pass the raw map of a layer "
            f"(e.g. engine.cam(...)) or a map of the input size {(h, w)}."
        )
    if not np.all(np.isfinite(arr)):
        raise MetricInputError("The saliency map contains NaN or infinite values; fix the map first.")
    return upsample(arr.astype(np.float32), (h, w), "bilinear").astype(np.float64)


def removal_order(saliency: np.ndarray) -> np.ndarray:
    """Flat pixel indices in order of decreasing saliency; ties keep raster order (row by row).

    The stable sort is what makes ties deterministic: a constant map removes pixels top row first.
    """
    return np.argsort(-np.asarray(saliency, np.float64).ravel(), kind="stable")


def step_counts(n_pixels: int, steps: int) -> np.ndarray:
    """How many pixels are changed at each of the ``steps + 1`` points: ``round(i * n / steps)``."""
    steps = check_steps(steps)
    return np.rint(np.arange(steps + 1) * (n_pixels / steps)).astype(np.int64)


def mix_in(start: np.ndarray, target: np.ndarray, order: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """``(len(counts), h, w, 3)`` uint8: ``start`` with its first ``counts[i]`` pixels (in ``order``)
    taken from ``target``.  Deletion: start = image, target = baseline; insertion: the reverse."""
    start = np.asarray(start)
    target = np.asarray(target)
    h, w = start.shape[:2]
    rank = np.empty(h * w, np.int64)
    rank[np.asarray(order)] = np.arange(h * w)
    rank = rank.reshape(h, w)
    out = np.empty((len(counts), *start.shape), start.dtype)
    for i, k in enumerate(counts):
        out[i] = np.where((rank < int(k))[..., None], target, start)
    return out


def rise_blur(image: np.ndarray) -> np.ndarray:
    """RISE's insertion start: the image blurred with an 11 x 11 Gaussian of sigma 5."""
    return cv2.GaussianBlur(np.asarray(image), (RISE_BLUR_KSIZE, RISE_BLUR_KSIZE), RISE_BLUR_SIGMA)


def baseline_image(image: np.ndarray, baseline: Baseline) -> np.ndarray:
    """The uint8 image pixels are replaced with (deletion) or inserted into (insertion)."""
    img = np.asarray(image)
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros_like(img)
        if baseline == "blur":
            return rise_blur(img)
        if baseline == "mean":
            mean = np.rint(img.reshape(-1, img.shape[-1]).mean(0)).astype(img.dtype)
            return np.broadcast_to(mean, img.shape).copy()
        raise MetricInputError(
            f"Unknown baseline {baseline!r}: use 'zeros', 'blur', 'mean', a grey level 0..255 or an image."
        )
    if isinstance(baseline, (int, float, np.integer, np.floating)) and not isinstance(baseline, bool):
        if not 0 <= float(baseline) <= 255:
            raise MetricInputError(f"A grey-level baseline must lie in 0..255; got {baseline!r}.")
        return np.full_like(img, round(float(baseline)))
    arr = np.asarray(baseline)
    if arr.shape != img.shape or arr.dtype != np.uint8:
        raise MetricInputError(
            f"A baseline image must be uint8 of the input's shape {img.shape}; got {arr.dtype} {arr.shape}."
        )
    return arr


def auc(fractions: Sequence[float], scores: Sequence[float]) -> float:
    """Trapezoid area under ``scores`` over ``fractions`` (the fraction of pixels changed, 0..1)."""
    x = np.asarray(fractions, np.float64)
    y = np.asarray(scores, np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def probabilities(logits: np.ndarray, kind: str = "softmax") -> np.ndarray:
    """Class probabilities from pre-softmax logits ``(..., classes)``: ``"sigmoid"`` per class, else softmax
    (the engine's ``probability`` names the kind)."""
    z = np.asarray(logits, np.float64)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def unit_range(saliency: np.ndarray) -> np.ndarray:
    """Min-max scaling to [0, 1] (sign kept: the minimum maps to 0); a constant map becomes zeros."""
    a = np.asarray(saliency, np.float64)
    lo, hi = float(a.min()), float(a.max())
    if not hi > lo:
        return np.zeros_like(a)
    return (a - lo) / (hi - lo)


def random_saliency(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A seeded uniform random map of ``shape`` (the method's raw map resolution, so that it is
    upsampled the same way): the baseline every metric is compared with."""
    return np.random.default_rng(seed).random(tuple(int(s) for s in shape))


# --------------------------------------------------------------------------------- imputation

# ROAD's neighbour weights (Rong et al. 2022, NoisyLinearImputer): direct neighbours 1/6, diagonal 1/12.
_NEIGHBOURS = (
    ((-1, 0), 1 / 6), ((1, 0), 1 / 6), ((0, -1), 1 / 6), ((0, 1), 1 / 6),
    ((-1, -1), 1 / 12), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((1, 1), 1 / 12),
)  # fmt: skip


def _solve_imputation(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The removed pixels' values: ``sum_j w_j x_j - (sum_j w_j) x_i = 0`` for every removed pixel ``i``
    over its in-image neighbours ``j`` (known neighbours move to the right-hand side), all channels at once."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    h, w = mask.shape
    flat = mask.ravel()
    idx = np.flatnonzero(flat)
    var = np.full(h * w, -1, np.int64)
    var[idx] = np.arange(idx.size)
    y, x = np.divmod(idx, w)
    known = img.reshape(h * w, -1)
    rhs = np.zeros((idx.size, known.shape[1]))
    weight_sum = np.zeros(idx.size)
    rows, cols, vals = [], [], []
    for (dy, dx), wt in _NEIGHBOURS:
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        eq = np.flatnonzero(inside)
        nb = yy[inside] * w + xx[inside]
        weight_sum[eq] += wt
        unknown = flat[nb]
        rows.append(eq[unknown])
        cols.append(var[nb[unknown]])
        vals.append(np.full(int(unknown.sum()), wt))
        np.subtract.at(rhs, eq[~unknown], wt * known[nb[~unknown]])
    rows.append(np.arange(idx.size))
    cols.append(np.arange(idx.size))
    vals.append(-weight_sum)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(idx.size,) * 2)
    sol = np.asarray(spsolve(a.tocsc(), rhs)).reshape(idx.size, -1)
    out = known.copy()
    out[idx] = sol
    return out.reshape(img.shape)


def noisy_linear_imputation(
    image: np.ndarray, removed: np.ndarray, noise: float = 0.01, seed: int | None = 0
) -> np.ndarray:
    """ROAD's noisy linear imputation: every removed pixel becomes the weighted mean of its 8 neighbours
    (direct 1/6, diagonal 1/12, renormalised at the image border), known neighbours fixed, plus Gaussian
    noise of std ``noise`` in units of the 0..1 intensity range.  Returns a uint8 image.

    The sparse linear system (one unknown per removed pixel, the three channels as right-hand sides) is
    solved exactly with scipy's sparse LU.  With every pixel removed nothing is known: 0.5 grey.
    """
    img = np.asarray(image, np.float64) / 255.0
    mask = np.asarray(removed, bool)
    if mask.shape != img.shape[:2]:
        raise MetricInputError(f"The removal mask must have the image's shape {img.shape[:2]}; got {mask.shape}.")
    if not mask.any():
        return np.asarray(image).copy()
    out = np.full_like(img, 0.5) if mask.all() else _solve_imputation(img, mask)
    if noise:
        out[mask] += np.random.default_rng(seed).normal(0.0, float(noise), size=out[mask].shape)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------ map similarity


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (what Spearman's rho needs)."""
    flat = np.asarray(a, np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    sorted_vals = flat[order]
    # Start index of each run of equal values, and each value's run.
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    run = np.cumsum(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]]) - 1
    ends = np.r_[starts[1:], flat.size]
    ranks = np.empty(flat.size, np.float64)
    ranks[order] = ((starts + ends - 1) / 2.0 + 1.0)[run]
    return ranks


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps of the same shape (average ranks for ties).

    ``nan`` when either map is constant: its ranking is undefined.
    """
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        raise MetricInputError(f"Both maps must have the same shape; got {x.shape} and {y.shape}.")
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / denom) if denom > 0 else float("nan")


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004) of two 2-D maps, Gaussian-weighted (sigma 1.5,
    an 11 x 11 window), K1 = 0.01, K2 = 0.03, population covariances, the window's half-width cropped
    at the borders: the same definition as ``skimage.metrics.structural_similarity(...,
    gaussian_weights=True, use_sample_covariance=False)``."""
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise MetricInputError(f"SSIM needs two 2-D maps of the same shape; got {x.shape} and {y.shape}.")
    radius = int(3.5 * sigma + 0.5)
    if min(x.shape) < 2 * radius + 1:
        raise MetricInputError(f"SSIM needs maps of at least {2 * radius + 1} px per side; got {x.shape}.")
    k = 2 * radius + 1

    def filt(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (k, k), sigma, borderType=cv2.BORDER_REFLECT)

    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cxy = filt(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[radius:-radius, radius:-radius].mean())


# ---------------------------------------------------------------------------------- intervals


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile bootstrap interval.

    NaNs are dropped; one value gives a zero-width interval; no value gives three NaNs.
    """
    v = np.asarray([float(x) for x in values], np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if v.size == 1:
        return (mean, mean, mean)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(int(n_resamples), v.size))].mean(axis=1)
    tail = (1.0 - float(confidence)) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return (mean, float(low), float(high))
