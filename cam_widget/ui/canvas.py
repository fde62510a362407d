"""CAMCanvas: the heat map composited in the browser (an anywidget), so opacity, colormap and normalisation
changes never wait for the kernel.

What crosses the websocket, and when:

* the photo, once per image (lossless PNG by default, so the browser's composite can equal
  :func:`cam_widget.render.overlay` to the level; ``photo_format="jpeg"`` trades that for ~10x fewer bytes);
* the RAW map (float32 bytes + shape: 196 bytes at 7x7) once per (image, layer, class, method);
* the 256-entry colormap tables (:func:`cam_widget.render.colormap_lut`), once per widget, so the browser
  never re-derives matplotlib's colours.

The ES module ``canvas.js`` (a file in this package, no build step, no CDN) normalises the raw map exactly as
:func:`cam_widget.render.normalize_cam` does, upsamples it with OpenCV's ``INTER_LINEAR`` convention (pixel
centres aligned, borders clamped), quantises like ``cv2.convertScaleAbs``, looks the colours up and blends
like ``cv2.addWeighted`` (``alpha`` is the heat map's opacity, as everywhere in cam-widget).

Several maps go in one widget: ``cells`` is a grid of (photo, map, label) laid out ``columns`` wide, the same
way for the single view (one cell) and the compare grids.  Hovering a cell shows the raw map value under the
cursor, its (row, col) at the layer's resolution and its fraction of the map's maximum in the cell's caption;
a click pins that point (``pins`` syncs back to the kernel; hovering does not).

Controls are linked in the browser: :meth:`CAMCanvas.link_controls` hands the canvas the models of stock
ipywidgets (a slider for opacity, dropdowns for colormap and normalisation, the panel's scope buttons) and the
front end listens to their change events directly, so a step paints with no message from the kernel and no
message for the canvas model (the control's own value still syncs to the kernel as usual, off the critical
path).  The kernel mirrors the controls' values into ``alpha`` / ``colormap`` / ``normalize`` / ``scope`` without
sending them back, so :meth:`CAMCanvas.overlays`, :meth:`CAMCanvas.to_png` and the static ``image/png`` of the
mimebundle follow.

The normalisation ``scope`` (the panel's, :mod:`cam_widget.ui.scope`) sits on top of ``normalize``: ``"map"``
each cell by ``normalize``; ``"shared"`` one ``(0, max)`` scale over every non-contrast cell; ``"signed"`` each
cell on ``(-m, m)``, ``m`` its largest magnitude, no ReLU, in the signed (diverging) colormap.  A ``contrast``
cell (class A - class B) is signed in every scope.  The browser computes these scales from the raw maps it has.

Choices: a frame can come with the frames of its alternatives (``choices``: key -> cells + status line, e.g. the
panel's top-k classes), and a linked ``choice`` control (the class dropdown) picks among them in the browser, so
a class change among them paints with no kernel round trip.  :meth:`CAMCanvas.set_cells` with the ``key`` of a
choice the browser already has sends nothing.  ``context`` controls (image, layer, method, view...) make the
browser distrust its choices from their first change until the kernel's next frame, so it never paints a choice
of the old context.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import traitlets as t
from ipywidgets import Widget, widget_serialization

from .. import render
from ..optional import missing_package
from .scope import symmetric_scale

try:  # anywidget is the optional ``[canvas]`` extra; without it there is no CAMCanvas (see ``available()``)
    import anywidget
except ImportError:  # pragma: no cover - exercised where anywidget is missing
    anywidget = None

__all__ = ["NORMALIZATIONS", "SCOPES", "CAMCanvas", "CanvasCell", "available", "normalize_args", "scope_args"]

#: The canvas's normalisation modes, each one call of :func:`cam_widget.render.overlay` (see
#: :func:`normalize_args`): ``minmax`` each map to its own [0, max] (negative evidence hidden), ``shared`` every
#: cell on one scale (:func:`cam_widget.render.shared_scale`), ``signed`` min-max with negative evidence kept,
#: ``none`` values used as they are, ``fixed`` each cell's own ``vrange``.
NORMALIZATIONS: tuple[str, ...] = ("minmax", "shared", "signed", "none", "fixed")
#: The normalisation scopes (:mod:`cam_widget.ui.scope`): applied on top of ``normalize`` (see :func:`scope_args`).
SCOPES: tuple[str, ...] = ("map", "shared", "signed")

_ESM = Path(__file__).with_name("canvas.js")
MIRRORED = ("alpha", "colormap", "normalize", "scope")  # linked controls whose value the kernel mirrors
_PHOTO_FORMATS = ("png", "jpeg")


def available() -> bool:
    """Whether the canvas can be used in this kernel (the ``anywidget`` package is importable)."""
    return anywidget is not None


@dataclass(frozen=True)
class CanvasCell:
    """One picture of a canvas: a photo (RGB uint8, shown at its own size), a raw map (``None``: the photo alone)
    and a label.

    ``vrange`` and ``relu`` are used by the ``fixed`` normalisation (and ``relu`` by nothing else).  ``signed``
    cells are coloured with ``signed_colormaps[colormap]`` (a diverging map) instead of the colormap.
    ``photo_key`` names the photo (cells sharing a key share one transfer); default: a hash of its pixels.
    ``contrast``: a difference of two maps, drawn signed on ``(-m, m)`` in every scope.
    """

    image: np.ndarray
    cam: np.ndarray | None
    label: str = ""
    vrange: tuple[float, float] | None = None
    relu: bool = True
    photo_key: str | None = None
    signed: bool = False
    contrast: bool = False


def normalize_args(
    mode: str, cam: np.ndarray, all_maps: Sequence[np.ndarray], cell: CanvasCell | None = None
) -> dict:
    """The ``normalize=`` / ``relu=`` keywords of :func:`cam_widget.render.overlay` that canvas ``mode``
    stands for (the browser implements exactly these)."""
    if mode == "minmax":
        return {"normalize": "minmax", "relu": True}
    if mode == "shared":
        return {"normalize": render.shared_scale(all_maps, relu=True), "relu": True}
    if mode == "signed":
        return {"normalize": "minmax", "relu": False}
    if mode == "none":
        return {"normalize": "none", "relu": True}
    if mode == "fixed":
        if cell is None or cell.vrange is None:
            return {"normalize": "minmax", "relu": True if cell is None else cell.relu}
        return {"normalize": (float(cell.vrange[0]), float(cell.vrange[1])), "relu": cell.relu}
    raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}; got {mode!r}.")


def scope_args(scope: str, mode: str, cell: CanvasCell, cells: Sequence[CanvasCell]) -> tuple[dict, bool]:
    """The ``normalize=`` / ``relu=`` keywords of :func:`cam_widget.render.overlay` for ``cell`` of ``cells`` under
    ``scope`` (one of :data:`SCOPES`) and normalisation ``mode``, and whether the signed colormap applies (the
    browser implements exactly these; the scales are :mod:`cam_widget.ui.scope`'s)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}.")
    assert cell.cam is not None
    if cell.contrast or scope == "signed":
        return {"normalize": symmetric_scale([cell.cam]), "relu": False}, True
    if scope == "shared":
        plain = [c.cam for c in cells if c.cam is not None and not c.contrast]
        return {"normalize": render.shared_scale(plain, relu=True), "relu": True}, False
    maps = [c.cam for c in cells if c.cam is not None]
    return normalize_args(mode, cell.cam, maps, cell), cell.signed


def _check_cell(cell: Any) -> CanvasCell:
    if isinstance(cell, CanvasCell):
        c = cell
    elif isinstance(cell, tuple) and len(cell) in (2, 3):
        c = CanvasCell(*cell)
    else:
        raise TypeError(
            f"A canvas cell is a CanvasCell or an (image, cam[, label]) tuple; got {type(cell).__name__}."
        )
    image = render._check_image(c.image)
    cam = None if c.cam is None else render._as_map(c.cam)  # render's own shape/dtype rules and messages
    if c.vrange is not None and len(tuple(c.vrange)) != 2:
        raise ValueError(f"vrange must be a (vmin, vmax) pair; got {c.vrange!r}.")
    return CanvasCell(
        image,
        cam,
        str(c.label),
        None if c.vrange is None else (float(c.vrange[0]), float(c.vrange[1])),
        bool(c.relu),
        c.photo_key,
        bool(c.signed),
        bool(c.contrast),
    )


def _photo_key(image: np.ndarray) -> str:
    h = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=10)
    h.update(repr(image.shape).encode())
    return h.hexdigest()


