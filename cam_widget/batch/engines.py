"""The engine behind a job, built once per process from the job's description.

Workers never receive an engine: :func:`engine_for` builds it from ``job.engine_spec()`` the first
time a process needs it and keeps it for every later shard of that process (building costs a
TensorFlow import and a model load, seconds; a shard costs less).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ModelError
from .job import BatchJob

__all__ = ["class_names_for", "engine_for", "resolve_preprocess"]

_ENGINES: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def resolve_preprocess(name: str | None) -> Callable[[Any], Any] | None:
    """``"resnet50"`` / ``"keras.applications.resnet50.preprocess_input"`` -> that function."""
    if name is None:
        return None
    from ..tf_import import keras

    dotted = name[len("keras.applications.") :] if name.startswith("keras.applications.") else name
    module_name = dotted.removesuffix(".preprocess_input")
    module = getattr(keras.applications, module_name, None)
    fn = getattr(module, "preprocess_input", None) if module is not None else None
    if fn is None:
        known = sorted(n for n in dir(keras.applications) if hasattr(getattr(keras.applications, n), "preprocess_input"))
        raise ModelError(
            f"preprocess {name!r} is not a keras.applications preprocess; use one of {', '.join(known)}."
        )
    return fn


def class_names_for(job: BatchJob) -> list[str] | None:
    """The class names labels are resolved against, known without building the engine: the job's
    own, else the ImageNet names for the default model, else ``None`` (ask the engine)."""
    if job.class_names is not None:
        return list(job.class_names)
    if job.model == "default":
        from ..classnames import imagenet_class_names

        return imagenet_class_names()
    return None


def _build(job: BatchJob) -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if job.model == "default":
        if job.preprocess is not None:
            raise ModelError("The default model brings its own preprocess; leave preprocess unset for model='default'.")
        from ..defaults import default_engine

        kwargs: dict[str, Any] = {}
        if job.class_names is not None:
            kwargs["class_names"] = list(job.class_names)
        return default_engine(job.input_size or 224, **kwargs)
    from ..engine import CAMEngine
    from ..loading import load_model

    model = load_model(job.model)
    return CAMEngine(
        model,
        preprocess=resolve_preprocess(job.preprocess),
        class_names=list(job.class_names) if job.class_names is not None else None,
        input_size=job.input_size,
    )


def engine_for(job: BatchJob) -> Any:
    """This process's engine for ``job`` (built on first use, then reused), its forward passes frozen
    (:attr:`cam_widget.engine.CAMEngine.frozen_forward`: a few seconds once, then ~0.6x the time per batch)."""
    key = job.engine_spec()
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _build(job)
            engine.frozen_forward = True
            _ENGINES[key] = engine
        return engine
