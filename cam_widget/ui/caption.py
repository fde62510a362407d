"""The caption under the picture: the colour-bar legend and the status line, in ONE HTML widget.

A class change changes both, so keeping them in one widget costs one message after the image, not two; an
unchanged text sends nothing (traitlets compares), so an alpha change sends the image alone.  An output that
draws the caption itself (the in-browser canvas: its legend follows colormap and scope in the browser, its
status line comes with the frame) is :meth:`Caption.attach`-ed: while it says it shows the caption, the widget is
not updated, so a class change sends no caption message at all.  The DOM classes
are what the browser tests locate: ``.cam-caption`` holds ``.cam-legend`` and ``.cam-status``; errors are
``.cam-error`` inside the status line.
"""

from __future__ import annotations

import base64
import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from .. import render

__all__ = ["SCOPE_TEXT", "Caption", "CaptionPart", "error_html", "legend_html"]

#: What the colour bar says about the normalisation scope in force.
SCOPE_TEXT = {
    "map": "per map: each map on its own range",
    "shared": "shared: one scale for every map shown",
    "signed": "signed: no ReLU, zero at the centre, negative evidence shown",
}


class Caption:
    """The caption widget (``.widget``, an ``ipywidgets.HTML``) and its two parts, ``legend`` and ``status``
    (:class:`CaptionPart`: ``.value`` reads and writes that part's HTML)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._parts = {"legend": "", "status": ""}
        self.widget = widgets.HTML(value=self._html())
        self.widget.add_class("cam-caption")
        self.legend = CaptionPart(self, "legend")
        self.status = CaptionPart(self, "status")
        self._sink: Callable[[str, str], bool] | None = None

    def attach(self, sink: Callable[[str, str], bool]) -> None:
        """Also hand every caption to ``sink(legend_html, status_html)``; while it returns True (it shows the
        caption itself) the widget is left as it is."""
        self._sink = sink

    def get(self, part: str) -> str:
        return self._parts[part]

    def set(self, legend: str | None = None, status: str | None = None) -> None:
        """Replace the legend and/or the status line: one message (none if the text is unchanged)."""
        with self._lock:
            if legend is not None:
                self._parts["legend"] = legend
            if status is not None:
                self._parts["status"] = status
            if self._sink is not None and self._sink(self._parts["legend"], self._parts["status"]):
                return
            self.widget.value = self._html()

    def _html(self) -> str:
        return (
            f"<div class='cam-legend'>{self._parts['legend']}</div>"
            f"<div class='cam-status' style='min-height:1.6em'>{self._parts['status']}</div>"
        )


class CaptionPart:
    """The legend or the status line of a caption: ``.value`` is that part's HTML (setting it re-sends the
    caption, one message)."""

    def __init__(self, caption: Caption, part: str) -> None:
        self._caption = caption
        self._part = part

    @property
    def value(self) -> str:
        return self._caption.get(self._part)

    @value.setter
    def value(self, text: str) -> None:
        self._caption.set(**{self._part: str(text)})

    def __repr__(self) -> str:
        return f"<CAMExplorer {self._part}: {self.value!r}>"


_BARS: dict[str, str] = {}


def _bar_b64(colormap: str) -> str:
    data = _BARS.get(colormap)
    if data is None:
        png = render.encode(render.colorbar(colormap, 256, 12), "png")
        data = _BARS[colormap] = base64.b64encode(png).decode("ascii")
    return data


def legend_html(
    colormap: str | None,
    scale: tuple[float, float] | None,
    raw: tuple[float, float] | None = None,
    relu: bool = True,
    scope: str | None = None,
) -> str:
    """The colour bar with the raw values at its ends (``scale``; ``None`` when every map has its own range),
    the raw range of the map (``raw``) and, for grids, the normalisation scope in force.  ``colormap=None``:
    no map is shown."""
    if colormap is None:
        return "<div class='cam-legend-row'><small>no map</small></div>"
    notes = []
    if raw is not None:
        notes.append(f"raw map min {raw[0]:.3g}, max {raw[1]:.3g}")
        if relu and raw[0] < 0:
            notes[-1] += " (negative evidence clipped to 0)"
    if scope is not None:
        notes.append(SCOPE_TEXT.get(scope, scope))
    lo, hi = ("min", "max") if scale is None else (f"{scale[0]:.3g}", f"{scale[1]:.3g}")
    return (
        "<div class='cam-legend-row' style='display:flex;align-items:center;gap:6px'>"
        f"<span class='cam-legend-lo' title='colour-bar minimum'>{lo}</span>"
        f"<img class='cam-legend-bar' alt='{html.escape(colormap)} colour bar' width='256' "
        f"height='12' src='data:image/png;base64,{_bar_b64(colormap)}'>"
        f"<span class='cam-legend-hi' title='colour-bar maximum'>{hi}</span>"
        f"<small class='cam-legend-note'>{html.escape(' · '.join(notes))}</small></div>"
    )


def error_html(exc: BaseException) -> str:
    """An exception as the status line shows it: class name and message, ``.cam-error``."""
    msg = str(exc) or repr(exc)
    return (
        f"<span class='cam-error' style='color:#b3261e'><b>{html.escape(type(exc).__name__)}</b>: "
        f"{html.escape(msg)}</span>"
    )


def ok_html(text: str, extra: Any = "") -> str:
    """A normal status line (``.cam-ok``); ``text`` is HTML already."""
    return f"<span class='cam-ok'>{text}</span>{extra}"
