"""CAMExplorer: a live Class Activation Map panel built from stock ipywidgets only.

A thin view over :class:`cam_widget.CAMEngine` and :mod:`cam_widget.render`: it computes nothing
itself.  What makes it live is what it keeps:

* per image: the photo at full resolution and at display size (longest side <= ``display_size``);
* per (image, layer, class, method, normalisation): the raw map and its uint8 colormap *index map*
  at display size, in a byte-bounded LRU.

So an alpha or colormap change is one lookup-table :func:`~cam_widget.render.blend` plus one
:func:`~cam_widget.render.encode`; a class change adds one matrix-vector product on cached features
(exact CAM); a layer change runs at most one forward pass, then is cached.

With Grad-CAM every class needs its own gradient pass, so when Grad-CAM is first shown for an
(image, layer) the worker computes the maps of the whole top-k (plus the selected class, if it is not
among them) in ONE batched engine call (one gradient pass) and caches them all: stepping through the
top-k afterwards runs no network.  Only a class beyond the top-k (picked by search or by index) costs
a gradient pass of its own.

Live frames are JPEG at every size (``png_max=0``): PNG costs 5-10x more to encode and is ~5x larger
even at 224 px, and speed is the point; PNG is kept for :meth:`CAMExplorer.save` / the Save button and
for the static ``_repr_mimebundle_`` fallback (lossless).

What goes to the browser per change is kept small: the image's state is flushed first, the legend and
the status line are ONE HTML widget (``caption``: a ``.cam-legend`` row above a ``.cam-status`` line),
so a class change sends the image and one caption message after it, and the caption only changes when
what it says changes (an alpha change sends the image alone; timings are in ``last_timings``, not on
screen).  ``class_control`` is a short list -- the top-k, plus any other class picked with the search
box or by index -- because a 1,000-option ``<select>`` alone costs several ms per keypress in the browser.

Rendering is coalesced (:class:`cam_widget.render_loop.RenderLoop`).  Inside a Jupyter kernel, control
changes only record "something changed" and wake one background thread that always renders the
*newest* state; every frame carries a generation number and a frame older than the one on screen is
never published.  The image and the caption (colour bar + status line) are updated inside
``hold_sync`` so they change together (the image first).  Outside a kernel (tests, scripts) rendering is synchronous unless ``threaded=True``.

Every handler catches exceptions and shows them (class name + message) in the status line; the
panel keeps working.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
from traitlets import observe, validate

from . import render
from .cache import ByteLRU
from .errors import CAMError, ImageTooLargeError, NoCAMHeadError
from .imaging import MAX_PIXELS, load_image, resize_to
from .render_loop import RenderLoop

__all__ = ["CAMExplorer"]

#: ``method_control`` options.
METHODS = (("CAM", "cam"), ("Grad-CAM", "gradcam"))
_METHOD_NAMES = {"cam": "CAM", "gradcam": "Grad-CAM"}


@dataclass(frozen=True)
class _State:
    """One render request: a snapshot of the controls."""

    image: str | None
    class_index: int | None
    layer: str
    method: str
    alpha: float
    colormap: str


@dataclass
class _Photo:
    name: str
    rgb: np.ndarray  # full resolution, RGB uint8
    display: np.ndarray  # at display size
    probs: np.ndarray | None = None  # class probabilities (once computed)
    top: list[tuple[int, str, float]] | None = None  # engine.top_k


@dataclass
class _Frame:
    """What is on screen (or was computed for it)."""

    generation: int
    state: _State
    ok: bool
    data: bytes = b""
    fmt: str = "png"
    rgb: np.ndarray | None = None  # the displayed overlay (display size)
    cam: np.ndarray | None = None  # the raw map (layer resolution)
    scale: tuple[float, float] = (0.0, 0.0)  # values at the colour bar's two ends
    raw: tuple[float, float] = (0.0, 0.0)  # raw min / max of the map
    status: str = ""
    epoch: int = 0  # bumped when heads or caches change: an equal state must still be recomputed
    class_update: tuple[tuple, int] | None = None  # (class options, value) when the image changed
    timings: dict[str, float] = field(default_factory=dict)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets depends on IPython
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _safe_filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "image"


def _guarded(handler: Callable[..., None]) -> Callable[..., None]:
    """Widget callbacks never raise: an exception is shown in the status line instead."""

    @functools.wraps(handler)
    def wrapper(self: CAMExplorer, *args: Any) -> None:
        try:
            handler(self, *args)
        except Exception as exc:
            self._show_error(exc)

    return wrapper


def _unique(name: str, taken: Any) -> str:
    """``name``, or ``name (2)``, ``name (3)`` ... whichever is not in ``taken`` yet."""
    unique, k = name, 2
    while unique in taken:
        unique, k = f"{name} ({k})", k + 1
    return unique


class _ClassDropdown(widgets.Dropdown):
    """A stock Dropdown (same front end) whose ``value`` may be set to any class index: a class that is not
    among the options yet is appended first (labelled by ``label_for``), so the list stays short."""

    def __init__(self, label_for: Callable[[Any], str | None], **kwargs: Any) -> None:
        self._label_for = label_for
        self._appending = False
        super().__init__(**kwargs)

    @validate("value")
    def _validate_value(self, proposal: Any) -> Any:
        value = proposal.value
        if value is not None and not self._initializing_traits_ and value not in self._options_values:
            label = self._label_for(value)
            if label is not None:
                self._appending = True
                try:
                    self.options = (*self._options_full, (label, int(value)))
                finally:
                    self._appending = False
        return super()._validate_value(proposal)

    @observe("options")
    def _propagate_options(self, change: Any) -> None:
        if self._appending:  # keep the selection: only the labels and values grow
            options = self._options_full
            self.set_trait("_options_labels", tuple(i[0] for i in options))
            self._options_values = tuple(i[1] for i in options)
            return
        super()._propagate_options(change)


class _CaptionPart:
    """The legend or the status line of a :class:`CAMExplorer`'s caption widget: ``.value`` is that part's HTML
    (setting it re-sends the caption, one message)."""

    def __init__(self, owner: CAMExplorer, part: str) -> None:
        self._owner = owner
        self._part = part

    @property
    def value(self) -> str:
        return self._owner._caption_parts[self._part]

    @value.setter
    def value(self, text: str) -> None:
        self._owner._set_caption(**{self._part: str(text)})

    def __repr__(self) -> str:
        return f"<CAMExplorer {self._part}: {self.value!r}>"


class CAMExplorer(widgets.VBox):
    """An interactive Class Activation Map explorer (display it as the last expression of a cell).

    Args:
        engine: a :class:`cam_widget.CAMEngine` (or any object with its API).
        images: a list, or a ``{name: image}`` mapping, of anything :func:`cam_widget.load_image`
            accepts (paths, encoded bytes, arrays).  More can be added with the upload button or
            :meth:`add_image`.
        top_k: how many of the model's best classes head the class picker.
        display_size: longest side of the displayed frame in pixels (never upscaled).
        alpha: initial heat-map opacity in [0, 1].
        colormap: initial matplotlib colormap.
        layer: initial layer (default: the model's exact-CAM layer, else the last spatial layer).
        method: ``"cam"`` or ``"gradcam"`` (default: CAM where exact, else Grad-CAM).
        normalize, relu: how raw maps become colours (see :func:`cam_widget.render.to_index`).
        png_max: live frames whose longest side is at most this are sent as PNG, larger ones as JPEG.
            Default 0: JPEG at every size (the issue suggested PNG for small frames, but PNG is 5-10x
            slower to encode and ~5x larger at 224 px; the latency target wins).  Save and the static
            fallback are PNG regardless.
        jpeg_quality: JPEG quality of live frames.
        map_cache_bytes: bound of the per-(image, layer, class, method) index-map cache.
        max_upload_bytes, max_upload_pixels: caps for uploaded files.
        save_dir: where the Save button writes full-resolution PNGs.
        threaded: render in a background thread with coalescing (default: only inside a kernel).

    Controls (attributes): ``image_control``, ``upload_control``, ``class_control``,
    ``class_search``, ``layer_control``, ``method_control``, ``refit_button``, ``alpha_control``,
    ``colormap_control``, ``save_button``; output: ``image_widget`` and ``caption`` (one HTML widget, DOM
    class ``cam-caption``, holding the colour-bar legend ``.cam-legend`` and the status line ``.cam-status``,
    errors as ``.cam-error`` inside it).  ``legend`` and ``status`` are views of the caption's two parts:
    their ``.value`` reads and writes that part's HTML.
    """

    def __init__(
        self,
        engine: Any,
        images: Any = (),
        top_k: int = 5,
        display_size: int = 768,
        alpha: float = 0.5,
        colormap: str = "jet",
        layer: str | None = None,
        method: str | None = None,
        normalize: render.Normalize = "minmax",
        relu: bool = True,
        png_max: int = 0,
        jpeg_quality: int = 90,
        map_cache_bytes: int = 32 * 2**20,
        max_upload_bytes: int = 25 * 2**20,
        max_upload_pixels: int = MAX_PIXELS,
        save_dir: str | os.PathLike = ".",
        threaded: bool | None = None,
        **kwargs: Any,
    ) -> None:
        for attr in ("cam", "top_k", "predict", "layers", "class_names"):
            if not hasattr(engine, attr):
                raise TypeError(
                    f"CAMExplorer needs a cam_widget.CAMEngine; got {type(engine).__name__} without .{attr}. "
                    "Wrap your model first: engine = cam_widget.CAMEngine(model, preprocess, class_names)."
                )
        if int(display_size) < 16:
            raise ValueError(f"display_size must be at least 16 pixels; got {display_size}.")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha is the heat map's opacity and must lie in [0, 1]; got {alpha}.")
        self.engine = engine
        self.top_k = max(1, int(top_k))
        self.display_size = int(display_size)
        self.normalize = normalize
        self.relu = bool(relu)
        self.png_max = int(png_max)
        self.jpeg_quality = int(jpeg_quality)
        self.max_upload_bytes = int(max_upload_bytes)
        self.max_upload_pixels = int(max_upload_pixels)
        self.save_dir = Path(save_dir)
        threaded = _in_kernel() if threaded is None else bool(threaded)
        self.last_timings: dict[str, float] = {}
        self.refit_reports: dict[str, Any] = {}

        # ---------------------------------------------------------------- state and caches
        self._sources: dict[str, Any] = {}
        self._photos: dict[str, _Photo] = {}
        self._maps = ByteLRU(map_cache_bytes)
        self._bars: dict[str, bytes] = {}
        self._tls = threading.local()
        self._publish_lock = threading.RLock()
        self._published = 0
        self._loop = RenderLoop(self._render_generation, self._show_error, threaded)
        self._frame: _Frame | None = None
        self._class_image: str | None = None  # the image whose top-k class_control lists
        self._epoch = 0

        self._class_names = [str(n) for n in engine.class_names]
        self._az_options = self._build_az_options()
        self._az_labels = {i: label for label, i in self._az_options}
        self._name_to_class: dict[str, int] = {}
        for i, n in enumerate(self._class_names):
            self._name_to_class.setdefault(n, i)
        self._layer_infos = {info.name: info for info in engine.layers()}
        if not self._layer_infos:
            raise CAMError("The engine reports no spatial layers, so there is nothing to map.")
        first_layer = layer or getattr(engine, "cam_layer", None) or list(self._layer_infos)[-1]
        if first_layer not in self._layer_infos:
            raise CAMError(f"Unknown layer {first_layer!r}; pick one of engine.layers().")
        if method is None:
            method = "cam" if self._has_cam(first_layer) else "gradcam"
        if method not in dict(METHODS).values():
            raise ValueError(f"method must be 'cam' or 'gradcam'; got {method!r}.")
        cmaps = render.colormap_names()
        if colormap not in cmaps:
            render.colormap_lut(colormap)  # raises the helpful error
            cmaps = [colormap, *cmaps]

        for name, source in self._named_sources(images):
            self._sources[name] = source

        # ---------------------------------------------------------------- controls
        names = list(self._sources)
        self.image_control = widgets.Dropdown(
            options=names, value=names[0] if names else None, description="Image",
            layout=widgets.Layout(width="280px"),
        )
        self.upload_control = widgets.FileUpload(
            accept="image/*", multiple=True, description="Upload", layout=widgets.Layout(width="110px"),
        )
        self.class_control = _ClassDropdown(
            self._extra_class_label, options=(), description="Class", layout=widgets.Layout(width="340px"),
        )
        self.class_search = widgets.Combobox(
            options=sorted(self._name_to_class, key=str.casefold), ensure_option=True,
            placeholder=f"search {len(self._class_names)} classes…", layout=widgets.Layout(width="220px"),
        )
        self.layer_control = widgets.Dropdown(
            options=self._layer_options(), value=first_layer, description="Layer",
            layout=widgets.Layout(width="460px"),
        )
        self.method_control = widgets.ToggleButtons(
            options=METHODS, value=method, tooltips=[
                "Exact CAM: the GAP->Dense head's weights on this layer's features (needs a head here)",
                "Grad-CAM: channel weights from gradients of the class score (any layer)",
            ],
            style={"button_width": "92px"},
        )
        self.refit_button = widgets.Button(
            description="Refit CAM head here", icon="wrench",
            tooltip="Fit a GAP -> linear head on this layer that reproduces the model's logits (no labels)",
        )
        self.alpha_control = widgets.FloatSlider(
            value=float(alpha), min=0.0, max=1.0, step=0.01, description="Opacity", readout_format=".2f",
            layout=widgets.Layout(width="300px"),
        )
        self.colormap_control = widgets.Dropdown(
            options=cmaps, value=colormap, description="Colormap", layout=widgets.Layout(width="220px"),
        )
        self.save_button = widgets.Button(
            description="Save PNG", icon="download", tooltip="Write the full-resolution overlay as PNG",
        )
        # natural size (never stretched by the VBox), shrunk only to fit narrow outputs
        self.image_widget = widgets.Image(
            format="png", layout=widgets.Layout(max_width="100%", height="auto", align_self="flex-start")
        )
        # ONE widget for the legend (min, colour bar as an inline PNG, max, the raw range) and the status line,
        # so a class change -- which changes both -- costs one message after the image, not two
        self._caption_lock = threading.RLock()
        self._caption_parts = {"legend": "", "status": ""}
        self.caption = widgets.HTML(value=self._caption_html())
        self.legend = _CaptionPart(self, "legend")
        self.status = _CaptionPart(self, "status")

        for w, cls in (
            (self.image_control, "cam-image-select"), (self.upload_control, "cam-upload"),
            (self.class_control, "cam-class"), (self.class_search, "cam-class-search"),
            (self.alpha_control, "cam-alpha"), (self.colormap_control, "cam-colormap"),
            (self.layer_control, "cam-layer"), (self.method_control, "cam-method"),
            (self.refit_button, "cam-refit"), (self.image_widget, "cam-image"), (self.caption, "cam-caption"),
            (self.save_button, "cam-save"),
        ):
            w.add_class(cls)
        self._update_refit_button()

        super().__init__(
            [
                widgets.HBox([self.image_control, self.upload_control]),
                widgets.HBox([self.class_control, self.class_search]),
                widgets.HBox([self.layer_control, self.method_control, self.refit_button]),
                widgets.HBox([self.alpha_control, self.colormap_control, self.save_button]),
                self.image_widget,
                self.caption,
            ],
            **kwargs,
        )
        self.add_class("cam-explorer")

        self.image_control.observe(self._on_change, "value")
        self.class_control.observe(self._on_class, "value")
        self.class_search.observe(self._on_search, "value")
        self.layer_control.observe(self._on_layer, "value")
        self.method_control.observe(self._on_change, "value")
        self.alpha_control.observe(self._on_change, "value")
        self.colormap_control.observe(self._on_change, "value")
        self.upload_control.observe(self._on_upload, "value")
        self.refit_button.on_click(self._on_refit_click)
        self.save_button.on_click(self._on_save_click)

        # The first frame is rendered now, synchronously, so that the panel (and its static PNG
        # fallback) shows a picture as soon as it is displayed.
        self.render()

    # ================================================================== public API
    @property
    def threaded(self) -> bool:
        """Whether control changes render in the background worker (fixed when the panel is built)."""
        return self._loop.threaded

    def render(self) -> bytes:
        """Render the current state now, in the calling thread; return the frame bytes."""
        self._render_generation(self._loop.next_generation())
        frame = self._frame
        return frame.data if frame is not None else b""

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until no render is pending or running (threaded mode); ``False`` on timeout."""
        return self._loop.wait(timeout)

    @property
    def overlay_bytes(self) -> bytes:
        """The encoded frame on screen (``image_widget.format`` says PNG or JPEG)."""
        return bytes(self.image_widget.value)

    @property
    def overlay_rgb(self) -> np.ndarray | None:
        """The overlay on screen as RGB uint8 at display size (before encoding), or ``None``."""
        frame = self._frame
        return None if frame is None or frame.rgb is None else frame.rgb.copy()

    def current_map(self) -> np.ndarray | None:
        """The raw float32 map behind the frame on screen (layer resolution), or ``None`` after an error."""
        frame = self._frame
        return None if frame is None or frame.cam is None else frame.cam.copy()

    @property
    def state(self) -> dict[str, Any]:
        """The controls' current values (what the next frame will show)."""
        s = self._snapshot()
        return {
            "image": s.image, "class_index": s.class_index,
            "class_name": None if s.class_index is None else self._class_names[s.class_index],
            "layer": s.layer, "method": s.method, "alpha": s.alpha, "colormap": s.colormap,
        }

    @property
    def image_names(self) -> list[str]:
        return list(self._sources)

    def add_image(self, image: Any, name: str | None = None, select: bool = True) -> str:
        """Add an image (anything ``load_image`` accepts) to the picker; returns its unique name."""
        rgb = load_image(image, max_pixels=self.max_upload_pixels)
        name = self._unique_name(name or f"image {len(self._sources) + 1}")
        photo = self._photos[name] = self._make_photo(name, rgb)
        self._sources[name] = photo.rgb  # the photo's own frozen copy: no second full-resolution array
        current = self.image_control.value
        with self._quiet():
            self.image_control.options = list(self._sources)
            self.image_control.value = current if current is not None else name
        if select and current is not None:
            self.image_control.value = name  # triggers a render
        elif current is None:
            self._request()  # the first image: show it
        return name

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the FULL-resolution overlay of the frame on screen as PNG; returns the path."""
        frame = self._frame
        if frame is None or not frame.ok or frame.cam is None or frame.state.image is None:
            raise CAMError("There is no overlay to save: the panel shows an error. Fix it (see the status line) first.")
        s = frame.state
        photo = self._photo(s.image)
        full = render.overlay(
            photo.rgb, frame.cam, alpha=s.alpha, colormap=s.colormap, normalize=self.normalize, relu=self.relu
        )
        if path is None:
            cls = self._class_names[s.class_index] if s.class_index is not None else "class"
            stem = _safe_filename(f"cam_{s.image}_{cls}_{s.layer}_{s.method}")
            path = self.save_dir / f"{stem}.png"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render.encode(full, "png"))
        return path

    def refit(self, layer: str | None = None) -> Any:
        """Fit an exact-CAM head at ``layer`` (default: the selected one) with ``engine.refit_head``
        on every image in the picker, switch to CAM there and re-render.  Returns the fit report."""
        if not hasattr(self.engine, "refit_head"):
            raise CAMError("This engine cannot refit heads (it has no refit_head method).")
        layer = layer or self.layer_control.value
        images = [self._photo(n).rgb for n in self._sources]
        if not images:
            raise CAMError("Add at least one image before refitting a head.")
        report = self.engine.refit_head(layer, images)
        self.refit_reports[layer] = report
        self._maps.discard(lambda key: key[1] == layer and key[3] == "cam")
        self._epoch += 1
        with self._quiet():
            self._refresh_layer_options()
            self.method_control.value = "cam"
        self._update_refit_button()
        self._request()
        return report

    def clear_cache(self) -> None:
        """Forget cached index maps (e.g. after changing the engine's heads yourself)."""
        self._maps.clear()
        self._epoch += 1

    def close(self) -> None:
        if not hasattr(self, "_loop"):  # the constructor failed before the render loop existed
            super().close()
            return
        self._loop.close()
        for w in self._all_widgets():
            w.close()
        super().close()

    def __repr__(self) -> str:
        s = self._frame.state if self._frame is not None else None
        if s is None:
            return "CAMExplorer()"
        cls = None if s.class_index is None else self._class_names[s.class_index]
        return (
            f"CAMExplorer(image={s.image!r}, class={cls!r}, layer={s.layer!r}, method={s.method!r}, "
            f"alpha={s.alpha:.2f}, colormap={s.colormap!r})"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget view plus a static PNG of the current overlay (for nbconvert, GitHub, ...)."""
        data = super()._repr_mimebundle_(**kwargs)
        if self.threaded:
            self.wait(timeout=10.0)  # show the newest state if a render is under way
        frame = self._frame
        rgb = None
        if frame is not None and frame.rgb is not None:
            rgb = frame.rgb
        elif frame is not None and frame.state.image in self._photos:
            rgb = self._photos[frame.state.image].display
        if rgb is not None:
            data["image/png"] = base64.b64encode(render.encode(rgb, "png")).decode("ascii")
        data["text/plain"] = repr(self)
        return data

    # ================================================================== requests and the worker
    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Programmatic control changes inside this block do not trigger renders (this thread only)."""
        self._tls.quiet = getattr(self._tls, "quiet", 0) + 1
        try:
            yield
        finally:
            self._tls.quiet -= 1

    def _is_quiet(self) -> bool:
        return getattr(self._tls, "quiet", 0) > 0

    def _request(self) -> None:
        """Something changed: render the newest state (now, or coalesced in the worker)."""
        self._loop.request()

    # ================================================================== rendering
    def _snapshot(self) -> _State:
        cls = self.class_control.value
        return _State(
            image=self.image_control.value,
            class_index=None if cls is None else int(cls),
            layer=self.layer_control.value,
            method=self.method_control.value,
            alpha=float(self.alpha_control.value),
            colormap=self.colormap_control.value,
        )

    def _render_generation(self, generation: int) -> None:
        state = self._snapshot()
        current = self._frame
        if (
            current is not None
            and current.ok
            and current.epoch == self._epoch
            and current.state == state
            and state.image == self._class_image
        ):
            # Nothing visible would change (e.g. a request made redundant by coalescing).
            with self._publish_lock:
                self._published = max(self._published, generation)
            return
        try:
            frame = self._compute(state, generation)
        except Exception as exc:
            frame = self._error_frame(state, generation, exc)
        self._publish(frame)

    def _compute(self, state: _State, generation: int) -> _Frame:
        t0 = time.perf_counter()
        if state.image is None:
            return _Frame(generation, state, ok=False, status="No image yet: upload one with the Upload button.")
        photo = self._photo(state.image)
        t_load = time.perf_counter()
        class_update = None
        cls = state.class_index
        if photo.probs is None or state.image != self._class_image or cls is None:
            if photo.probs is None:
                if state.method == "cam" and self._has_cam(state.layer):
                    # one forward pass caches both the logits and this layer's features
                    self.engine.features(photo.rgb, state.layer)
                photo.probs = np.asarray(self.engine.predict(photo.rgb), np.float32)
                top = np.argsort(-photo.probs, kind="stable")[: self.top_k]
                photo.top = [(int(i), self._class_names[i], float(photo.probs[i])) for i in top]
            if state.image != self._class_image or cls is None:
                cls = photo.top[0][0] if photo.top else 0
                class_update = (self._class_options(photo), cls)
        t_top = time.perf_counter()
        state = _State(state.image, cls, state.layer, state.method, state.alpha, state.colormap)
        index, cam = self._index_map(photo, state)
        t_map = time.perf_counter()
        rgb = render.blend(photo.display, index, state.colormap, state.alpha)
        t_blend = time.perf_counter()
        fmt, data = self._encode_live(rgb)
        t_enc = time.perf_counter()
        timings = {
            "load": t_load - t0, "classify": t_top - t_load, "map": t_map - t_top,
            "blend": t_blend - t_map, "encode": t_enc - t_blend, "total": t_enc - t0,
        }
        raw_lo, raw_hi = self._raw_range(cam)
        frame = _Frame(
            generation, state, ok=True, data=data, fmt=fmt, rgb=rgb, cam=cam, epoch=self._epoch,
            scale=render.value_range(cam, self.normalize, self.relu), raw=(raw_lo, raw_hi), class_update=class_update, timings=timings,
        )
        frame.status = self._status_html(frame, photo)
        return frame

    def _index_map(self, photo: _Photo, state: _State) -> tuple[np.ndarray, np.ndarray]:
        key = (photo.name, state.layer, state.class_index, state.method, self._norm_key(), self.relu)
        hit = self._maps.get(key)
        if hit is not None:
            return hit
        if state.method == "cam" and not self._has_cam(state.layer):
            raise NoCAMHeadError(self._no_head_message(state.layer))
        if state.method == "gradcam":
            hit = self._prefetch_gradcam(photo, state)
            if hit is not None:
                return hit
        cam = np.asarray(
            self.engine.cam(photo.rgb, state.class_index, layer=state.layer, method=state.method), np.float32
        )
        index = render.to_index(cam, photo.display.shape[:2], normalize=self.normalize, relu=self.relu)
        self._maps.put(key, (index, cam))
        return index, cam

    def _prefetch_gradcam(self, photo: _Photo, state: _State) -> tuple[np.ndarray, np.ndarray] | None:
        """Grad-CAM costs one gradient pass per class, so compute the maps of every top-k class not cached yet
        for this (image, layer) -- plus the requested class -- in ONE batched ``engine.cam`` call (one gradient
        pass; the engine caches each map per (image, layer, class)) and cache their index maps.  Stepping
        through the top-k afterwards runs no network; a class beyond the top-k costs a pass of its own.
        Returns the requested class's (index, cam), or ``None`` when there is nothing to batch with it."""
        norm = self._norm_key()
        wanted = [int(i) for i, _, _ in photo.top or []]
        classes = [
            c for c in dict.fromkeys([state.class_index, *wanted])
            if not self._maps.peek((photo.name, state.layer, c, "gradcam", norm, self.relu))
        ]
        if len(classes) < 2:
            return None
        cams = np.asarray(
            self.engine.cam([photo.rgb] * len(classes), classes, layer=state.layer, method="gradcam"), np.float32
        )
        out = None
        for c, cam in zip(classes, cams, strict=True):
            index = render.to_index(cam, photo.display.shape[:2], normalize=self.normalize, relu=self.relu)
            self._maps.put((photo.name, state.layer, c, "gradcam", norm, self.relu), (index, cam))
            if c == state.class_index:
                out = (index, cam)
        return out

    def _error_frame(self, state: _State, generation: int, exc: BaseException) -> _Frame:
        frame = _Frame(generation, state, ok=False, status=self._error_html(exc), epoch=self._epoch)
        photo = self._photos.get(state.image) if state.image is not None else None
        if photo is not None:  # show the plain photo: no stale heat map under a new setting
            frame.status += " <small style='color:#666'>(showing the photo without a map)</small>"
            frame.fmt, frame.data = self._encode_live(photo.display)
        return frame

    def _encode_live(self, rgb: np.ndarray) -> tuple[str, bytes]:
        """A live frame: PNG up to ``png_max`` pixels on its longest side, JPEG above."""
        fmt = "png" if max(rgb.shape[:2]) <= self.png_max else "jpeg"
        return fmt, render.encode(rgb, fmt, self.jpeg_quality)

    def _publish(self, frame: _Frame) -> bool:
        """Show ``frame`` unless a newer one is already on screen (generation guard)."""
        with self._publish_lock:
            if frame.generation <= self._published:
                return False
            self._published = frame.generation
            with contextlib.ExitStack() as stack:
                # held syncs are flushed in reverse order of entry: the image (entered last) goes first
                for w in (self.class_control, self.caption, self.image_widget):
                    stack.enter_context(w.hold_sync())
                if frame.class_update is not None:
                    options, value = frame.class_update
                    with self._quiet():
                        self.class_control.options = options
                        self.class_control.value = value
                    self._class_image = frame.state.image
                if frame.data:
                    self.image_widget.format = frame.fmt
                    self.image_widget.value = frame.data
                # one caption message for legend + status; unchanged text sends nothing (traitlets compares),
                # so an alpha change sends the image only
                self._set_caption(legend=self._legend_html(frame), status=frame.status)
            self._frame = frame
            self.last_timings = dict(frame.timings)
            return True

    def _show_error(self, exc: BaseException) -> None:
        self.status.value = self._error_html(exc)

    def _caption_html(self) -> str:
        parts = self._caption_parts
        return (
            f"<div class='cam-legend'>{parts['legend']}</div>"
            f"<div class='cam-status' style='min-height:1.6em'>{parts['status']}</div>"
        )

    def _set_caption(self, legend: str | None = None, status: str | None = None) -> None:
        """Replace the legend and/or the status line; the caption widget sends one message (none if unchanged)."""
        with self._caption_lock:
            if legend is not None:
                self._caption_parts["legend"] = legend
            if status is not None:
                self._caption_parts["status"] = status
            self.caption.value = self._caption_html()

    # ================================================================== handlers
    @_guarded
    def _on_change(self, change: dict) -> None:
        if not self._is_quiet():
            self._request()

    @_guarded
    def _on_class(self, change: dict) -> None:
        if self._is_quiet() or change["new"] is None:
            return
        self._request()

    @_guarded
    def _on_search(self, change: dict) -> None:
        if self._is_quiet():
            return
        index = self._name_to_class.get(change["new"])
        if index is not None and index != self.class_control.value:
            self.class_control.value = index  # renders via _on_class

    @_guarded
    def _on_layer(self, change: dict) -> None:
        if self._is_quiet():
            return
        self._update_refit_button()
        self._request()

    @_guarded
    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if self._is_quiet() or not files:
            return
        try:
            added = None
            for f in files:
                content = f.get("content", b"")
                fname = str(f.get("name") or "upload")
                size = len(content)
                if size > self.max_upload_bytes:
                    raise ImageTooLargeError(
                        f"{fname!r} is {size / 2**20:.1f} MB; uploads are limited to "
                        f"{self.max_upload_bytes / 2**20:.0f} MB. Downscale it first."
                    )
                try:
                    rgb = load_image(bytes(content), max_pixels=self.max_upload_pixels)
                except CAMError as exc:
                    raise type(exc)(f"{fname!r}: {exc}") from None
                added = self.add_image(rgb, name=Path(fname).stem or "upload", select=False)
            if added is not None:
                self.image_control.value = added
        finally:
            with self._quiet(), contextlib.suppress(Exception):
                self.upload_control.value = ()  # free the bytes held by the widget

    @_guarded
    def _on_refit_click(self, _button: Any) -> None:
        layer = self.layer_control.value
        n = len(self._sources)
        self.refit_button.disabled = True  # one refit at a time
        self.status.value = (
            f"Refitting a GAP → linear head on <code>{html.escape(layer)}</code> from {n} image(s)…"
        )

        def job() -> None:
            try:
                self.refit(layer)
            finally:
                self.refit_button.disabled = False

        self._loop.submit(job)

    @_guarded
    def _on_save_click(self, _button: Any) -> None:
        path = self.save()
        self.status.value = f"Saved the full-resolution overlay to <code>{html.escape(str(path))}</code>."

    # ================================================================== helpers
    def _all_widgets(self) -> list[widgets.Widget]:
        out: list[widgets.Widget] = []
        stack: list[widgets.Widget] = list(self.children)
        while stack:
            w = stack.pop()
            out.append(w)
            stack.extend(getattr(w, "children", ()))
        return out

    def _named_sources(self, images: Any) -> list[tuple[str, Any]]:
        if images is None:
            return []
        if isinstance(images, Mapping):
            items = [(str(k), v) for k, v in images.items()]
        else:
            if isinstance(images, (str, bytes, bytearray, memoryview, np.ndarray, os.PathLike)) or hasattr(
                images, "read"
            ):
                images = [images]
            items = []
            for i, src in enumerate(images):
                if isinstance(src, (str, os.PathLike)):
                    items.append((Path(src).stem or f"image {i + 1}", src))
                else:
                    items.append((f"image {i + 1}", src))
        out: dict[str, Any] = {}
        for name, src in items:
            out[_unique(name, out)] = src
        return list(out.items())

    def _unique_name(self, name: str) -> str:
        return _unique(name, self._sources)

    def _make_photo(self, name: str, rgb: np.ndarray) -> _Photo:
        rgb = rgb.copy()  # our own read-only copy: the engine then hashes its pixels only once
        rgb.setflags(write=False)
        display = resize_to(rgb, render.fit_within(rgb.shape, self.display_size))
        return _Photo(name, rgb, np.ascontiguousarray(display))

    def _photo(self, name: str) -> _Photo:
        photo = self._photos.get(name)
        if photo is None:
            source = self._sources[name]
            rgb = load_image(source)
            photo = self._photos[name] = self._make_photo(name, rgb)
        return photo

    def _has_cam(self, layer: str) -> bool:
        has = getattr(self.engine, "has_cam", None)
        return bool(has(layer)) if has is not None else layer == getattr(self.engine, "cam_layer", None)

    def _no_head_message(self, layer: str) -> str:
        info = self._layer_infos.get(layer)
        res = f" ({info.shape[0]}x{info.shape[1]})" if info is not None else ""
        fix = "switch Method to Grad-CAM (any layer, a gradient-based explanation)"
        if hasattr(self.engine, "refit_head"):
            fix += ", or press “Refit CAM head here” to fit an exact-CAM head on this layer"
        own = getattr(self.engine, "cam_layer", None)
        where = f"; the model's own head sits on {own!r}" if own else "; this model has no GAP → Dense head at all"
        return (
            f"Exact CAM is only defined where a GAP → Dense head reads the layer, and {layer!r}{res} has none{where}. "
            f"To see a map here, {fix}."
        )

    def _norm_key(self) -> Any:
        n = self.normalize
        return n if isinstance(n, str) else tuple(float(v) for v in n)

    def _raw_range(self, cam: np.ndarray) -> tuple[float, float]:
        finite = cam[np.isfinite(cam)]
        if finite.size == 0:
            return (0.0, 0.0)
        return float(finite.min()), float(finite.max())

    def _bar(self, colormap: str) -> bytes:
        data = self._bars.get(colormap)
        if data is None:
            data = self._bars[colormap] = render.encode(render.colorbar(colormap, 256, 12), "png")
        return data

    def _legend_html(self, frame: _Frame) -> str:
        if not frame.ok:
            return "<div class='cam-legend-row'><small>no map</small></div>"
        bar = base64.b64encode(self._bar(frame.state.colormap)).decode("ascii")
        note = f"raw map min {frame.raw[0]:.3g}, max {frame.raw[1]:.3g}"
        if self.relu and frame.raw[0] < 0:
            note += " (negative evidence clipped to 0)"
        return (
            "<div class='cam-legend-row' style='display:flex;align-items:center;gap:6px'>"
            f"<span class='cam-legend-lo' title='colour-bar minimum'>{frame.scale[0]:.3g}</span>"
            f"<img class='cam-legend-bar' alt='{html.escape(frame.state.colormap)} colour bar' width='256' "
            f"height='12' src='data:image/png;base64,{bar}'>"
            f"<span class='cam-legend-hi' title='colour-bar maximum'>{frame.scale[1]:.3g}</span>"
            f"<small class='cam-legend-note'>{html.escape(note)}</small></div>"
        )

    def _extra_class_label(self, value: Any) -> str | None:
        """Label for a class appended to ``class_control`` (picked by search or by index), ``None`` if
        ``value`` is not a class index."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            return None
        i = int(value)
        if not 0 <= i < len(self._class_names):
            return None
        photo = self._photos.get(self._class_image) if self._class_image is not None else None
        prob = ""
        if photo is not None and photo.probs is not None:
            prob = f" — {float(photo.probs[i]):.1%}"
        return f"{self._az_labels[i]}{prob}"

    def _build_az_options(self) -> tuple[tuple[str, int], ...]:
        counts: dict[str, int] = {}
        for n in self._class_names:
            counts[n] = counts.get(n, 0) + 1
        labelled = [(n if counts[n] == 1 else f"{n} (#{i})", i) for i, n in enumerate(self._class_names)]
        return tuple(sorted(labelled, key=lambda t: (t[0].casefold(), t[1])))

    def _class_options(self, photo: _Photo) -> tuple[tuple[str, int], ...]:
        """The top-k only; other classes are appended when picked (search box or ``class_control.value``)."""
        top = photo.top or []
        return tuple((f"{r}. {name} — {p:.1%}", int(i)) for r, (i, name, p) in enumerate(top, 1))

    def _layer_options(self) -> list[tuple[str, str]]:
        own = getattr(self.engine, "cam_layer", None)
        heads = self.engine.heads() if hasattr(self.engine, "heads") else {}
        out = []
        for name, info in self._layer_infos.items():
            h, w, c = info.shape
            label = f"{name} · {h}x{w}x{c}"
            if name == own:
                label = f"★ {label} · CAM head"
            elif name in heads:
                label = f"✓ {label} · refit CAM head"
            out.append((label, name))
        return out

    def _refresh_layer_options(self) -> None:
        value = self.layer_control.value
        with self._quiet():
            self.layer_control.options = self._layer_options()
            self.layer_control.value = value

    def _update_refit_button(self) -> None:
        layer = self.layer_control.value
        show = hasattr(self.engine, "refit_head") and layer != getattr(self.engine, "cam_layer", None)
        self.refit_button.layout.display = None if show else "none"
        self.refit_button.description = "Refit again" if self._has_cam(layer) else "Refit CAM head here"

    def _status_html(self, frame: _Frame, photo: _Photo) -> str:
        s = frame.state
        assert s.class_index is not None
        name = self._class_names[s.class_index]
        p = float(photo.probs[s.class_index]) if photo.probs is not None else float("nan")
        info = self._layer_infos.get(s.layer)
        res = f"{info.shape[0]}x{info.shape[1]}" if info is not None else "?"
        method = _METHOD_NAMES.get(s.method, s.method)
        if s.method == "cam":
            method += " (exact)"
            report = self.refit_reports.get(s.layer)
            if report is not None:
                method += f" with a refit head ({report.summary()})"
        elif not self._has_cam(s.layer):
            method += " (no exact-CAM head on this layer)"
        # No timings here: they change with every frame and would cost a message per keypress; they are in
        # ``last_timings``.  So an alpha or colormap change leaves this text, and the browser, alone.
        return (
            f"<span class='cam-ok'><b>{html.escape(name)}</b> (#{s.class_index}, p = {p:.3f}) · "
            f"layer <code>{html.escape(s.layer)}</code> {res} · {html.escape(method)}</span>"
        )

    def _error_html(self, exc: BaseException) -> str:
        msg = str(exc) or repr(exc)
        return (
            f"<span class='cam-error' style='color:#b3261e'><b>{html.escape(type(exc).__name__)}</b>: "
            f"{html.escape(msg)}</span>"
        )
