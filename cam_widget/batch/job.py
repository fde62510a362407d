"""The description of a dataset job: plain, picklable data (never a live engine).

A :class:`BatchJob` says which model to build, what to compute and where the images and the
results are.  It travels to Dask workers as it is; each worker builds its own engine from it
(:mod:`cam_widget.batch.engines`).  Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import CAMError
from ..imaging import MAX_PIXELS

__all__ = ["KNOWN_METRICS", "BatchJob", "BatchJobError"]

#: Metric names a job may ask for.  ``iou`` and ``pointing`` need a box per item; ``deletion`` and
#: ``insertion`` are RISE's AUCs (:func:`cam_widget.deletion_insertion`, 66 extra images per map).
KNOWN_METRICS = ("iou", "pointing", "deletion", "insertion")


class BatchJobError(CAMError):
    """A job cannot run as described (bad option, missing folder, unknown class, other job in ``out``)."""


def _names(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(dict.fromkeys(str(p).strip().lower() for p in parts if str(p).strip()))
    if not names and what == "methods":
        raise BatchJobError("methods must name at least one method, e.g. ('cam',).")
    return names


@dataclass(frozen=True, kw_only=True)
class BatchJob:
    """One dataset job.  All fields are plain data, so a job pickles and prints.

    Args:
        model: ``"default"`` (the embedded ImageNet EfficientNet-Lite0) or a path to a ``.keras``
            file (loaded with Keras ``safe_mode``).  The path must be readable on every worker.
        preprocess: ``None`` (the default model's own scaling; a user model gets float32 pixels)
            or the name of a ``keras.applications`` preprocess: ``"resnet50"``, ``"efficientnet"``,
            or a dotted name such as ``"keras.applications.resnet50.preprocess_input"``.
        class_names: one name per class (default: the ImageNet names for the default model,
            ``"class 0"``, ... otherwise).
        input_size: the size the whole image is resized to (``None``: the model's own / 224).
        layer: the spatial layer to map (default: the model's CAM layer).
        methods: map methods by their :func:`cam_widget.methods` names, e.g. ``("cam", "gradcam",
            "scorecam")``; each maps the top-1 predicted class.
        metrics: any of ``iou``, ``pointing`` (need a box per item), ``deletion``, ``insertion``.
        items: a folder (searched recursively; ``root/<class>/<file>`` gives labels), a CSV or
            JSON file of ``path[, label][, x0, y0, x1, y1]``, or a list of paths / such records.
        out: the output folder (``results.parquet``, ``maps/shard-NNNNN.npz``, ``job.json``).
            With Dask it must be storage every worker can write (a shared file system).
        shard_size: images per shard: the unit of work, of resume and of one maps file.
        batch_size: images per forward pass inside a shard.
        top_k: how many best classes each row lists.
        threshold: the paper's box threshold (fraction of the map's maximum).
        tolerance: the pointing game's tolerance in pixels.
        max_pixels: images above this many pixels become error rows instead of being decoded.
    """

    items: Any
    out: str | os.PathLike
    model: str | os.PathLike = "default"
    preprocess: str | None = None
    class_names: Sequence[str] | None = None
    input_size: int | tuple[int, int] | None = None
    layer: str | None = None
    methods: str | Sequence[str] = ("cam",)
    metrics: str | Sequence[str] = ("iou", "pointing")
    shard_size: int = 64
    batch_size: int = 32
    top_k: int = 5
    threshold: float = 0.2
    tolerance: float = 15.0
    max_pixels: int = MAX_PIXELS

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "out", str(self.out))
        model = str(self.model)
        set_(self, "model", "default" if model == "default" else str(Path(model).expanduser().resolve()))
        set_(self, "methods", _names(self.methods, "methods"))
        set_(self, "metrics", _names(self.metrics, "metrics"))
        if self.class_names is not None:
            set_(self, "class_names", tuple(str(n) for n in self.class_names))
        if isinstance(self.input_size, (list, tuple)):
            set_(self, "input_size", tuple(int(v) for v in self.input_size))
        if isinstance(self.items, list):
            set_(self, "items", tuple(self.items))
        elif isinstance(self.items, os.PathLike):
            set_(self, "items", str(self.items))
        unknown = [m for m in self.metrics if m not in KNOWN_METRICS]
        if unknown:
            raise BatchJobError(f"Unknown metric(s) {unknown}; choose from {list(KNOWN_METRICS)}.")
        for name in ("shard_size", "batch_size", "top_k", "max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BatchJobError(f"{name} must be a positive integer; got {value!r}.")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise BatchJobError(f"threshold must lie in [0, 1]; got {self.threshold!r}.")
        if not 0.0 <= float(self.tolerance) < float("inf"):
            raise BatchJobError(f"tolerance must be a finite number of pixels >= 0; got {self.tolerance!r}.")
        if not str(self.out).strip():
            raise BatchJobError("out must name an output folder.")

    # --------------------------------------------------------------------- identity
    def engine_spec(self) -> tuple[Any, ...]:
        """What decides the engine a worker builds (its per-process cache key)."""
        return (self.model, self.preprocess, self.class_names, self.input_size)

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON-ready data (``items`` as given when it is a path, else only counted)."""
        d = asdict(self)
        if not isinstance(self.items, str):
            d["items"] = f"<list of {len(self.items)} items>"
        return json.loads(json.dumps(d, default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> BatchJob:
        """The job back from :meth:`to_dict` (``job.json``); ``overrides`` replace fields (e.g. ``items``
        when the file only counted them)."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields.update(overrides)
        return cls(**fields)

    def fingerprint(self, items: Sequence[Any]) -> str:
        """A hash of everything that changes the results: settings and the resolved item list.

        ``out`` and ``batch_size``-independent fields only: the same job re-run (to resume) gets
        the same fingerprint; a different one writing into the same folder does not."""
        keyed = {
            "model": self.model,
            "preprocess": self.preprocess,
            "class_names": list(self.class_names) if self.class_names else None,
            "input_size": self.input_size,
            "layer": self.layer,
            "methods": list(self.methods),
            "metrics": list(self.metrics),
            "shard_size": self.shard_size,
            "top_k": self.top_k,
            "threshold": float(self.threshold),
            "tolerance": float(self.tolerance),
            "max_pixels": self.max_pixels,
            "items": [list(i) for i in items],
        }
        return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:20]
