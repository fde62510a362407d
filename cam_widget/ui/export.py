"""The current view as a file or a figure: Save writes the whole view at the photo's full resolution (every cell,
with its label) as PNG; :func:`figure` draws it with matplotlib (one axis per cell, a colour bar) for papers and
slides."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .. import render
from .caption import SCOPE_TEXT
from .frames import FrameBuilder
from .scope import signed_colormap
from .state import Frame
from .views.grid import blend_mosaic

__all__ = ["figure", "full_resolution", "save_png"]


def full_resolution(builder: FrameBuilder, frame: Frame) -> np.ndarray:
    """The view of ``frame`` with every cell at the photo's full resolution (RGB uint8)."""
    s = frame.state
    assert s.image is not None
    photo = builder.photos.get(s.image)
    mosaic = builder.compose(s, photo, frame.cells, full=True)
    return blend_mosaic(mosaic, s.colormap, s.alpha, signed_colormap(s.colormap))


def default_name(frame: Frame, class_names: list[str]) -> str:
    s = frame.state
    cls = class_names[s.class_index] if s.class_index is not None else "class"
    what = f"{s.layer}_{s.method}" if s.view == "single" else f"{s.view}_{s.layer}_{s.method}_{s.scope}"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"cam_{s.image}_{cls}_{what}").strip("_")[:80] or "image"
    return f"{stem}.png"


def save_png(builder: FrameBuilder, frame: Frame, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render.encode(full_resolution(builder, frame), "png"))
    return path


def figure(builder: FrameBuilder, frame: Frame, dpi: int = 100) -> Any:
    """A matplotlib ``Figure`` of the view on screen: one axis per cell titled with its label, and one colour bar
    per distinct scale (stating the normalisation scope)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    from .views.grid import grid_shape

    s = frame.state
    assert s.image is not None
    photo = builder.photos.get(s.image)
    cells = frame.cells
    rows, cols = grid_shape(len(cells))
    h, w = photo.display.shape[:2]
    fig = Figure(figsize=(cols * 3.2 * w / max(h, w) + 0.8, rows * 3.2 * h / max(h, w) + 0.6), dpi=dpi)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    cmap = s.colormap
    for ax, cell in zip(axes.ravel(), cells, strict=False):
        picture = photo.display
        if cell.cam is not None:
            index = render.to_index(cell.cam, picture.shape[:2], normalize=cell.normalize, relu=cell.relu)
            picture = render.blend(picture, index, signed_colormap(cmap) if cell.signed else cmap, s.alpha)
        ax.imshow(picture)
        title = cell.label or (f"{builder.class_names[cell.spec.class_index]} · {cell.spec.layer} · {cell.method}")
        ax.set_title(title if cell.cam is not None else f"{title}\n(no map)", fontsize=8)
    scales = {(c.scale, c.signed) for c in cells if c.cam is not None}
    if len(scales) == 1:  # one bar holds for every cell: show its numbers
        (lo, hi), signed = scales.pop()
        mappable = ScalarMappable(Normalize(lo, hi), signed_colormap(cmap) if signed else cmap)
        bar = fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_label(SCOPE_TEXT.get(s.scope, s.scope), fontsize=8)
    elif scales:
        mappable = ScalarMappable(Normalize(0, 1), cmap)
        bar = fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, ticks=[0, 1])
        bar.ax.set_yticklabels(["min", "max"])
        bar.set_label(SCOPE_TEXT.get(s.scope, s.scope), fontsize=8)
    return fig
