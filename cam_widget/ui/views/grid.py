"""Where a grid is composed: the cells of a view laid out in ONE picture (photo mosaic + index mosaic + labels).

The grid is composed once per content change (new maps, new labels); an alpha or colormap change only re-blends
the mosaic (:func:`blend_mosaic`): one lookup-table blend over the whole picture, plus copying the label strips
back, so its cost is that of a single image of the same pixel count.  Labels are drawn into the picture (so the
saved PNG and :meth:`~cam_widget.CAMExplorer.figure` carry them too).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field

import cv2
import numpy as np

from ... import render

__all__ = ["Mosaic", "MosaicCell", "blend_mosaic", "compose", "grid_shape"]

Rect = tuple[int, int, int, int]  # y0, y1, x0, x1
GAP = 4  # px between cells


@dataclass
class MosaicCell:
    """One cell to lay out: the photo at cell size, its index map (``None``: the photo alone), a label."""

    photo: np.ndarray
    index: np.ndarray | None
    label: str = ""
    signed: bool = False  # drawn in the signed (diverging) colormap


@dataclass
class Mosaic:
    """A composed picture: ``photo`` and ``index`` cover it all; ``chrome`` (labels, gaps) is copied over the
    blend at ``chrome_rects``; ``plain`` rects show the photo alone; ``signed`` rects blend in the signed colormap."""

    photo: np.ndarray
    index: np.ndarray
    chrome: np.ndarray | None = None
    chrome_rects: list[Rect] = field(default_factory=list)
    plain: list[Rect] = field(default_factory=list)
    signed: list[Rect] = field(default_factory=list)
    all_signed: bool = False
    cells: list[Rect] = field(default_factory=list)  # where each cell's picture sits

    @property
    def shape(self) -> tuple[int, int]:
        return self.photo.shape[:2]


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) for ``n`` cells: as square as possible, wider than tall."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


def single(photo: np.ndarray, index: np.ndarray | None, signed: bool = False) -> Mosaic:
    """One cell, no label: the photo and its index map as they are (the single view)."""
    if index is None:
        return Mosaic(photo, np.zeros(photo.shape[:2], np.uint8), plain=[(0, photo.shape[0], 0, photo.shape[1])])
    return Mosaic(photo, index, all_signed=signed)


def _ascii(text: str) -> str:
    # OpenCV's Hershey fonts draw ASCII only: strip accents, replace the rest
    text = text.replace("→", "->").replace("·", "|").replace("—", "-")
    return unicodedata.normalize("NFKD", text).encode("ascii", "replace").decode("ascii")


def _label_strip(text: str, width: int, height: int) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    text = _ascii(text)
    if not text:
        return strip
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, height // 22)
    scale = height / 36.0
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    if tw > width - 6:  # shrink to fit (down to 60%: still readable), then cut
        scale = max(0.6 * scale, scale * (width - 6) / tw)
        if cv2.getTextSize(text, font, scale, thick)[0][0] > width - 6:
            while len(text) > 1 and cv2.getTextSize(text + "..", font, scale, thick)[0][0] > width - 6:
                text = text[:-1]
            text += ".."
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    cv2.putText(strip, text, (3, (height + th) // 2), font, scale, (20, 20, 20), thick, cv2.LINE_AA)
    return strip


def compose(cells: list[MosaicCell], label_height: int = 22, gap: int = GAP) -> Mosaic:
    """Lay ``cells`` (all of one photo size) out in a grid, each under its label strip."""
    if not cells:
        raise ValueError("compose needs at least one cell.")
    ch, cw = cells[0].photo.shape[:2]
    rows, cols = grid_shape(len(cells))
    step_y, step_x = label_height + ch + gap, cw + gap
    height, width = rows * step_y - gap, cols * step_x - gap
    photo = np.full((height, width, 3), 255, np.uint8)
    index = np.zeros((height, width), np.uint8)
    chrome = np.full((height, width, 3), 255, np.uint8)
    m = Mosaic(photo, index, chrome)
    for k, cell in enumerate(cells):
        r, c = divmod(k, cols)
        y, x = r * step_y, c * step_x
        chrome[y : y + label_height, x : x + cw] = _label_strip(cell.label, cw, label_height)
        rect = (y + label_height, y + label_height + ch, x, x + cw)
        photo[rect[0] : rect[1], rect[2] : rect[3]] = cell.photo
        m.cells.append(rect)
        if cell.index is None:
            m.plain.append(rect)
        else:
            index[rect[0] : rect[1], rect[2] : rect[3]] = cell.index
            if cell.signed:
                m.signed.append(rect)
    # chrome: every label row (full width) and the vertical gaps between columns, as few rectangles as possible
    for r in range(rows):
        y = r * step_y
        m.chrome_rects.append((y, y + label_height, 0, width))
        if r < rows - 1:
            m.chrome_rects.append((y + step_y - gap, y + step_y, 0, width))
    for c in range(cols - 1):
        x = c * step_x + cw
        m.chrome_rects.append((0, height, x, x + gap))
    last = len(cells) % cols
    if last:  # the empty slots of the last row
        y = (rows - 1) * step_y
        m.chrome_rects.append((y, height, last * step_x, width))
    m.all_signed = all(c.signed or c.index is None for c in cells)
    if m.all_signed:
        m.signed = []
    return m


def blend_mosaic(m: Mosaic, colormap: str, alpha: float, signed_colormap: str | None = None) -> np.ndarray:
    """The mosaic with its maps blended at ``alpha`` in ``colormap`` (signed cells in ``signed_colormap``)."""
    signed_colormap = signed_colormap or colormap
    out = render.blend(m.photo, m.index, signed_colormap if m.all_signed else colormap, alpha)
    for y0, y1, x0, x1 in m.signed if signed_colormap != colormap else ():
        out[y0:y1, x0:x1] = render.blend(
            np.ascontiguousarray(m.photo[y0:y1, x0:x1]), np.ascontiguousarray(m.index[y0:y1, x0:x1]),
            signed_colormap, alpha,
        )
    for y0, y1, x0, x1 in m.plain:
        out[y0:y1, x0:x1] = m.photo[y0:y1, x0:x1]
    if m.chrome is not None:
        for y0, y1, x0, x1 in m.chrome_rects:
            out[y0:y1, x0:x1] = m.chrome[y0:y1, x0:x1]
    return out
