"""The methods view: several methods at one layer, side by side (which methods agree?).

Default: every method of the registry that is not expensive; ``methods_control`` picks a subset, and an expensive
one (Score-CAM, Ablation-CAM, ...) is computed only on request (the Run button; its cost shows first).
"""

from __future__ import annotations

from ..catalog import method_label
from ..state import Cell, CellSpec, Request
from . import ViewContext

__all__ = ["MethodsView"]


class MethodsView:
    """One cell per method."""

    name = "methods"

    def cells(self, req: Request, ctx: ViewContext) -> list[CellSpec]:
        assert req.class_index is not None
        names = req.methods or tuple(m.name for m in ctx.methods if not m.expensive)
        return [CellSpec(req.layer, req.class_index, name) for name in names]

    def label(self, cell: Cell, ctx: ViewContext) -> str:
        text = method_label(cell.spec.method)
        if cell.method != cell.spec.method:
            text += f" -> {method_label(cell.method)} (no head)"
        return f"{text} · {ctx.resolution(cell.spec.layer)}"
