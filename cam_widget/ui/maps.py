"""The panel's maps: raw maps from the engine (with the method fall-back and the top-k batching), and their
colormap index maps at display size, in one byte-bounded LRU.

* Raw maps are kept per (image, layer, class, method): a view switch, a scope change or a grid that shows a map
  already seen costs no engine call.
* A cheap method other than exact CAM (Grad-CAM and its gradient family) costs one gradient pass per class, so
  the first map of an (image, layer, method) computes the whole top-k (plus the class asked for) in ONE batched
  engine call; stepping through the top-k afterwards runs no network.
* Exact CAM needs a GAP -> linear head at the layer.  Where there is none, :meth:`MapStore.resolve` falls back to
  Grad-CAM and says so (the Refit button offers the exact map).
* Index maps (uint8, display size) are kept per normalisation, so an alpha or colormap change is a table lookup.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from .. import render
from ..cache import ByteLRU
from .catalog import MethodInfo, method_label
from .state import CellSpec, Photo

__all__ = ["FALLBACK", "MapStore"]

#: The method shown where the selected one needs a head the layer does not have.
FALLBACK = "gradcam"


class MapStore:
    """Raw and index maps for the panel (``lru``: the byte-bounded cache they share)."""

    def __init__(self, engine: Any, methods: Sequence[MethodInfo], max_bytes: int) -> None:
        self.engine = engine
        self.methods = {m.name: m for m in methods}
        self.lru = ByteLRU(max_bytes)

    # ------------------------------------------------------------------ which method runs where
    def has_cam(self, layer: str) -> bool:
        has = getattr(self.engine, "has_cam", None)
        return bool(has(layer)) if has is not None else layer == getattr(self.engine, "cam_layer", None)

    def needs_head(self, method: str) -> bool:
        info = self.methods.get(method)
        return info.needs_head if info is not None else method == "cam"

    def is_expensive(self, method: str) -> bool:
        info = self.methods.get(method)
        return bool(info and info.expensive)

    def resolve(self, layer: str, method: str) -> tuple[str, str]:
        """The method that runs at ``layer`` and, when it is a fall-back, why (plain text)."""
        if self.needs_head(method) and not self.has_cam(layer):
            refit = " (press “Refit CAM head here” for the exact map)" if hasattr(self.engine, "refit_head") else ""
            return FALLBACK, (
                f"{layer} has no GAP → linear head, so {method_label(method)} is not defined there: "
                f"showing {method_label(FALLBACK)}{refit}"
            )
        return method, ""

    # ------------------------------------------------------------------ raw maps
    def cached_raw(self, photo: Photo, spec: CellSpec) -> np.ndarray | None:
        method, _ = self.resolve(spec.layer, spec.method)
        keys = [self._raw_key(photo, spec.layer, c, method, spec.smooth) for c in (spec.class_index, spec.minus)
                if c is not None]
        if not all(self.lru.peek(k) for k in keys):
            return None
        cams = [self.lru.get(k) for k in keys]
        return cams[0] if len(cams) == 1 else cams[0] - cams[1]

    def raw(self, photo: Photo, spec: CellSpec) -> tuple[np.ndarray, str, str]:
        """(raw map, method used, fall-back note) for ``spec``; a contrast spec gives ``map(A) - map(B)``."""
        method, note = self.resolve(spec.layer, spec.method)
        cam = self._one(photo, spec.layer, spec.class_index, method, spec.smooth)
        if spec.minus is not None:
            cam = cam - self._one(photo, spec.layer, spec.minus, method, spec.smooth)
        return cam, method, note

    def put_raw(self, photo: Photo, layer: str, class_index: int, method: str, smooth: str, cam: np.ndarray) -> None:
        """Store a map computed elsewhere (a long method's background job)."""
        self.lru.put(self._raw_key(photo, layer, class_index, method, smooth), np.asarray(cam, np.float32))

    def is_long(self, method: str, smooth: str) -> bool:
        """Whether a map takes long enough to run only on request, in the background (expensive methods and
        aug smoothing, which runs the method once per augmentation)."""
        return self.is_expensive(method) or smooth == "aug"

    def _one(self, photo: Photo, layer: str, class_index: int, method: str, smooth: str = "") -> np.ndarray:
        key = self._raw_key(photo, layer, class_index, method, smooth)
        cam = self.lru.get(key)
        if cam is not None:
            return cam
        options = {"smooth": smooth} if smooth else {}
        if method != "cam" and not self.is_long(method, smooth):
            cam = self._batch_topk(photo, layer, class_index, method, smooth)
            if cam is not None:
                return cam
        cam = np.asarray(self.engine.cam(photo.rgb, class_index, layer=layer, method=method, **options), np.float32)
        self.lru.put(key, cam)
        return cam

    def _batch_topk(self, photo: Photo, layer: str, class_index: int, method: str, smooth: str) -> np.ndarray | None:
        """The maps of every top-k class not cached yet -- plus ``class_index`` -- in ONE batched engine call
        (one gradient pass); ``None`` when there is nothing to batch with it."""
        wanted = [int(i) for i, _, _ in photo.top or []]
        classes = [
            c for c in dict.fromkeys([class_index, *wanted])
            if not self.lru.peek(self._raw_key(photo, layer, c, method, smooth))
        ]
        if len(classes) < 2:
            return None
        options = {"smooth": smooth} if smooth else {}
        cams = np.asarray(
            self.engine.cam([photo.rgb] * len(classes), classes, layer=layer, method=method, **options), np.float32
        )
        for c, cam in zip(classes, cams, strict=True):
            self.lru.put(self._raw_key(photo, layer, c, method, smooth), cam)
        return cams[0]

    # ------------------------------------------------------------------ index maps
    def index(
        self, photo: Photo, spec: CellSpec, cam: np.ndarray, size: tuple[int, int], normalize: Any, relu: bool
    ) -> np.ndarray:
        """``cam`` as a uint8 colormap index map of ``size`` (cached per normalisation)."""
        norm = normalize if isinstance(normalize, str) else tuple(float(v) for v in normalize)
        method, _ = self.resolve(spec.layer, spec.method)
        key = ("index", photo.name, spec.layer, spec.class_index, spec.minus, method, spec.smooth, tuple(size), norm,
               relu)
        index = self.lru.get(key)
        if index is None:
            index = render.to_index(cam, size, normalize=normalize, relu=relu)
            self.lru.put(key, index)
        return index

    # ------------------------------------------------------------------ invalidation
    def forget(self, layer: str, method: str) -> None:
        """Drop every raw and index map of ``method`` at ``layer`` (e.g. after a refit replaced its head)."""
        self.lru.discard(lambda key: key[2] == layer and method in key[3:])

    def clear(self) -> None:
        self.lru.clear()

    @staticmethod
    def _raw_key(photo: Photo, layer: str, class_index: int, method: str, smooth: str = "") -> Hashable:
        return ("raw", photo.name, layer, int(class_index), method, smooth)
