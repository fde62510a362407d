"""Weakly supervised localisation from a class activation map.

* :func:`localize` - the protocol of Zhou et al. (CVPR 2016, "Learning Deep Features for
  Discriminative Localization", section 3): upsample the map to the image, keep the pixels at or
  above ``threshold`` (20 %) of the map's maximum, and return the bounding box of the largest
  connected component.
* :func:`pointing_game` - Zhang et al. (ECCV 2016, "Top-down Neural Attention by Excitation
  Backprop"): a hit when the map's maximum falls inside the ground-truth box, or within
  ``tolerance`` pixels of it.
* :func:`iou` - intersection over union of two boxes.
* :func:`peak` - the image pixel where the upsampled map is largest.

Conventions
-----------
Boxes are ``(x0, y0, x1, y1)`` in image pixels and *half-open*: the box covers the pixel columns
``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1``, so its width is ``x1 - x0`` and the whole image is
``(0, 0, width, height)``.  Points are ``(x, y)`` pixel indices (column, row).

A raw map (any resolution, any sign, as returned by ``CAMEngine.cam``) is assumed to cover the
*whole* image: it is stretched to ``image_shape`` with bilinear interpolation
(:func:`cam_widget.render.upsample`, OpenCV's pixel-centre alignment) before anything is measured.

Degenerate maps
---------------
* NaN or infinite values raise :class:`MapError`: a broken map is a bug, not a miss.
* A constant map (all values equal, including all zeros) raises :class:`UninformativeMapError`
  from every function here: it has no peak and no region.
* A map whose maximum is ``<= 0`` (no positive evidence for the class) raises
  :class:`UninformativeMapError` from :func:`localize`: "20 % of the maximum" is meaningless when
  the maximum is not positive.  :func:`peak` and :func:`pointing_game` still work on such maps
  (the least negative location is where the evidence is strongest).

:class:`UninformativeMapError` is what :func:`cam_widget.metrics.evaluate.evaluate` counts as a miss
instead of aborting.  Pure numpy + OpenCV: no TensorFlow here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ..errors import CAMError
from ..render import _as_map, upsample

__all__ = [
    "Box",
    "MapError",
    "UninformativeMapError",
    "box_area",
    "iou",
    "localize",
    "peak",
    "peak_and_box",
    "point_box_distance",
    "pointing_game",
    "threshold_mask",
]

#: ``(x0, y0, x1, y1)``, half-open, in image pixels.
Box = tuple[int, int, int, int]

#: The paper's threshold (fraction of the map's maximum).
DEFAULT_THRESHOLD = 0.2
#: Zhang et al.'s tolerance in pixels for the pointing game.
DEFAULT_TOLERANCE = 15


class MapError(CAMError):
    """A map cannot be used at all (wrong shape or dtype, NaN or infinite values)."""


class UninformativeMapError(MapError):
    """A valid map that carries no localisation signal (constant, or no positive value)."""


def _image_size(image_shape: Any) -> tuple[int, int]:
    """``(height, width)`` from ``(h, w)``, ``(h, w, c)`` or an image array itself."""
    if isinstance(image_shape, np.ndarray) and image_shape.ndim >= 2:
        image_shape = image_shape.shape
    try:
        dims = [int(v) for v in image_shape]
        exact = all(float(v) == int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise CAMError(
            f"image_shape must be (height, width) or (height, width, channels); got {image_shape!r}."
        ) from None
    if len(dims) not in (2, 3) or not exact or dims[0] <= 0 or dims[1] <= 0:
        raise CAMError(
            f"image_shape must be (height, width) or (height, width, channels) with positive integer "
            f"sizes; got {tuple(image_shape)!r}."
        )
    return dims[0], dims[1]


def _check_map(cam: Any) -> np.ndarray:
    """The map as a finite float32 2-D array (a trailing channel axis of 1 is dropped)."""
    try:
        arr = _as_map(cam)  # render's shape and dtype rules, as one error type here
    except (ValueError, TypeError) as exc:
        raise MapError(str(exc)) from None
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise MapError(
            f"The CAM contains {bad} NaN or infinite value(s); it cannot be localised. "
            "Check the model's output for this image (a NaN map usually means NaN weights or inputs)."
        )
    if float(arr.max()) == float(arr.min()):
        raise UninformativeMapError(
            f"The CAM is constant (every value is {float(arr.max()):g}): it has no peak and no region."
        )
    return arr


def _upsampled(cam: Any, image_shape: Any) -> np.ndarray:
    h, w = _image_size(image_shape)
    return upsample(_check_map(cam), (h, w), interpolation="bilinear")


def _check_threshold(threshold: float) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise CAMError(f"threshold must be a number in [0, 1]; got {threshold!r}.") from None
    if not 0.0 <= t <= 1.0:
        raise CAMError(
            f"threshold is a fraction of the map's maximum and must lie in [0, 1]; got {threshold!r} "
            f"(the paper uses {DEFAULT_THRESHOLD})."
        )
    return t


def threshold_mask(cam: Any, image_shape: Any, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Boolean ``(h, w)`` mask of the image pixels where the upsampled map is ``>= threshold * max``.

    The comparison is inclusive, so the mask is never empty for a valid map (``threshold=1`` keeps
    the maximum itself).  Raises :class:`UninformativeMapError` when the maximum is ``<= 0``.
    """
    t = _check_threshold(threshold)
    big = _upsampled(cam, image_shape)
    top = float(big.max())
    if top <= 0.0:
        raise UninformativeMapError(
            f"The CAM has no positive value (its maximum is {top:g}): there is no evidence for the class "
            "to localise. Try another class or layer."
        )
    return big >= np.float32(t * top)


