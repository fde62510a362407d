"""Loading user models safely."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelError
from .tf_import import keras

__all__ = ["load_model"]


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` model with Keras ``safe_mode=True`` (no arbitrary code from Lambda layers).

    Raises :class:`ModelError` with the reason and the fix when the file is missing, is not a Keras 3
    archive, or needs unsafe deserialisation.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"Model file not found: {str(p)!r}.")
    if p.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(
            f"{p.name!r} is not a Keras model file; save your model with model.save('model.keras'). "
            "(TensorFlow SavedModel directories and pickles are not loaded.)"
        )
    try:
        return keras.saving.load_model(str(p), compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ModelError(
                f"{p.name!r} contains a Lambda layer (arbitrary Python code), which safe mode refuses to load. "
                "Replace the Lambda with a registered custom layer, or, only if you trust the file, load it "
                "yourself with keras.saving.load_model(path, safe_mode=False)."
            ) from None
        raise ModelError(f"Could not load {p.name!r}: {exc}") from exc
    except Exception as exc:
        raise ModelError(f"Could not load {p.name!r} as a Keras model: {type(exc).__name__}: {exc}") from exc
