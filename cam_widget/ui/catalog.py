"""The methods the panel offers: the records of ``cam_widget.methods()`` (the methods package's registry).

The panel reads only the record fields ``name``, ``family``, ``needs_head``, ``cost``, ``description``, ``paper``
and ``expensive``; an engine that predates the registry gets the two methods it always had.  Nothing here
computes a map.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MethodInfo", "available_methods", "method_label"]

#: Display names; a method the table does not know is shown by its registry name.
LABELS = {
    "cam": "CAM", "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "xgradcam": "XGrad-CAM",
    "hirescam": "HiResCAM", "layercam": "Layer-CAM", "eigencam": "Eigen-CAM", "scorecam": "Score-CAM",
    "ablationcam": "Ablation-CAM",
}
#: Order of the families in the picker.
FAMILIES = ("head", "gradient", "activation", "perturbation", "smoothing")


@dataclass(frozen=True)
class MethodInfo:
    """What the panel needs to know about one method."""

    name: str
    family: str
    needs_head: bool
    cost: str
    description: str
    paper: str = ""
    expensive: bool = False
    display: str = ""
    record: Any = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return self.display or method_label(self.name)

    def estimate(self, engine: Any, layer: str, smooth: str | None = None) -> str:
        """What one new map costs at ``layer``, said before it runs (the registry's estimate when it has one)."""
        estimate = getattr(self.record, "estimate", None)
        if estimate is not None:
            try:
                return str(estimate(engine, layer, **({"smooth": smooth} if smooth else {})))
            except Exception:  # an estimate is a courtesy: fall back to the record's cost line
                pass
        return self.cost + (" x the augmentations of aug smoothing" if smooth == "aug" else "")

    @property
    def tooltip(self) -> str:
        paper = f" — {self.paper}" if self.paper else ""
        return f"[{self.family}] {self.description} Cost: {self.cost}.{paper}"


_BUILTIN = (
    MethodInfo("cam", "head", True, "none (cached features)",
               "Exact CAM: the GAP->Dense head's weights on this layer's features (needs a head here).",
               "Zhou et al., CVPR 2016"),
    MethodInfo("gradcam", "gradient", False, "one gradient pass (for the whole top-k)",
               "Grad-CAM: channel weights from gradients of the class score (any layer).",
               "Selvaraju et al., ICCV 2017"),
)


def method_label(name: str) -> str:
    return LABELS.get(name, name)


def _registry() -> list[Any] | None:
    try:
        module = importlib.import_module("cam_widget.methods")
    except ImportError:
        return None
    fn = getattr(module, "methods", None)
    return list(fn()) if callable(fn) else None


def available_methods() -> list[MethodInfo]:
    """Every method of the registry, grouped by family (the picker's order)."""
    records = _registry()
    if not records:
        return list(_BUILTIN)
    out = []
    for r in records:
        get = r.get if isinstance(r, dict) else (lambda k, d=None, r=r: getattr(r, k, d))
        out.append(MethodInfo(
            name=str(get("name")), family=str(get("family", "other")), needs_head=bool(get("needs_head", False)),
            cost=str(get("cost", "")), description=str(get("description", "")), paper=str(get("paper", "") or ""),
            expensive=bool(get("expensive", False)), display=str(get("label", "") or ""), record=r,
        ))
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(out, key=lambda m: rank.get(m.family, len(rank)))