def localize(cam: Any, image_shape: Any, threshold: float = DEFAULT_THRESHOLD) -> Box:
    """The paper's bounding box: largest connected region at or above ``threshold * max``.

    Args:
        cam: raw 2-D map covering the whole image (any resolution, any sign).
        image_shape: ``(height, width)``, ``(height, width, channels)`` or the image array itself.
        threshold: fraction of the (upsampled) map's maximum, in [0, 1]; pixels ``>=`` it are kept.

    Returns:
        ``(x0, y0, x1, y1)`` half-open box of the largest 8-connected component of the mask (ties:
        the component whose first pixel comes first in row-major order).

    Raises:
        MapError: not a finite 2-D numeric map.
        UninformativeMapError: the map is constant or its maximum is ``<= 0``.
        CAMError: bad ``image_shape`` or ``threshold``.
    """
    return _largest_component(threshold_mask(cam, image_shape, threshold))


def _largest_component(mask: np.ndarray) -> Box:
    """Half-open box of the largest 8-connected component of a non-empty boolean mask."""
    count, _labels, stats, _centroids = cv2.connectedComponentsWithStats(
        mask.view(np.uint8), connectivity=8, ltype=cv2.CV_32S  # a bool array is 0/1 bytes: no copy
    )
    # Label 0 is the background; the mask is never empty, so count >= 2.
    areas = stats[1:count, cv2.CC_STAT_AREA]
    best = 1 + int(np.argmax(areas))
    x, y = int(stats[best, cv2.CC_STAT_LEFT]), int(stats[best, cv2.CC_STAT_TOP])
    bw, bh = int(stats[best, cv2.CC_STAT_WIDTH]), int(stats[best, cv2.CC_STAT_HEIGHT])
    return (x, y, x + bw, y + bh)


