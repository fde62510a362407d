"""The panel's views.  A view is a small object the panel asks for the cells of a frame
(:meth:`View.cells`) and their labels (:meth:`View.label`); it computes no map and knows no widget.

* :class:`~cam_widget.ui.views.single.SingleView`: one map (no label);
* :class:`~cam_widget.ui.views.layers.LayersView`: the same class and method at several layers;
* :class:`~cam_widget.ui.views.methods.MethodsView`: several methods at one layer;
* :class:`~cam_widget.ui.views.classes.ClassesView`: the top-k classes and a signed contrast map A - B.

Grids are composed in :mod:`cam_widget.ui.views.grid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..catalog import MethodInfo
from ..state import Cell, CellSpec, Photo, Request

__all__ = ["View", "ViewContext", "all_views"]


@dataclass
class ViewContext:
    """What a view may read: the photo, the model's layers and classes, the methods, the refit reports."""

    photo: Photo
    layer_infos: dict[str, Any]
    class_names: list[str]
    methods: list[MethodInfo]
    cam_layer: str | None
    refit_reports: dict[str, Any]
    top_k: int

    def resolution(self, layer: str) -> str:
        info = self.layer_infos.get(layer)
        return f"{info.shape[0]}x{info.shape[1]}" if info is not None else "?"

    def method_info(self, name: str) -> MethodInfo | None:
        return next((m for m in self.methods if m.name == name), None)

    def class_text(self, index: int) -> str:
        probs = self.photo.probs
        p = f" {float(probs[index]):.0%}" if probs is not None else ""
        return f"{self.class_names[index]}{p}"


class View(Protocol):
    """A view: which cells a request shows, and how each is labelled."""

    name: str

    def cells(self, req: Request, ctx: ViewContext) -> list[CellSpec]: ...

    def label(self, cell: Cell, ctx: ViewContext) -> str: ...


def all_views() -> dict[str, View]:
    """The panel's views by ``view_control`` value."""
    from .classes import ClassesView
    from .layers import LayersView
    from .methods import MethodsView
    from .single import SingleView

    views: list[View] = [SingleView(), LayersView(), MethodsView(), ClassesView()]
    return {v.name: v for v in views}
