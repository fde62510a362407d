"""Resolving what a user names: classes (by index or name) and layers (by name, with defaults), with clear
errors that name the closest matches.  Used by :class:`cam_widget.engine.CAMEngine`; no Keras calls here."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import CAMError, ClassIndexError, LayerError, NoCAMHeadError
from .keras_graph import LayerInfo

__all__ = ["ClassNames", "LayerIndex"]


class ClassNames:
    """A model's class names (default ``"class 0"``, ...) and the lookup of a class by index or name."""

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None) -> None:
        self.num_classes = num_classes
        if class_names is None:
            names = [f"class {i}" for i in range(num_classes)]
        else:
            names = [str(n) for n in class_names]
            if len(names) != num_classes:
                raise CAMError(
                    f"class_names has {len(names)} entries but the model has {num_classes} classes; "
                    "pass one name per output unit, in output order."
                )
        self.names: list[str] = names
        self._index = {n: i for i, n in reversed(list(enumerate(names)))}  # first index of a repeated name

    def index(self, name: int | str) -> int:
        """The index of a class given by index or by name: the exact name, else a unique case-insensitive
        prefix (``"tabby"`` -> ``"tabby cat"``).  :class:`ClassIndexError` with the closest names otherwise."""
        if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
            c = int(name)
            if not 0 <= c < self.num_classes:
                raise ClassIndexError(
                    f"class_index {c} is out of range: the model has {self.num_classes} classes "
                    f"(0..{self.num_classes - 1})."
                )
            return c
        if not isinstance(name, str):
            raise ClassIndexError(
                f"A class is an int index or a class name (str); got {name!r}. "
                "Find classes with engine.top_k(image) or engine.class_names."
            )
        if name in self._index:
            return self._index[name]
        low = name.strip().lower()
        hits = [i for i, n in enumerate(self.names) if n.lower().startswith(low)] if low else []
        exact = [i for i in hits if self.names[i].lower() == low]
        if len(exact) == 1 or len(hits) == 1:
            return (exact or hits)[0]
        if len(hits) > 1:
            shown = ", ".join(repr(self.names[i]) for i in hits[:5])
            raise ClassIndexError(f"Class name {name!r} is ambiguous: it starts {len(hits)} class names ({shown}...).")
        close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ClassIndexError(
            f"No class named {name!r} (or starting so) among the model's {self.num_classes} classes.{hint} "
            "See engine.class_names or engine.top_k(image)."
        )

    def many(self, class_index: int | str | Sequence[int | str], n: int) -> list[int]:
        """``n`` class indices: one class for all, or a sequence of exactly ``n``."""
        if isinstance(class_index, (int, np.integer, str)) and not isinstance(class_index, bool):
            return [self.index(class_index)] * n
        if isinstance(class_index, (list, tuple, np.ndarray)) and len(class_index) == n:
            return [self.index(c.item() if isinstance(c, np.generic) else c) for c in class_index]
        raise ClassIndexError(
            f"class_index must be an int or a class name (or one per image); got {class_index!r}. "
            "Find classes with engine.top_k(image) or engine.class_names."
        )


class LayerIndex:
    """A model's spatial layers by name, the default layer, and the errors for a name that is not one.

    ``traced`` maps every traced call name to its call (with ``outputs``), so a non-spatial layer's error
    can show its shape."""

    def __init__(self, layers: Sequence[LayerInfo], traced: dict[str, Any], model_name: str, cam_layer: str | None):
        self.layers = list(layers)
        self.by_name = {info.name: info for info in self.layers}
        self._traced = traced
        self._model_name = model_name
        self.cam_layer = cam_layer

    def resolve(self, layer: str | None, needs_head: bool) -> str:
        """The spatial layer called ``layer``; for ``None`` the CAM layer, else (if no head is needed) the last
        spatial layer.  :class:`LayerError` naming close matches, :class:`NoCAMHeadError` for a head method on
        a model without a head."""
        if layer is None:
            if self.cam_layer is not None:
                return self.cam_layer
            if needs_head:
                raise NoCAMHeadError(self.no_head_message(self.layers[-1].name))
            return self.layers[-1].name
        if not isinstance(layer, str):
            raise LayerError(f"layer must be a layer name (str); got {type(layer).__name__}.")
        if layer in self.by_name:
            return layer
        close = difflib.get_close_matches(layer, list(self.by_name), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        traced = self._traced.get(layer)
        if traced is not None:
            shape = tuple(traced.outputs[0].shape)
            raise LayerError(
                f"Layer {layer!r} has output shape {shape}, not a spatial (batch, h, w, c) map, so it cannot be "
                f"mapped. Pick one of engine.layers() (e.g. {self.layers[-1].name!r}).{hint}"
            )
        raise LayerError(
            f"No spatial layer named {layer!r} in model {self._model_name!r}. Names of nested layers carry their "
            f"model as a prefix, e.g. {self.layers[-1].name!r}; see engine.layers().{hint}"
        )

    def no_head_message(self, layer: str) -> str:
        """Why exact CAM is not defined at ``layer`` and what to use instead."""
        if self.cam_layer is None:
            where = "This model has no GAP -> Dense head at all (e.g. Flatten + fully connected layers)"
        else:
            where = f"Layer {layer!r} has no GAP -> Dense head (the model's own is on {self.cam_layer!r})"
        return (
            f"{where}, so exact CAM is not defined there. Use method='gradcam' (or any other method of "
            f"cam_widget.methods(); they work at any spatial layer), or fit a head first with "
            f"engine.refit_head({layer!r}, images)."
        )
