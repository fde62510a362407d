"""The single view: one map of the selected class, layer and method (the panel's original view)."""

from __future__ import annotations

from ..catalog import method_label
from ..state import Cell, CellSpec, Request
from . import ViewContext

__all__ = ["SingleView"]


class SingleView:
    """One cell, unlabelled (the status line says what it shows)."""

    name = "single"

    def cells(self, req: Request, ctx: ViewContext) -> list[CellSpec]:
        assert req.class_index is not None
        return [CellSpec(req.layer, req.class_index, req.method)]

    def label(self, cell: Cell, ctx: ViewContext) -> str:
        return f"{cell.spec.layer} · {ctx.resolution(cell.spec.layer)} · {method_label(cell.method)}"
