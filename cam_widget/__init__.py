"""cam-widget: exact, fast Class Activation Maps for Keras image classifiers, live in JupyterLab.

The small public API::

    engine = cam_widget.CAMEngine(model, preprocess=..., class_names=...)
    cam = engine.cam(image, class_index)            # raw map at the CAM layer
    rgb = cam_widget.overlay(image, cam, alpha=0.5)  # heat map over the photo
    cam_widget.CAMExplorer(engine, images)           # the interactive panel

Heavy modules (Keras, TensorFlow, ipywidgets) are imported on first use of the names that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    CAMError,
    CancelledError,
    ClassIndexError,
    ImageError,
    ImageTooLargeError,
    LayerError,
    MethodError,
    MissingPackageError,
    ModelError,
    NoCAMHeadError,
    UninformativeMapWarning,
)
from .imaging import load_image

# Eager, after the subpackage import: the package-level name ``methods`` is the FUNCTION (the registry),
# shadowing the subpackage attribute (``from cam_widget.methods import base`` still works).
from .methods import Method, is_uninformative, method, methods
from .metrics.evaluate import evaluate, load_cases
from .metrics.faithfulness import confidence_change, deletion_insertion, road
from .metrics.localize import iou, localize, peak, pointing_game
from .render import overlay, shared_scale

__version__ = "0.1.0"

_LAZY = {
    "CAMEngine": "engine",
    "LayerInfo": "keras_graph",
    "Head": "keras_graph",
    "load_model": "loading",
    "default_engine": "defaults",
    "default_preprocess": "defaults",
    "imagenet_class_names": "classnames",
    "FitReport": "refit",
    "sample_images": "samples",
    "CAMExplorer": "ui.panel",
    "Gallery": "ui.gallery",
    "sanity_check": "metrics.sanity",
}

__all__ = [
    "CAMEngine",
    "CAMError",
    "CAMExplorer",
    "CancelledError",
    "ClassIndexError",
    "FitReport",
    "Gallery",
    "Head",
    "ImageError",
    "ImageTooLargeError",
    "LayerError",
    "LayerInfo",
    "Method",
    "MethodError",
    "MissingPackageError",
    "ModelError",
    "NoCAMHeadError",
    "UninformativeMapWarning",
    "confidence_change",
    "default_engine",
    "default_preprocess",
    "deletion_insertion",
    "evaluate",
    "imagenet_class_names",
    "iou",
    "is_uninformative",
    "load_cases",
    "load_image",
    "load_model",
    "localize",
    "method",
    "methods",
    "overlay",
    "peak",
    "pointing_game",
    "road",
    "sample_images",
    "sanity_check",
    "shared_scale",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cam_widget' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
