"""Images as the engine's caches see them: decoded to RGB uint8 and keyed by a hash of their pixels.

:class:`PreparedImage` carries both, so a photo asked for several ingredients is decoded and hashed once;
:class:`ImageKeys` remembers the hash of frozen (read-only, pixel-owning) arrays, as the panel holds them.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .imaging import ImageSource, load_image

__all__ = ["ImageKeys", "PreparedImage", "as_rgb"]


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """An image decoded to RGB uint8 and hashed ONCE (:meth:`CAMEngine.prepared`); every engine method
    accepts it wherever it accepts an image and skips the decoding and hashing.  Methods get their images
    in this form, so asking the engine for several ingredients of one photo hashes its pixels once."""

    key: str
    rgb: np.ndarray

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.rgb if dtype is None else self.rgb.astype(dtype)


def _is_rgb(image: Any) -> bool:
    return isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def as_rgb(image: Any) -> np.ndarray:
    """``image`` as RGB uint8 (a :class:`PreparedImage`'s pixels, an RGB uint8 array as it is, else decoded)."""
    if isinstance(image, PreparedImage):
        return image.rgb
    return image if _is_rgb(image) else load_image(image)


class ImageKeys:
    """Content keys of images, with a memo for frozen arrays (keyed by identity, checked by weak reference)."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[weakref.ref, str]] = {}

    def prepare(self, image: ImageSource) -> tuple[str, np.ndarray]:
        """``(key, rgb)``: the image as RGB uint8 and its content hash (see :meth:`CAMEngine.prepare`)."""
        if isinstance(image, PreparedImage):
            return image.key, image.rgb
        frozen = _is_rgb(image) and not image.flags.writeable and image.base is None
        if frozen:
            memo = self._memo.get(id(image))
            if memo is not None and memo[0]() is image:
                return memo[1], image
        rgb = as_rgb(image)
        digest = hashlib.blake2b(memoryview(np.ascontiguousarray(rgb)).cast("B"), digest_size=16)
        digest.update(str(rgb.shape).encode())
        key = digest.hexdigest()
        if frozen:
            if len(self._memo) > 256:
                self._memo = {k: v for k, v in self._memo.items() if v[0]() is not None}
            self._memo[id(image)] = (weakref.ref(image), key)
        return key, rgb
