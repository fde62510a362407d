"""The panel's output painted in the browser: :class:`CanvasOutput` puts a frame's cells (display-size photo +
RAW map + label + colour scale) on a :class:`~cam_widget.ui.canvas.CAMCanvas`, whose front end follows the
panel's opacity, colormap and scope controls by itself.  So an opacity, colormap or scope step repaints in the
browser with no message from the kernel; a layer or method change sends the new raw maps (bytes, not a JPEG).

Class changes among the top-k need no kernel round trip either: with the first frame of an (image, layer, method)
in the single view, the canvas gets the raw map and status line of every top-k class (``choices``: 196 bytes of
float32 each at 7x7; the maps come from the map store, which computes the gradient methods' top-k in one batch
anyway) and picks among them in the browser when the class dropdown changes.  The kernel still renders the new
frame (Save, the static PNG) and, finding the browser showing it already, sends nothing for it.  The caption
(colour-bar legend and status line) is drawn by the canvas too: the legend from the scales the browser computes,
so it follows colormap and scope at once, the status line from the kernel's HTML (the choice's own on a class
change).

The kernel blends nothing per step either: a frame (:class:`CanvasPainted`) records what to paint (the composed
mosaic, colormap, opacity; the scope is in the cells) and blends the kernel's copy of the picture only when
something reads it (``overlay_rgb``, the static ``image/png``, the Image path below), once per frame.  Save
renders from the cells at full resolution anyway.

Where the anywidget front end is missing (the package is not installed in the Jupyter server's environment),
the stock ``ipywidgets.Image`` path keeps showing the frames, with a one-line note (see :class:`CanvasOutput`).
:func:`default_output` picks the canvas when anywidget is importable inside a kernel, and the Image path with a
note saying so when it is not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np

from ..optional import install_line
from . import canvas as canvas_mod
from .caption import SCOPE_TEXT, Caption
from .output import ImageOutput, NotedImageOutput, Painted
from .scope import signed_colormap
from .state import Cell, Frame
from .views.grid import Mosaic, blend_mosaic, grid_shape

if TYPE_CHECKING:
    from .frames import FrameBuilder

__all__ = ["CanvasOutput", "CanvasPainted", "default_output"]

FALLBACK_NOTE = (
    "The in-browser canvas did not load here (the anywidget front end is missing): frames come from the kernel. "
    f"{install_line('canvas')} where Jupyter runs, then reload the page."
)
NO_ANYWIDGET_NOTE = (
    "The in-browser canvas is off (the anywidget package is not installed in this kernel): frames come from the "
    f"kernel. {install_line('canvas')} in the kernel's environment, then restart the kernel."
)


@dataclass
class CanvasPainted:
    """A frame for the canvas: the cells the browser paints, and what the kernel needs for its own copy of the
    picture (``mosaic`` blended in ``colormap`` at ``alpha``, signed cells in ``signed``), blended on first read of
    :attr:`rgb` and kept (``blend_seconds`` then says how long it took).  ``fmt``/``data``: the Image path's encoded
    frame, while no browser has confirmed the canvas."""

    cells: list[canvas_mod.CanvasCell]
    columns: int = 1
    mosaic: Mosaic | None = None
    colormap: str = "jet"
    alpha: float = 0.5
    signed: str | None = None
    fmt: str = ""
    data: bytes = b""
    blend_seconds: float = 0.0
    picture: np.ndarray | None = field(default=None, repr=False)  # the blended copy, once read
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)
    legend: str = "single"  # the canvas's legend mode: "single" or "grid"
    key: str = ""  # the class shown (the canvas's choice key), set by CanvasOutput.prefetch
    choices: dict[str, tuple[list[canvas_mod.CanvasCell], str]] | None = None  # new alternatives (None: keep)
    context: Any = None  # what ``choices`` were computed for

    @property
    def rgb(self) -> np.ndarray:
        """The picture as the kernel renders it (RGB uint8, display size, read-only)."""
        with self._lock:  # read from the render thread (Image path) and the user's (overlay_rgb): blend once
            if self.picture is None:
                assert self.mosaic is not None
                t0 = time.perf_counter()
                picture = blend_mosaic(self.mosaic, self.colormap, self.alpha, self.signed)
                self.blend_seconds = time.perf_counter() - t0
                picture.flags.writeable = False  # kept for every later read: nobody may paint into it
                self.picture = picture
            return self.picture

    @property
    def blended(self) -> bool:
        """Whether the kernel's copy has been blended (read) yet."""
        return self.picture is not None


def _cell_photo(mosaic: Mosaic, k: int) -> np.ndarray:
    if not mosaic.cells:  # the single view: the mosaic is the photo
        return mosaic.photo
    y0, y1, x0, x1 = mosaic.cells[k]
    return np.ascontiguousarray(mosaic.photo[y0:y1, x0:x1])


