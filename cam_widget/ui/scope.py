"""The normalisation scope: how the raw maps of one view become colours.

* ``"map"``: each map on its own range (the panel's ``normalize``/``relu``, min-max by default);
* ``"shared"``: one ``(0, max)`` scale over every map shown (:func:`cam_widget.render.shared_scale`), so a weaker
  class or layer looks weaker and the colour bar's numbers hold for every cell;
* ``"signed"``: no ReLU, each map on ``(-m, +m)`` with ``m`` its largest magnitude, a diverging colormap centred on
  zero, so negative evidence shows.

A contrast map (class A - class B) is signed in every scope: its sign is the point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import render
from .state import Cell

__all__ = ["DIVERGING", "apply_scope", "is_diverging", "signed_colormap", "symmetric_scale"]

#: The diverging colormap used for signed maps unless the colormap control already holds a diverging one.
DIVERGING = "RdBu_r"
_DIVERGING = {"RdBu", "coolwarm", "bwr", "seismic", "PiYG", "PRGn", "BrBG", "PuOr", "RdGy", "RdYlBu", "RdYlGn",
              "Spectral", "berlin", "managua", "vanimo"}


def is_diverging(colormap: str) -> bool:
    return colormap.removesuffix("_r") in _DIVERGING


def signed_colormap(colormap: str) -> str:
    """The colormap signed maps are drawn in: ``colormap`` if it is diverging, else :data:`DIVERGING`."""
    return colormap if is_diverging(colormap) else DIVERGING


def symmetric_scale(cams: list[np.ndarray]) -> tuple[float, float]:
    """``(-m, m)`` with ``m`` the largest finite magnitude of ``cams`` (``(-1, 1)`` for all-zero maps)."""
    m = 0.0
    for cam in cams:
        finite = np.abs(cam[np.isfinite(cam)])
        if finite.size:
            m = max(m, float(finite.max()))
    return (-m, m) if m > 0 else (-1.0, 1.0)


def apply_scope(cells: list[Cell], scope: str, normalize: Any = "minmax", relu: bool = True) -> None:
    """Set each cell's ``normalize``, ``relu``, ``scale`` and ``signed`` for ``scope`` (in place), and its
    ``map_scale`` / ``map_relu`` (the ``"map"`` scope's, whatever ``scope`` is: the browser switches scopes from
    them; a contrast map's are its symmetric scale, no ReLU)."""
    if scope not in ("map", "shared", "signed"):
        raise ValueError(f"scope must be 'map', 'shared' or 'signed'; got {scope!r}.")
    plain = [c for c in cells if c.cam is not None and c.spec.minus is None]
    signed = [c for c in cells if c.cam is not None and c.spec.minus is not None]
    for c in plain:
        c.map_scale, c.map_relu = render.value_range(c.cam, normalize, relu), relu
    if scope == "shared" and plain:
        shared = render.shared_scale([c.cam for c in plain], relu=True)
        for c in plain:
            c.normalize, c.relu, c.scale, c.signed = shared, True, shared, False
    elif scope == "signed":
        signed = signed + plain
    else:
        for c in plain:
            c.normalize, c.relu, c.signed = normalize, relu, False
            c.scale = c.map_scale
    for c in signed:
        c.scale = c.normalize = symmetric_scale([c.cam])
        c.relu, c.signed = False, True
        if c.spec.minus is not None:
            c.map_scale, c.map_relu = c.scale, False
