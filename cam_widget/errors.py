"""Exception types raised by cam-widget.

Every error names the problem and the fix.  They subclass the built-in ``ValueError`` /
``TypeError`` so that callers who already catch those keep working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CAMError",
    "CancelledError",
    "ClassIndexError",
    "ImageError",
    "ImageTooLargeError",
    "LayerError",
    "MethodError",
    "MissingPackageError",
    "ModelError",
    "NoCAMHeadError",
    "UninformativeMapWarning",
    "check_cancel",
]


class CAMError(ValueError):
    """Base class of every error raised by cam-widget."""


class ImageError(CAMError):
    """An image could not be read or converted (corrupt, empty, unsupported type)."""


class ImageTooLargeError(ImageError):
    """An image exceeds the pixel cap (protects the kernel from decompression bombs)."""


class ModelError(CAMError, TypeError):
    """The model cannot be wrapped (not a Keras model, subclassed, no conv layers, ...)."""


class LayerError(CAMError, KeyError):
    """A layer name is unknown or the layer has no spatial (4-D) output."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable.
        return str(self.args[0]) if self.args else ""


class NoCAMHeadError(CAMError):
    """Exact CAM was requested at a layer that has no GAP -> Dense head."""


class ClassIndexError(CAMError, IndexError):
    """A class index is outside ``0 .. num_classes - 1``."""


class MethodError(CAMError):
    """An unknown CAM method, an option the method does not take, or an option value it cannot use."""


class CancelledError(CAMError):
    """A long computation (Score-CAM, Ablation-CAM, aug smoothing) was cancelled through its ``cancel``
    event.  Nothing half-computed is cached; the engine stays usable."""


class UninformativeMapWarning(UserWarning):
    """A map came out constant (typically all zero): e.g. the gradients at the layer are all zero (a dead
    ReLU) or non-finite.  The map is still returned (zeros where values were not finite); see
    :func:`cam_widget.methods.is_uninformative`."""


def check_cancel(cancel: Any) -> None:
    """Raise :class:`CancelledError` when ``cancel`` (a ``threading.Event`` or ``None``) is set."""
    if cancel is not None and cancel.is_set():
        raise CancelledError("Cancelled: the computation was stopped by its cancel event; nothing was cached.")


class MissingPackageError(CAMError, ImportError):
    """An optional package is not installed; the message names the exact ``pip install`` line."""
