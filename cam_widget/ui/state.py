"""The panel's data: a snapshot of the controls, a photo, a grid cell, a frame.

Plain dataclasses, no widgets and no engine: the views, the frame builder and the outputs pass these around.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Cell", "CellSpec", "Frame", "Photo", "Request"]


@dataclass(frozen=True)
class Request:
    """One render request: a snapshot of the controls (what the next frame shows)."""

    image: str | None
    class_index: int | None
    layer: str
    method: str
    alpha: float
    colormap: str
    view: str = "single"
    scope: str = "map"
    layers: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    contrast: int | None = None
    smooth: str = ""  # "", "aug" or "eigen": the methods' smoothing option

    def content(self) -> Request:
        """The request without the blend-only settings: two requests with equal content share their maps and
        their composed grid, so an alpha or colormap change only re-blends."""
        return dataclasses.replace(self, alpha=0.0, colormap="")


@dataclass
class Photo:
    """A photo at full resolution and at display size, with the model's verdict once computed."""

    name: str
    rgb: np.ndarray  # full resolution, RGB uint8, read-only
    display: np.ndarray  # longest side <= display_size
    probs: np.ndarray | None = None  # class probabilities (once computed)
    top: list[tuple[int, str, float]] | None = None  # (index, name, probability), best first
    sized: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # the photo at grid-cell sizes


@dataclass(frozen=True)
class CellSpec:
    """What a view asks for in one cell: a map of ``class_index`` at ``layer`` by ``method``; with ``minus`` set,
    the signed contrast ``map(class_index) - map(minus)``."""

    layer: str
    class_index: int
    method: str
    minus: int | None = None
    expensive: bool = False  # computed only on request (the Run button)
    smooth: str = ""


@dataclass
class Cell:
    """One computed cell: the raw map (layer resolution), how it is coloured, and its label."""

    spec: CellSpec
    cam: np.ndarray | None  # raw float32 map, None when the cell shows the photo alone
    method: str  # the method actually used (a fall-back may differ from spec.method)
    label: str = ""
    note: str = ""  # e.g. why a fall-back method is shown, or what an expensive method would cost
    error: str = ""  # HTML of the error that left this cell without a map
    scale: tuple[float, float] = (0.0, 1.0)  # raw values at the colour bar's two ends
    normalize: Any = "minmax"  # what render.to_index gets (see ui/scope.py)
    relu: bool = True
    signed: bool = False  # coloured with the diverging colormap (signed scope, contrast maps)
    # the "map" scope's scale and ReLU whatever the scope (set by scope.apply_scope): what the in-browser canvas
    # gets, so that it can switch scopes itself
    map_scale: tuple[float, float] | None = None
    map_relu: bool = True
    index: np.ndarray | None = None  # uint8 colormap index map at the cell's size

    @property
    def raw(self) -> tuple[float, float]:
        """Raw min and max of the finite values of the map ((0, 0) without one)."""
        if self.cam is None:
            return (0.0, 0.0)
        finite = self.cam[np.isfinite(self.cam)]
        return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


@dataclass
class Frame:
    """What is on screen (or was computed for it)."""

    generation: int
    state: Request
    ok: bool
    data: bytes = b""
    fmt: str = "png"
    cells: list[Cell] = field(default_factory=list)
    legend: str = ""
    status: str = ""
    epoch: int = 0  # bumped when heads or caches change: an equal state must still be recomputed
    class_update: tuple[tuple, int] | None = None  # (class options, value) when the image changed
    timings: dict[str, float] = field(default_factory=dict)
    painted: Any = None  # what the output put on screen (output-specific; its ``rgb`` is the displayed picture)

    @property
    def rgb(self) -> np.ndarray | None:
        """The displayed picture (RGB uint8, display size) of a frame with a map, else ``None``.  An output that
        paints in the browser blends the kernel's copy only here, on first use (Save, ``overlay_rgb``, static PNG)."""
        return getattr(self.painted, "rgb", None) if self.ok else None

    @property
    def cam(self) -> np.ndarray | None:
        """The raw map of the first cell (the single view's map)."""
        return self.cells[0].cam if self.cells else None

    @property
    def scale(self) -> tuple[float, float]:
        return self.cells[0].scale if self.cells else (0.0, 0.0)

    @property
    def raw(self) -> tuple[float, float]:
        return self.cells[0].raw if self.cells else (0.0, 0.0)
