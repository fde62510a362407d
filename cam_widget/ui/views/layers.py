"""The layers view: the same image, class and method at several layers side by side (the paper's own question:
which layer localises best).

Default layers: the deepest layer of each of the three coarsest distinct resolutions (7x7, 14x14, 28x28 on
EfficientNet), plus the exact-CAM layer; ``layers_control`` edits the list.  A layer without a head shows the
fall-back method (the cell's label says so); a refitted head's label carries its fit agreement.
"""

from __future__ import annotations

from typing import Any

from ..catalog import method_label
from ..state import Cell, CellSpec, Request
from . import ViewContext

__all__ = ["LayersView", "default_layers"]


def default_layers(layer_infos: dict[str, Any], cam_layer: str | None, resolutions: int = 3) -> tuple[str, ...]:
    """One layer per distinct resolution (the deepest of each, the ``resolutions`` coarsest) plus the CAM layer,
    in network order."""
    deepest: dict[tuple[int, int], str] = {}
    for name, info in layer_infos.items():
        deepest[(int(info.shape[0]), int(info.shape[1]))] = name
    coarse = sorted(deepest, key=lambda hw: hw[0] * hw[1])[:resolutions]
    chosen = {deepest[hw] for hw in coarse} | ({cam_layer} if cam_layer in layer_infos else set())
    return tuple(n for n in layer_infos if n in chosen)


class LayersView:
    """One cell per layer."""

    name = "layers"

    def cells(self, req: Request, ctx: ViewContext) -> list[CellSpec]:
        assert req.class_index is not None
        layers = req.layers or default_layers(ctx.layer_infos, ctx.cam_layer)
        return [CellSpec(layer, req.class_index, req.method) for layer in layers]

    def label(self, cell: Cell, ctx: ViewContext) -> str:
        layer = cell.spec.layer
        text = f"{layer} · {ctx.resolution(layer)} · {method_label(cell.method)}"
        if cell.method != cell.spec.method:
            text += " (no head)"
        report = ctx.refit_reports.get(layer)
        if report is not None and cell.method == "cam":
            text += f" · refit fit {report.top1_agreement:.0%}"
        return text
