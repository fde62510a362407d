"""Translation test: does the map follow an object when the object moves?

:func:`translation_cases` cuts the contents of a box out of a photo, scales it, and pastes it at
``grid x grid`` known positions on a neutral gray canvas.  Each position becomes a
:class:`cam_widget.metrics.evaluate.Case` whose box is where the object now is, so
:func:`cam_widget.metrics.evaluate.evaluate` scores whether the peak (pointing game) and the 20 % box
follow the object.  Pure numpy + OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ..errors import CAMError

__all__ = ["paste_positions", "translation_cases"]


def _pair(value: Any, what: str) -> tuple[int, int]:
    try:
        vals = [int(v) for v in ([value, value] if np.isscalar(value) else value)]
    except (TypeError, ValueError):
        raise CAMError(f"{what} must be a positive int or [height, width]; got {value!r}.") from None
    if len(vals) != 2 or min(vals) <= 0:
        raise CAMError(f"{what} must be a positive int or [height, width]; got {value!r}.")
    return vals[0], vals[1]


def paste_positions(canvas: tuple[int, int], obj: tuple[int, int], grid: int = 3) -> list[tuple[int, int]]:
    """Top-left ``(x, y)`` corners of ``grid x grid`` evenly spaced placements, row by row.

    The object (``(height, width)``) touches the canvas edges at the extreme positions; ``grid=1``
    centres it.
    """
    ch, cw = canvas
    oh, ow = obj
    if oh > ch or ow > cw:
        raise CAMError(f"The object ({ow}x{oh} px) does not fit on the {cw}x{ch} canvas.")
    if int(grid) < 1:
        raise CAMError(f"grid must be >= 1; got {grid!r}.")
    g = int(grid)

    def steps(free: int) -> list[int]:
        if g == 1:
            return [free // 2]
        return [round(free * k / (g - 1)) for k in range(g)]

    return [(x, y) for y in steps(ch - oh) for x in steps(cw - ow)]


def translation_cases(
    image: np.ndarray,
    box: Sequence[int],
    class_index: int | str,
    grid: int = 3,
    canvas: int | Sequence[int] = (448, 448),
    object_fraction: float = 0.35,
    background: int | Sequence[int] = 128,
    name: str = "object",
    group: str = "translation",
) -> list[Any]:
    """Cases with the box's contents pasted at ``grid x grid`` positions on a gray canvas.

    Args:
        image: RGB uint8 source photo.
        box: ``(x0, y0, x1, y1)`` half-open box of the object in ``image``.
        class_index: the class of the object (index or name).
        grid: positions per axis (``grid**2`` cases).
        canvas: canvas ``(height, width)`` or one int for a square.
        object_fraction: the object is scaled (aspect kept) so that its longer side is this fraction
            of the canvas's shorter side.
        background: gray level (or an RGB triple) of the canvas.
        name: case name prefix; each case is named ``"{name}@{x},{y}"`` after its top-left corner.
        group: the cases' group (summaries are also reported per group).
    """
    from .evaluate import Case, as_case  # local: evaluate imports this module lazily too

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise CAMError(f"image must be RGB uint8 (h, w, 3); got {img.dtype} {img.shape}.")
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= img.shape[1] and 0 <= y0 < y1 <= img.shape[0]):
        raise CAMError(f"box {list(box)} is not inside the {img.shape[1]}x{img.shape[0]} image.")
    ch, cw = _pair(canvas, "canvas")
    frac = float(object_fraction)
    if not 0.0 < frac <= 1.0:
        raise CAMError(f"object_fraction must lie in (0, 1]; got {object_fraction!r}.")
    crop = img[y0:y1, x0:x1]
    scale = frac * min(ch, cw) / max(crop.shape[:2])
    oh, ow = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    obj = cv2.resize(np.ascontiguousarray(crop), (ow, oh), interpolation=interp)
    bg = np.broadcast_to(np.asarray(background, dtype=np.int64), (3,))
    if bg.min() < 0 or bg.max() > 255:
        raise CAMError(f"background must be a gray level or RGB triple in 0..255; got {background!r}.")
    cases = []
    for x, y in paste_positions((ch, cw), (oh, ow), grid):
        canvas_img = np.empty((ch, cw, 3), np.uint8)
        canvas_img[:] = bg.astype(np.uint8)
        canvas_img[y : y + oh, x : x + ow] = obj
        cases.append(as_case(Case(canvas_img, class_index, (x, y, x + ow, y + oh), f"{name}@{x},{y}", group)))
    return cases
