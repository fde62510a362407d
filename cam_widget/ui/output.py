"""Where a frame goes on screen.  An output turns a composed :class:`~cam_widget.ui.views.grid.Mosaic` into what
its front end shows (:meth:`paint`, in the render thread) and puts it there (:meth:`publish`, inside the panel's
``hold_sync``).  :class:`ImageOutput` is the stock ``ipywidgets.Image``: the kernel blends and encodes ONE picture
per change.  Another output (e.g. a canvas that blends in the browser) implements the same members.

Live frames are JPEG at every size by default (``png_max=0``): PNG costs 5-10x more to encode and is ~5x larger
even at 224 px, and speed is the point; Save and the static fallback are PNG (lossless).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import ipywidgets as widgets
import numpy as np

from .. import render
from .views.grid import Mosaic, blend_mosaic

__all__ = ["ImageOutput", "NotedImageOutput", "Output", "Painted"]


@dataclass
class Painted:
    """What :class:`ImageOutput` put on screen: the blended picture and its encoded bytes.  (An output may paint
    something else, e.g. :class:`~cam_widget.ui.canvas_output.CanvasPainted`; the frame reads ``rgb``, ``fmt``,
    ``data`` and ``blend_seconds`` of it.)"""

    rgb: np.ndarray
    fmt: str
    data: bytes
    blend_seconds: float = 0.0


class Output(Protocol):
    """A front end for the panel's frames.  Optional members: ``paint_cells(cells, mosaic, colormap, alpha,
    signed_colormap)`` (called instead of ``paint`` with the raw-map cells), ``link(alpha_control,
    colormap_control, scope=, choice=, context=)``, ``prefetch(builder, frame)`` (before a frame is published) and
    ``attach_caption(caption)`` (see :class:`~cam_widget.ui.canvas_output.CanvasOutput`)."""

    widget: widgets.DOMWidget

    def paint(self, mosaic: Mosaic, colormap: str, alpha: float, signed_colormap: str) -> Painted: ...

    def publish(self, painted: Painted) -> None: ...

    def plain(self, photo: np.ndarray) -> Painted: ...

    def hold_sync(self) -> Any: ...


class ImageOutput:
    """An ``ipywidgets.Image`` (DOM class ``cam-image``) showing kernel-blended, encoded frames."""

    def __init__(self, png_max: int = 0, jpeg_quality: int = 90) -> None:
        self.png_max = int(png_max)
        self.jpeg_quality = int(jpeg_quality)
        # natural size (never stretched by the VBox), shrunk only to fit narrow outputs
        self.image = widgets.Image(
            format="png", layout=widgets.Layout(max_width="100%", height="auto", align_self="flex-start")
        )
        self.image.add_class("cam-image")
        self.widget: widgets.DOMWidget = self.image  # what the panel lays out

    def paint(self, mosaic: Mosaic, colormap: str, alpha: float, signed_colormap: str | None = None) -> Painted:
        t0 = time.perf_counter()
        rgb = blend_mosaic(mosaic, colormap, alpha, signed_colormap)
        t1 = time.perf_counter()
        return Painted(rgb, *self.encode(rgb), blend_seconds=t1 - t0)

    def plain(self, photo: np.ndarray) -> Painted:
        """The photo alone (an error frame: no stale heat map under a new setting)."""
        return Painted(photo, *self.encode(photo))

    def encode(self, rgb: np.ndarray) -> tuple[str, bytes]:
        """A live frame: PNG up to ``png_max`` pixels on its longest side, JPEG above."""
        fmt = "png" if max(rgb.shape[:2]) <= self.png_max else "jpeg"
        return fmt, render.encode(rgb, fmt, self.jpeg_quality)

    def publish(self, painted: Painted) -> None:
        self.image.format = painted.fmt
        self.image.value = painted.data

    def hold_sync(self) -> Any:
        return self.image.hold_sync()


class NotedImageOutput(ImageOutput):
    """The Image path under a one-line note (DOM class ``cam-output-note``) saying why the frames come from the
    kernel, e.g. that the in-browser canvas cannot be used in this kernel.  Frames are those of :class:`ImageOutput`.
    """

    def __init__(self, note: str, png_max: int = 0, jpeg_quality: int = 90) -> None:
        super().__init__(png_max, jpeg_quality)
        self.note = widgets.HTML(f"<small>{note}</small>")
        self.note.add_class("cam-output-note")
        self.widget = widgets.VBox([self.note, self.image], layout=widgets.Layout(max_width="100%"))
