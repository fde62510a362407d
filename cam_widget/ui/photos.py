"""The panel's photos: where they come from, their unique names, their display-size copies, the model's verdict
on each, and uploads (with their size caps)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import render
from ..errors import CAMError, ImageTooLargeError
from ..imaging import MAX_PIXELS, load_image, resize_to
from .state import Photo

__all__ = ["PhotoStore", "unique_name"]


def unique_name(name: str, taken: Any) -> str:
    """``name``, or ``name (2)``, ``name (3)`` ... whichever is not in ``taken`` yet."""
    unique, k = name, 2
    while unique in taken:
        unique, k = f"{name} ({k})", k + 1
    return unique


def named_sources(images: Any) -> list[tuple[str, Any]]:
    """``images`` (a mapping, a list, or one image) as unique (name, source) pairs; paths are named by stem."""
    if images is None:
        return []
    if isinstance(images, Mapping):
        items = [(str(k), v) for k, v in images.items()]
    else:
        if isinstance(images, (str, bytes, bytearray, memoryview, np.ndarray, os.PathLike)) or hasattr(images, "read"):
            images = [images]
        items = []
        for i, src in enumerate(images):
            if isinstance(src, (str, os.PathLike)):
                items.append((Path(src).stem or f"image {i + 1}", src))
            else:
                items.append((f"image {i + 1}", src))
    out: dict[str, Any] = {}
    for name, src in items:
        out[unique_name(name, out)] = src
    return list(out.items())


class PhotoStore:
    """Photos by name: decoded on first use, kept at full resolution (one read-only copy) and display size."""

    def __init__(self, images: Any, display_size: int, max_upload_bytes: int, max_upload_pixels: int = MAX_PIXELS):
        self.display_size = int(display_size)
        self.max_upload_bytes = int(max_upload_bytes)
        self.max_upload_pixels = int(max_upload_pixels)
        self.sources: dict[str, Any] = dict(named_sources(images))
        self.photos: dict[str, Photo] = {}

    @property
    def names(self) -> list[str]:
        return list(self.sources)

    def get(self, name: str) -> Photo:
        photo = self.photos.get(name)
        if photo is None:
            photo = self.photos[name] = self._make(name, load_image(self.sources[name]))
        return photo

    def add(self, image: Any, name: str | None = None) -> str:
        """Add an image (anything ``load_image`` accepts); returns its unique name."""
        rgb = load_image(image, max_pixels=self.max_upload_pixels)
        name = unique_name(name or f"image {len(self.sources) + 1}", self.sources)
        photo = self.photos[name] = self._make(name, rgb)
        self.sources[name] = photo.rgb  # the photo's own frozen copy: no second full-resolution array
        return name

    def decode_upload(self, f: Mapping[str, Any]) -> tuple[str, np.ndarray]:
        """One FileUpload entry as (name stem, RGB), refusing files over the caps with the file's name."""
        content = f.get("content", b"")
        fname = str(f.get("name") or "upload")
        size = len(content)
        if size > self.max_upload_bytes:
            raise ImageTooLargeError(
                f"{fname!r} is {size / 2**20:.1f} MB; uploads are limited to "
                f"{self.max_upload_bytes / 2**20:.0f} MB. Downscale it first."
            )
        try:
            rgb = load_image(bytes(content), max_pixels=self.max_upload_pixels)
        except CAMError as exc:
            raise type(exc)(f"{fname!r}: {exc}") from None
        return Path(fname).stem or "upload", rgb

    def classify(self, photo: Photo, engine: Any, top_k: int, warm_layer: str | None = None) -> None:
        """The model's probabilities and top-k for ``photo`` (once).  ``warm_layer``: a layer whose features the
        same forward pass should cache (the exact-CAM layer on screen)."""
        if photo.probs is not None:
            return
        if warm_layer is not None:
            engine.features(photo.rgb, warm_layer)  # one forward pass caches the logits and these features
        photo.probs = np.asarray(engine.predict(photo.rgb), np.float32)
        names = engine.class_names
        top = np.argsort(-photo.probs, kind="stable")[:top_k]
        photo.top = [(int(i), str(names[i]), float(photo.probs[i])) for i in top]

    def sized(self, photo: Photo, size: tuple[int, int]) -> np.ndarray:
        """``photo`` resized to ``size`` (cached per photo: grid cells reuse it)."""
        if size == photo.display.shape[:2]:
            return photo.display
        out = photo.sized.get(size)
        if out is None:
            out = photo.sized[size] = np.ascontiguousarray(resize_to(photo.rgb, size))
        return out

    def _make(self, name: str, rgb: np.ndarray) -> Photo:
        rgb = rgb.copy()  # our own read-only copy: the engine then hashes its pixels only once
        rgb.setflags(write=False)
        display = resize_to(rgb, render.fit_within(rgb.shape, self.display_size))
        return Photo(name, rgb, np.ascontiguousarray(display))