def peak_and_box(big: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> tuple[tuple[int, int], Box | None]:
    """:func:`peak` and :func:`localize` of a map already upsampled to its image's size and known to be
    finite and not constant (a batch job checks the small map first), in one pass over the pixels instead of
    two validations, two copies and two maxima: the same values as ``peak(big, big.shape)`` and
    ``localize(big, big.shape, threshold)``, with ``None`` for the box where ``localize`` raises
    :class:`UninformativeMapError` (no positive value)."""
    t = _check_threshold(threshold)
    flat = int(np.argmax(big))
    row, col = np.unravel_index(flat, big.shape)
    top = float(big.flat[flat])
    if top <= 0.0:
        return (int(col), int(row)), None
    return (int(col), int(row)), _largest_component(big >= np.float32(t * top))


def peak(cam: Any, image_shape: Any) -> tuple[int, int]:
    """``(x, y)`` image pixel where the bilinearly upsampled map is largest.

    Ties go to the first maximum in row-major order.  Raises :class:`UninformativeMapError` for a
    constant map and :class:`MapError` for NaN/infinite values.
    """
    big = _upsampled(cam, image_shape)
    row, col = np.unravel_index(int(np.argmax(big)), big.shape)
    return int(col), int(row)


def _check_box(box: Any, name: str = "box") -> tuple[float, float, float, float]:
    try:
        vals = [float(v) for v in box]
    except (TypeError, ValueError):
        raise CAMError(f"{name} must be (x0, y0, x1, y1); got {box!r}.") from None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise CAMError(f"{name} must be four finite numbers (x0, y0, x1, y1); got {box!r}.")
    x0, y0, x1, y1 = vals
    if x1 < x0 or y1 < y0:
        raise CAMError(f"{name} must satisfy x0 <= x1 and y0 <= y1 (half-open pixel box); got {box!r}.")
    return x0, y0, x1, y1


def box_area(box: Sequence[float]) -> float:
    """Area of a half-open box, ``(x1 - x0) * (y1 - y0)``."""
    x0, y0, x1, y1 = _check_box(box)
    return (x1 - x0) * (y1 - y0)


def iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """Intersection over union of two half-open boxes, in [0, 1].

    ``(0, 0, 10, 10)`` and ``(5, 0, 15, 10)`` overlap in 50 pixels of 150: IoU 1/3.  Boxes that
    only touch (``x1 == x0'``) share no pixel.  Two empty boxes give 0.0.
    """
    ax0, ay0, ax1, ay1 = _check_box(box_a, "box_a")
    bx0, by0, bx1, by1 = _check_box(box_b, "box_b")
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0


def point_box_distance(point: Sequence[float], box: Sequence[float]) -> float:
    """Euclidean distance in pixels from pixel ``(x, y)`` to the nearest pixel of a half-open box.

    0 for a pixel inside the box (``x0 <= x < x1`` and ``y0 <= y < y1``).  An empty box is
    infinitely far from everything.
    """
    x, y = (float(v) for v in point)
    x0, y0, x1, y1 = _check_box(box)
    if x1 <= x0 or y1 <= y0:
        return math.inf
    dx = max(x0 - x, 0.0, x - (x1 - 1.0))
    dy = max(y0 - y, 0.0, y - (y1 - 1.0))
    return math.hypot(dx, dy)


def pointing_game(
    cam: Any, image_shape: Any, box: Sequence[float], tolerance: float = DEFAULT_TOLERANCE
) -> bool:
    """Pointing game hit: the map's peak (:func:`peak`) lies within ``tolerance`` px of ``box``.

    ``tolerance=0`` asks for the peak strictly inside the half-open box; the default 15 px is
    Zhang et al.'s.  Raises :class:`UninformativeMapError` for a constant map.
    """
    tol = _check_tolerance(tolerance)
    _check_box(box)
    return point_box_distance(peak(cam, image_shape), box) <= tol


def _check_tolerance(tolerance: float) -> float:
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        raise CAMError(f"tolerance must be a number of pixels >= 0; got {tolerance!r}.") from None
    if not tol >= 0.0 or math.isinf(tol):
        raise CAMError(f"tolerance must be a finite number of pixels >= 0; got {tolerance!r}.")
    return tol
