"""Smoothing options that work with every method.

* ``smooth="eigen"`` (pytorch-grad-cam's eigen_smooth): instead of summing the method's per-channel terms
  ``w_k A_k`` (or its element-wise terms), take their first principal component (centred, sign fixed so it
  correlates positively with the unsmoothed map).  Applied in :func:`cam_widget.methods.base.run`; for
  Eigen-CAM, which is already a principal component, it changes nothing.
* ``smooth="aug"`` (test-time augmentation, pytorch-grad-cam's aug_smooth with ttach's transforms): the map
  of each of 6 augmented copies of the image -- horizontal flip or not, times the intensity scales
  0.9 / 1.0 / 1.1 (ttach's ``Multiply``) -- is mapped back (un-flipped) and the 6 maps are averaged.
  Costs 6x the method (the unaugmented copy reuses the image's cached ingredients).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..imaging import resize_to
from .base import Method, Progress, check_cancel

__all__ = ["AUGMENTATIONS", "aug_smooth", "augment"]

AUGMENTATIONS: tuple[tuple[bool, float], ...] = tuple((flip, s) for flip in (False, True) for s in (0.9, 1.0, 1.1))


def augment(rgb: np.ndarray, flip: bool, scale: float) -> np.ndarray:
    """One test-time augmentation of an RGB uint8 image: intensity ``scale`` (rounded, clipped), then a
    horizontal flip."""
    out = rgb if scale == 1.0 else np.clip(np.rint(rgb.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[:, ::-1]) if flip else out


def aug_smooth(
    engine: Any,
    method: Method,
    images: Sequence[np.ndarray],
    classes: Sequence[int],
    layer: str,
    options: dict[str, Any],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """The mean over :data:`AUGMENTATIONS` of ``method``'s maps, each mapped back to the original frame."""
    from .base import run

    # Augment at the engine's input size: the engine resizes every image to it anyway, and smaller
    # copies hash and resize faster.  The (False, 1.0) copy is the original, whose ingredients are cached.
    small = [resize_to(np.asarray(im), engine.input_size) for im in images]
    n = len(AUGMENTATIONS)
    acc = np.zeros((len(images), *engine.layer(layer).shape[:2]), np.float64)
    for a, (flip, scale) in enumerate(AUGMENTATIONS):
        check_cancel(cancel)
        if progress is not None:
            progress(a, n)

        def inner(done: int, total: int, a: int = a) -> None:  # a long method's own progress, scaled
            if progress is not None and total > 0:
                progress(a * total + done, n * total)

        copies = list(images) if (not flip and scale == 1.0) else [augment(im, flip, scale) for im in small]
        maps = run(engine, method, copies, classes, layer, options, inner, cancel)
        acc += maps[:, :, ::-1] if flip else maps
    if progress is not None:
        progress(n, n)
    return (acc / n).astype(np.float32)
