"""Exception types raised by cam-widget.

Every error names the problem and the fix.  They subclass the built-in ``ValueError`` /
``TypeError`` so that callers who already catch those keep working.
"""

from __future__ import annotations

__all__ = [
    "CAMError",
    "ClassIndexError",
    "ImageError",
    "ImageTooLargeError",
    "LayerError",
    "MissingPackageError",
    "ModelError",
    "NoCAMHeadError",
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


class MissingPackageError(CAMError, ImportError):
    """An optional package is not installed; the message names the exact ``pip install`` line."""