_Base: Any = anywidget.AnyWidget if anywidget is not None else object


class CAMCanvas(_Base):
    """A grid of CAM overlays painted in the browser.  Display it, then :meth:`show` or :meth:`set_cells`.

    Args:
        alpha: heat-map opacity in [0, 1].
        colormap: a matplotlib colormap name (its table is sent with the curated ones).
        normalize: one of :data:`NORMALIZATIONS`.
        columns: cells per row (0: as many as fit the width).
        scope: one of :data:`SCOPES`, on top of ``normalize``.
        photo_format: ``"png"`` (lossless: the composite matches ``render.overlay``) or ``"jpeg"``.
        jpeg_quality: quality when ``photo_format="jpeg"``.

    Raises ``ImportError`` naming the extra to install when anywidget is missing.
    """

    _esm = _ESM

    alpha = t.Float(0.5).tag(sync=True)
    colormap = t.Unicode("jet").tag(sync=True)
    normalize = t.Unicode("minmax").tag(sync=True)
    columns = t.Int(0).tag(sync=True)
    #: key -> {"data": encoded bytes, "format": "png" | "jpeg", "shape": [h, w]}: only the photos the cells use
    photos = t.Dict().tag(sync=True)
    #: one dict per cell: photo key, raw float32 map bytes, shape, label, vrange, relu, id (a hash of the map)
    cells = t.List().tag(sync=True)
    #: colormap name -> 768 bytes (256 x RGB, :func:`cam_widget.render.colormap_lut`)
    luts = t.Dict().tag(sync=True)
    #: colormap -> the colormap ``signed`` cells use with it (missing: the colormap itself)
    signed_colormaps = t.Dict().tag(sync=True)
    #: widgets whose ``value`` the browser follows: {"alpha": slider, "colormap": dropdown, "normalize": ...}
    controls = t.Dict().tag(sync=True, **widget_serialization)
    #: for linked selection widgets (which sync an ``index``, not a value): name -> option values in order
    control_options = t.Dict().tag(sync=True)
    #: points pinned by clicks: [{"cell": i, "row": r, "col": c, "value": v}], newest last (browser -> kernel)
    pins = t.List().tag(sync=True)
    #: a status line shown under the grid (e.g. an error from the kernel); HTML-escaped by the browser
    note = t.Unicode("").tag(sync=True)
    #: the normalisation scope on top of ``normalize``: one of :data:`SCOPES` (see :func:`scope_args`)
    scope = t.Unicode("map").tag(sync=True)
    #: the caption's status line under the grid (kernel HTML, shown as it is: escape what is not markup)
    status = t.Unicode("").tag(sync=True)
    #: the colour-bar legend drawn under the grid from the cells on display: "" none, "single" (one map: its
    #: scale and raw range), "grid" (numbers only when one scale holds for every cell)
    legend = t.Unicode("").tag(sync=True)
    #: scope -> the words the legend says about it
    scope_text = t.Dict().tag(sync=True)
    #: alternatives of the frame on display: choice key -> {"cells": [...], "status": html}, picked in the
    #: browser by the linked ``choice`` control's value (``str(value)``)
    choices = t.Dict().tag(sync=True)
    #: which choice ``cells`` / ``status`` are ("" when not a choice)
    frame_key = t.Unicode("").tag(sync=True)
    #: ``cells`` / ``status`` are newer than ``choices[frame_key]`` (e.g. an error frame): the browser shows them
    frame_override = t.Bool(False).tag(sync=True)

    def __init__(
        self,
        alpha: float = 0.5,
        colormap: str = "jet",
        normalize: str = "minmax",
        columns: int = 0,
        photo_format: str = "png",
        scope: str = "map",
        jpeg_quality: int = 92,
        **kwargs: Any,
    ) -> None:
        if anywidget is None:
            raise missing_package("anywidget", "CAMCanvas (the in-browser canvas view)")
        if photo_format not in _PHOTO_FORMATS:
            raise ValueError(f"photo_format must be 'png' or 'jpeg'; got {photo_format!r}.")
        self.photo_format = photo_format
        self.jpeg_quality = int(jpeg_quality)
        self._cells: list[CanvasCell] = []
        self._shown: tuple[list[dict], str, str] = ([], "", "")  # cell dicts, choice key, status on display
        self._encoded: OrderedDict[str, dict] = (
            OrderedDict()
        )  # photo key -> trait entry (a few recent photos)
        self._ready_event = threading.Event()
        self._ready_callbacks: list[Callable[[], None]] = []
        self._links: list[tuple[Widget, str, Callable]] = []
        super().__init__(columns=int(columns), **kwargs)
        self._check_alpha(alpha)
        self._check_normalize(normalize)
        self._check_scope(scope)
        self.add_colormaps([*render.CURATED_COLORMAPS, colormap])
        self.alpha, self.colormap, self.normalize, self.scope = float(alpha), colormap, normalize, scope
        self.on_msg(self._on_frontend_msg)

    # ------------------------------------------------------------------ content
    def show(self, image: np.ndarray, cam: np.ndarray, label: str = "", **cell: Any) -> None:
        """Show one map over one photo (the single view).  ``cell`` takes :class:`CanvasCell`'s other fields."""
        self.set_cells([CanvasCell(image, cam, label, **cell)])

    def set_cells(self, cells: Sequence[CanvasCell | tuple], columns: int | None = None, *, status: str | None = None,
                  key: str = "", choices: Mapping[str, tuple[Sequence[CanvasCell], str]] | None = None) -> None:
        """Replace the grid.  Photos already in the browser are not sent again; maps are sent raw.

        ``status``: the status line (``None``: unchanged).  ``key``: which choice this frame is; when the browser
        already holds ``choices[key]`` with these very cells and status, nothing is sent (it painted them when the
        choice control changed).  ``choices``: replace the alternatives (``{key: (cells, status)}``, cells over the
        photos of ``cells``); ``None`` keeps them unless the photos change.
        """
        checked = [_check_cell(c) for c in cells]
        keys: dict[int, tuple[np.ndarray, str]] = {}  # id(photo) -> (photo, key): each photo hashed once per call
        photos: dict[str, dict] = {}
        for c in checked:
            pk = self._key_of(c, keys)
            photos[pk] = self._photo_entry(pk, c.image)
        out = [self._cell_dict(c, keys) for c in checked]
        status = self.status if status is None else str(status)
        with self.hold_sync():
            if columns is not None:
                self.columns = int(columns)
            if set(photos) != set(self.photos):
                self.photos = photos  # only when the set of photos changes: a class change sends no photo
                self.pins = []  # pinned points belong to the photos they were clicked on
                if choices is None:
                    self.choices = {}  # alternatives of another photo
            if choices is not None:  # new alternatives: the frame goes with them (the browser may hold an old one)
                self.choices = self._choice_dicts(choices, set(photos), keys)
            want = {"cells": out, "status": status}
            if key and choices is None and self.choices.get(key) == want:
                # the browser painted this from its choices when the choice control changed: send nothing, except
                # that an explicit frame newer than its choice (an error, a notice) must not come back when that
                # choice is picked again
                self.frame_override = False
            else:
                self.cells, self.status, self.frame_key = out, status, str(key)
                self.frame_override = bool(key) and self.choices.get(key) != want
        self._cells = checked
        self._shown = (out, str(key), status)

    def set_status(self, status: str) -> None:
        """Replace the status line under the grid (e.g. a notice or an error), keeping the cells on display."""
        out, key, shown = self._shown
        if str(status) == shown:
            return
        with self.hold_sync():  # the frame on display becomes explicit (it may be a choice), newer than its choice
            self.cells, self.status, self.frame_key, self.frame_override = out, str(status), key, bool(key)
        self._shown = (out, key, str(status))

    @staticmethod
    def _key_of(c: CanvasCell, keys: dict[int, tuple[np.ndarray, str]]) -> str:
        if c.photo_key:
            return c.photo_key
        seen = keys.get(id(c.image))
        if seen is None:  # the entry keeps the array alive, so its id cannot be reused within the call
            seen = keys[id(c.image)] = (c.image, _photo_key(c.image))
        return seen[1]

    def _cell_dict(self, c: CanvasCell, keys: dict[int, tuple[np.ndarray, str]]) -> dict:
        data = None if c.cam is None else np.ascontiguousarray(c.cam, dtype="<f4").tobytes()
        shape = [] if c.cam is None else list(c.cam.shape)
        return {
            "photo": self._key_of(c, keys), "map": data, "shape": shape, "label": c.label,
            "vrange": None if c.vrange is None else list(c.vrange), "relu": c.relu, "signed": c.signed,
            "contrast": c.contrast, "id": hashlib.blake2b((data or b"") + repr(shape).encode(), digest_size=8).hexdigest(),
        }  # fmt: skip

    def _choice_dicts(self, choices: Mapping[str, tuple[Sequence[CanvasCell], str]], photos: set[str],
                      keys: dict[int, tuple[np.ndarray, str]]) -> dict:  # fmt: skip
        out = {}
        for key, (cells, status) in choices.items():
            dicts = [self._cell_dict(_check_cell(c), keys) for c in cells]
            missing = {d["photo"] for d in dicts} - photos
            if missing:
                raise ValueError(f"choice {key!r} shows photos the grid does not ({sorted(missing)}): "
                                 "choices are alternatives over the photos on display.")  # fmt: skip
            out[str(key)] = {"cells": dicts, "status": str(status)}
        return out

    def clear(self) -> None:
        """No cells (an empty grid)."""
        with self.hold_sync():
            self.cells, self.choices, self.frame_key, self.frame_override = [], {}, "", False
            self.photos = {}
        self._cells = []
        self._shown = ([], "", self.status)

    def _photo_entry(self, key: str, image: np.ndarray) -> dict:
        entry = self._encoded.get(key)
        if entry is None:
            fmt = self.photo_format
            entry = {
                "data": render.encode(image, fmt, self.jpeg_quality),
                "format": fmt,
                "shape": list(image.shape[:2]),
            }
            self._encoded[key] = entry
            while len(self._encoded) > 16:
                self._encoded.popitem(last=False)
        self._encoded.move_to_end(key)
        return entry

    def set_signed_colormaps(self, mapping: dict[str, str]) -> None:
        """Which colormap ``signed`` cells use with each colormap (their tables are sent too)."""
        self.add_colormaps(list(mapping.values()))
        self.signed_colormaps = {str(k): str(v) for k, v in mapping.items() if k != v}

    def add_colormaps(self, names: Sequence[str]) -> None:
        """Send the lookup tables of ``names`` too (each once), so the browser can switch to them at once."""
        new = {n: render.colormap_lut(n).tobytes() for n in dict.fromkeys(names) if n not in self.luts}
        if new:
            self.luts = {**self.luts, **new}

    @property
    def cell_list(self) -> list[CanvasCell]:
        """The cells on display (checked copies: RGB uint8 photos, float32 maps)."""
        return list(self._cells)

    # ------------------------------------------------------------------ controls linked in the browser
    def link_controls(
        self, alpha: Widget | None = None, colormap: Widget | None = None, normalize: Widget | None = None,
        scope: Widget | None = None, choice: Widget | None = None, context: Sequence[Widget] = (),
    ) -> None:
        """Follow these widgets' ``value`` in the browser (no kernel round trip per step).

        ``alpha``: a float slider in [0, 1]; ``colormap``: a selection of colormap names (their tables are sent
        now); ``normalize``: a selection of :data:`NORMALIZATIONS`; ``scope``: a selection of :data:`SCOPES`.  The
        kernel keeps this canvas's traits equal to the controls' values without sending them back to the browser.
        ``choice``: a selection whose ``str(value)`` picks among ``choices``; ``context``: widgets whose first
        change makes the browser ignore its choices until the kernel's next frame.
        """
        for w, name, fn in self._links:
            w.unobserve(fn, name)
        self._links = []
        controls: dict[str, Widget] = {}
        named = [("alpha", alpha), ("colormap", colormap), ("normalize", normalize), ("scope", scope),
                 ("choice", choice), *((f"context{i}", w) for i, w in enumerate(context))]  # fmt: skip
        for name, w in named:
            if w is None:
                continue
            controls[name] = w
            if name in MIRRORED:
                fn = self._mirror(name)
                w.observe(fn, "value")
                self._links.append((w, "value", fn))
            if name in ("colormap", "normalize", "scope", "choice") and w.has_trait("options"):
                w.observe(self._send_control_options, "options")
                self._links.append((w, "options", self._send_control_options))
        with self.hold_sync():
            self.controls = controls
            self._send_control_options()
        for w, trait, fn in self._links:
            if trait == "value":
                fn({"new": w.value})

    def _send_control_options(self, _change: Any = None) -> None:
        options = {}
        for name, w in self.controls.items():
            if not name.startswith("context") and w.has_trait("options"):  # context controls: change events only
                values = [o[1] if isinstance(o, tuple) else o for o in w.options]
                if name == "colormap":
                    self.add_colormaps([str(v) for v in values])
                options[name] = [v if isinstance(v, (str, int, float)) else str(v) for v in values]
        self.control_options = options

    def _mirror(self, name: str) -> Callable[[dict], None]:
        def fn(change: dict) -> None:
            value = change["new"]
            if name == "alpha":
                value = float(value)
                self._check_alpha(value)
            elif name == "normalize":
                self._check_normalize(value)
            elif name == "scope":
                self._check_scope(value)
            elif name == "colormap":
                self.add_colormaps([value])
            # the browser already shows this value (it follows the control itself): set it here without echo
            with self._lock_property(**{name: value}):
                setattr(self, name, value)

        return fn

    @staticmethod
    def _check_alpha(alpha: float) -> None:
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha is the heat map's opacity and must lie in [0, 1]; got {alpha}.")

    @staticmethod
    def _check_normalize(mode: str) -> None:
        if mode not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}; got {mode!r}.")

    @staticmethod
    def _check_scope(scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}.")

    @t.validate("colormap")
    def _valid_colormap(self, proposal: Any) -> str:
        render.colormap_lut(proposal.value)  # raises the helpful error for an unknown name
        return proposal.value

    @t.observe("colormap")
    def _send_lut(self, change: Any) -> None:
        self.add_colormaps([change.new])

    # ------------------------------------------------------------------ the kernel's own rendering
    def overlays(self) -> list[np.ndarray]:
        """Each cell as :func:`cam_widget.render.overlay` draws it with the current settings (what the browser
        paints)."""
        signed = self.signed_colormaps.get(self.colormap, self.colormap)
        out = []
        for c in self._cells:
            if c.cam is None:
                out.append(c.image.copy())
                continue
            args, is_signed = scope_args(self.scope, self.normalize, c, self._cells)
            out.append(render.overlay(c.image, c.cam, alpha=self.alpha, colormap=signed if is_signed else self.colormap,
                                      **args))  # fmt: skip
        return out

    def composite(self, gap: int = 6) -> np.ndarray | None:
        """The grid as one RGB image (white gaps, no labels), ``None`` when there are no cells."""
        tiles = self.overlays()
        if not tiles:
            return None
        cols = self.columns if self.columns > 0 else min(len(tiles), 4)
        rows = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
        cell_h = [max(t.shape[0] for t in r) for r in rows]
        cell_w = [max(r[j].shape[1] for r in rows if j < len(r)) for j in range(cols)]
        out = np.full((sum(cell_h) + gap * (len(rows) - 1), sum(cell_w) + gap * (cols - 1), 3), 255, np.uint8)
        y = 0
        for r, h in zip(rows, cell_h, strict=True):
            x = 0
            for j, tile in enumerate(r):
                out[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
                x += cell_w[j] + gap
            y += h + gap
        return out

    def to_png(self) -> bytes:
        """The grid as PNG bytes (the static fallback); empty bytes when there are no cells."""
        rgb = self.composite()
        return b"" if rgb is None else render.encode(rgb, "png")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view plus a static PNG of the grid (nbconvert, GitHub)."""
        data, metadata = super()._repr_mimebundle_(**kwargs)
        png = self.to_png()
        if png:
            data["image/png"] = base64.b64encode(png).decode("ascii")
        return data, metadata

    # ------------------------------------------------------------------ front-end handshake
    @property
    def frontend_ready(self) -> bool:
        """Whether a browser has rendered this canvas (its ES module loaded and said so)."""
        return self._ready_event.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until a browser rendered the canvas (``False`` on timeout)."""
        return self._ready_event.wait(timeout)

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the kernel's comm handler) when a browser first renders the canvas; at once if
        one already has."""
        if self._ready_event.is_set():
            callback()
        else:
            self._ready_callbacks.append(callback)

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "ready" and not self._ready_event.is_set():
            self._ready_event.set()
            callbacks, self._ready_callbacks = self._ready_callbacks, []
            for fn in callbacks:
                fn()