def _canvas_cell(cell: Cell, photo: np.ndarray, label: str) -> canvas_mod.CanvasCell:
    if cell.cam is None:
        return canvas_mod.CanvasCell(photo, None, label)
    # the "map" scope's (vmin, vmax), as render.to_index uses it ("fixed" mode), whatever the scope: the browser
    # applies the scope itself (shared / signed scales from the raw maps), so a scope change sends no cell
    contrast = cell.spec.minus is not None
    assert cell.map_scale is not None, "apply_scope sets every mapped cell's map_scale"
    lo, hi = cell.map_scale
    return canvas_mod.CanvasCell(photo, cell.cam, label, (float(lo), float(hi)), cell.map_relu, signed=contrast,
                                 contrast=contrast)


class CanvasOutput:
    """A :class:`~cam_widget.ui.canvas.CAMCanvas` (DOM class ``cam-canvas-output``) as the panel's output.

    Until the browser confirms that it rendered the canvas (its ES module sends ``ready``), every frame also goes
    to a stock ``ipywidgets.Image`` under a one-line note, both hidden by the canvas's own front end the moment it
    renders (and by the kernel when ``ready`` arrives).  Where the anywidget front end is missing, nothing hides
    them: the panel keeps working on the kernel-rendered Image path, with the note.  No timer decides this: a
    kernel busy with other cells answers ``ready`` late, which only costs a few encoded frames.

    Args:
        png_max, jpeg_quality: for the Image path's frames.
        photo_format: how the photo travels (``"png"``: lossless, the composite equals ``render.overlay``).
    """

    def __init__(self, png_max: int = 0, jpeg_quality: int = 90, photo_format: str = "png") -> None:
        self.canvas = canvas_mod.CAMCanvas(normalize="fixed", photo_format=photo_format)
        self.canvas.add_class("cam-canvas-output")
        self.canvas.scope_text = dict(SCOPE_TEXT)
        #: ship the maps of the top-k classes with the first frame of an (image, layer, method) in the single
        #: view, so a class change among them paints in the browser (False: every class change asks the kernel)
        self.prefetch_classes = True
        self._context: Any = None  # what the choices on the canvas were computed for
        self._pending: CanvasPainted | None = None  # published, waiting for its caption (one message for both)
        self._caption: Caption | None = None
        self.image = ImageOutput(png_max, jpeg_quality)
        self.image.widget.add_class("cam-canvas-fallback")
        self.png_max, self.jpeg_quality = self.image.png_max, self.image.jpeg_quality
        self.note = widgets.HTML(f"<small>{FALLBACK_NOTE}</small>")
        self.note.add_class("cam-canvas-fallback")
        self.widget = widgets.VBox([self.canvas, self.note, self.image.widget], layout=widgets.Layout(max_width="100%"))
        self.widget.add_class("cam-canvas-host")
        self._lock = threading.RLock()
        self._made: tuple[list[Cell], Mosaic, list[canvas_mod.CanvasCell]] | None = None  # the last content's cells
        self._shown: list[canvas_mod.CanvasCell] | None = None  # the cells on the canvas
        self.canvas.on_ready(self._confirmed)

    @property
    def fallback(self) -> bool:
        """Whether frames still go to the Image path (no browser has confirmed the canvas yet)."""
        return not self.canvas.frontend_ready

    def _confirmed(self) -> None:
        with self._lock:  # the canvas is live: stop feeding the Image and hide it for good (re-renders, Voila)
            self.note.layout.display = "none"
            self.image.widget.layout.display = "none"
            if self._caption is not None:  # the canvas draws the caption from now on
                self._caption.widget.layout.display = "none"

    # ------------------------------------------------------------------ set-up by the panel
    def link(self, alpha: widgets.Widget, colormap: widgets.Widget, scope: widgets.Widget | None = None,
             choice: widgets.Widget | None = None, context: Sequence[widgets.Widget] = ()) -> None:
        """Let the browser follow these controls (see :meth:`CAMCanvas.link_controls`): opacity, colormap, the
        normalisation scope, the class dropdown (``choice``: picks among the prefetched classes) and the controls
        whose change makes those stale (``context``: image, layer, method, view, smoothing)."""
        names = [str(o[1] if isinstance(o, tuple) else o) for o in getattr(colormap, "options", ())]
        self.canvas.set_signed_colormaps({n: signed_colormap(n) for n in names})
        self.canvas.link_controls(alpha=alpha, colormap=colormap, scope=scope, choice=choice, context=context)

    def attach_caption(self, caption: Caption) -> None:
        """Draw ``caption``'s status line on the canvas (with its own legend) once the canvas is live; until then
        the caption widget shows both too."""
        self._caption = caption
        caption.attach(self._show_caption)
        if self.canvas.frontend_ready:
            caption.widget.layout.display = "none"

    def _show_caption(self, _legend: str, status: str) -> bool:
        """The caption's sink: the pending frame and this status line go to the canvas in one message.  Returns
        whether the canvas shows the caption (then the caption widget need not be updated)."""
        with self._lock:
            painted, self._pending = self._pending, None
            if painted is not None:
                self._commit(painted, status)
            else:
                self.canvas.set_status(status)
            return self.canvas.frontend_ready

    def _commit(self, painted: CanvasPainted, status: str | None) -> None:
        self._shown = painted.cells
        if painted.choices is not None:
            self._context = painted.context
        with self.canvas.hold_sync():
            self.canvas.legend = painted.legend
            self.canvas.set_cells(painted.cells, columns=painted.columns, status=status, key=painted.key,
                                  choices=painted.choices)  # fmt: skip

    def prefetch(self, builder: FrameBuilder, frame: Frame) -> None:
        """Before ``frame`` is published (render thread): name its class and, with the first frame of an (image,
        layer, method) in the single view, compute the choices (every top-k class's map and status line)."""
        painted = frame.painted
        if not isinstance(painted, CanvasPainted):
            return
        s = frame.state
        painted.key = "" if s.class_index is None else str(int(s.class_index))
        if not frame.ok:
            return  # the choices stay; this frame overrides its own
        context = (dataclasses.replace(s, class_index=None, alpha=0.0, colormap="", scope="map", contrast=None),
                   frame.epoch)  # fmt: skip
        if not self.prefetch_classes or s.view != "single":
            context = None
        if context == self._context:
            return
        t0 = time.perf_counter()
        painted.choices = {} if context is None else self._choices(builder, frame)
        painted.context = context  # on the canvas once published (a frame made stale by a newer one is not)
        frame.timings["prefetch"] = time.perf_counter() - t0

    @staticmethod
    def _choices(builder: FrameBuilder, frame: Frame) -> dict[str, tuple[list[canvas_mod.CanvasCell], str]]:
        s, painted = frame.state, frame.painted
        photo = builder.photos.get(s.image)
        picture = painted.cells[0].image  # the single view's photo at display size: every choice's
        out = {}
        for i in dict.fromkeys([int(c) for c, _, _ in photo.top or []]):
            if i == s.class_index:
                cells, status = frame.cells, frame.status
            else:
                req = dataclasses.replace(s, class_index=i)
                try:
                    cells = builder.cells(req, photo)
                    status = builder.status_line(req, photo, cells)
                except Exception:  # that class's frame will come from the kernel (and show the error)
                    continue
            out[str(i)] = ([_canvas_cell(cells[0], picture, "")], status)
        return out

    # ------------------------------------------------------------------ the Output protocol
    def paint_cells(self, cells: list[Cell], mosaic: Mosaic, colormap: str, alpha: float,
                    signed: str | None = None) -> CanvasPainted:  # fmt: skip
        """A frame from its cells (raw maps) and their composed mosaic: the canvas cells, and the colours for the
        kernel's copy (blended now only for the Image path, while no browser has confirmed the canvas)."""
        with self._lock:
            if self._made is not None and self._made[0] is cells and self._made[1] is mosaic:
                out = self._made[2]  # an opacity/colormap step: the same content, the same canvas cells
            else:
                labels = [""] if not mosaic.cells else [c.label for c in cells]
                out = [_canvas_cell(c, _cell_photo(mosaic, k), labels[k]) for k, c in enumerate(cells[: len(labels)])]
                self._made = (cells, mosaic, out)
        painted = CanvasPainted(out, grid_shape(len(out))[1], mosaic, colormap, alpha, signed,
                                legend="grid" if mosaic.cells else "single")
        if self.fallback:
            painted.fmt, painted.data = self.image.encode(painted.rgb)
        return painted

    def paint(self, mosaic: Mosaic, colormap: str, alpha: float, signed: str | None = None) -> Painted:
        """Without cells (raw maps) there is nothing to send the canvas: paint on the Image path."""
        return self.image.paint(mosaic, colormap, alpha, signed)

    def plain(self, photo: np.ndarray) -> CanvasPainted:
        fmt, data = self.image.encode(photo) if self.fallback else ("", b"")
        return CanvasPainted([canvas_mod.CanvasCell(photo, None)], fmt=fmt, data=data, picture=photo)

    def publish(self, painted: Painted | CanvasPainted) -> None:
        with self._lock:
            if isinstance(painted, CanvasPainted):
                if painted.cells is self._shown and painted.choices is None:
                    pass  # an opacity/colormap step keeps the cells on the canvas: nothing to send (not even to compare)
                elif self._caption is None:
                    self._commit(painted, None)
                else:  # the caption follows in the panel's hold_sync: cells and status line in one message
                    self._pending = painted
            if painted.data and (self.fallback or not isinstance(painted, CanvasPainted)):
                self.image.publish(painted)

    def hold_sync(self) -> Any:
        stack = contextlib.ExitStack()
        stack.enter_context(self.canvas.hold_sync())
        stack.enter_context(self.image.hold_sync())
        return stack


def default_output(png_max: int = 0, jpeg_quality: int = 90, in_kernel: bool = True) -> CanvasOutput | ImageOutput:
    """The canvas inside a kernel (``in_kernel``) when anywidget is installed; in a kernel without it, the stock
    Image path under a one-line note saying so; outside a kernel (scripts, tests), the Image path."""
    if not in_kernel:
        return ImageOutput(png_max, jpeg_quality)
    if canvas_mod.available():
        return CanvasOutput(png_max, jpeg_quality)
    return NotedImageOutput(NO_ANYWIDGET_NOTE, png_max, jpeg_quality)
