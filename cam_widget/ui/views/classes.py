"""The classes view: the top-k classes as a grid, and the signed contrast map A - B of two chosen classes
("what makes it a tabby and not a tiger cat"), on a diverging colormap centred on zero."""

from __future__ import annotations

from ..state import Cell, CellSpec, Request
from . import ViewContext

__all__ = ["ClassesView"]


class ClassesView:
    """One cell per top-k class, then the contrast cell (A = the class control, B = the contrast control)."""

    name = "classes"

    def cells(self, req: Request, ctx: ViewContext) -> list[CellSpec]:
        assert req.class_index is not None
        top = [i for i, _, _ in ctx.photo.top or []][: ctx.top_k]
        out = [CellSpec(req.layer, c, req.method) for c in top]
        b = req.contrast
        if b is None or b == req.class_index:
            b = next((c for c in top if c != req.class_index), None)
        if b is not None:
            out.append(CellSpec(req.layer, req.class_index, req.method, minus=b))
        return out

    def label(self, cell: Cell, ctx: ViewContext) -> str:
        s = cell.spec
        if s.minus is not None:
            return f"{ctx.class_names[s.class_index]} - {ctx.class_names[s.minus]}"
        return ctx.class_text(s.class_index)
