"""Prototypes of the fixes the benchmarks suggested, used ONLY to measure "after" next to "before" in the same run.

Historical: both landed in the product (``png_max=0`` is the default since 6a48d08, ``render.blend`` uses
``cv2.applyColorMap`` since db4cf93), so no benchmark uses this module any more; ``bench.before_after`` measures the
tree before them against the current one.  Kept as the record of what was prototyped.

Nothing here changes cam-widget: :func:`patched_blend` swaps ``cam_widget.render.blend`` for the duration of a
``with`` block (the widget calls ``render.blend`` through the module, so it picks the prototype up), and the other
"after" settings are public constructor options of ``CAMExplorer`` (``png_max=0``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2
import numpy as np

from cam_widget import render

#: CAMExplorer keyword arguments of the proposed configuration (public options only).
EXPLORER_KW = {"png_max": 0}  # JPEG for every live frame (PNG stays for Save and the static fallback)


def blend_applycolormap(
    image: np.ndarray, index: np.ndarray, colormap: str = "jet", alpha: float = 0.5
) -> np.ndarray:
    """``render.blend`` with the colormap lookup done by ``cv2.applyColorMap`` (a 256-entry user LUT read straight
    from the one-channel index map: no fancy indexing, no 3-channel merge); same checks, byte-identical output."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"Expected an RGB uint8 image of shape (h, w, 3); got {img.dtype} {img.shape}.")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha is the heat map's opacity and must lie in [0, 1]; got {alpha}.")
    idx = np.asarray(index)
    if idx.shape != img.shape[:2] or idx.dtype != np.uint8:
        raise ValueError(f"index must be uint8 of shape {img.shape[:2]}; got {idx.dtype} {idx.shape}.")
    lut = render.colormap_lut(colormap).reshape(256, 1, 3)  # applyColorMap's user LUT: any channel order
    heat = cv2.applyColorMap(np.ascontiguousarray(idx), np.ascontiguousarray(lut))
    return cv2.addWeighted(heat, float(alpha), img, 1.0 - float(alpha), 0.0)


@contextlib.contextmanager
def patched_blend() -> Iterator[None]:
    """Within the block, ``cam_widget.render.blend`` is :func:`blend_applycolormap`."""
    original = render.blend
    render.blend = blend_applycolormap
    try:
        yield
    finally:
        render.blend = original


def check_identical(image: np.ndarray, index: np.ndarray) -> bool:
    """The prototype gives exactly the bytes ``render.blend`` gives, for every curated colormap."""
    return all(
        np.array_equal(render.blend(image, index, cm, a), blend_applycolormap(image, index, cm, a))
        for cm in render.CURATED_COLORMAPS
        for a in (0.0, 0.37, 0.5, 1.0)
    )
