"""CAMExplorer: the live Class Activation Map panel (stock ipywidgets).

The panel is thin: it builds the controls (:mod:`.controls`), turns them into a :class:`~.state.Request`, lets the
render loop (:mod:`.render_loop`) run the frame pipeline (:mod:`.frames`: views, maps, scope, grid composition)
and publishes the frame to its output (:mod:`.output`) and caption (:mod:`.caption`).  It computes nothing itself.

What makes it live is what is cached: the photos at display size (:mod:`.photos`), the raw and index maps
(:mod:`.maps`), the composed grid of the last request's content (an alpha or colormap change only re-blends) and,
in the engine, the features and gradients.  Rendering is coalesced: control changes only record "something
changed"; one worker renders the newest state; a frame older than the one on screen is never published.  Long
methods run in their own thread (:mod:`.jobs`) with a progress bar and a Cancel button.

Every handler catches exceptions and shows them (class name + message) in the status line; the panel keeps
working.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from .. import render
from ..errors import CAMError
from ..imaging import MAX_PIXELS
from .canvas_output import default_output
from .caption import Caption, error_html
from .catalog import available_methods
from .controls import build_controls, layer_options, layout_rows, show, sorted_class_options
from .export import default_name, figure, save_png
from .frames import FrameBuilder
from .handlers import Handlers
from .jobs import LongRun
from .maps import MapStore
from .output import Output
from .photos import PhotoStore
from .screen import Screen
from .trust import TrustSection, TrustTarget
from .views import all_views
from .views.layers import default_layers

__all__ = ["CAMExplorer"]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets depends on IPython
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _check_arguments(engine: Any, display_size: int, alpha: float) -> None:
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


def _colormaps(colormap: str) -> list[str]:
    cmaps = render.colormap_names()
    if colormap not in cmaps:
        render.colormap_lut(colormap)  # raises the helpful error
        cmaps = [colormap, *cmaps]
    return cmaps


class CAMExplorer(widgets.VBox):
    """An interactive Class Activation Map explorer (display it as the last expression of a cell).

    Args:
        engine: a :class:`cam_widget.CAMEngine` (or any object with its API).
        images: a list, or a ``{name: image}`` mapping, of anything :func:`cam_widget.load_image` accepts.
        top_k: how many of the model's best classes head the class picker (and the Classes view).
        display_size: longest side of the displayed frame in pixels (never upscaled); grids fit in it.
        alpha, colormap, layer, method: initial opacity, colormap, layer (default: the exact-CAM layer, else the
            last spatial layer) and method (default: CAM where exact, else Grad-CAM).
        view: ``"single"``, ``"layers"``, ``"methods"`` or ``"classes"``; scope: ``"map"``, ``"shared"``, ``"signed"``.
        normalize, relu: how raw maps become colours in the per-map scope (see :func:`cam_widget.render.to_index`).
        png_max, jpeg_quality: live frames up to ``png_max`` px are PNG, larger ones JPEG (default: JPEG always).
        map_cache_bytes: bound of the panel's raw/index map cache.
        max_upload_bytes, max_upload_pixels: caps for uploaded files.
        save_dir: where the Save button writes full-resolution PNGs.
        threaded: render in a background thread with coalescing (default: only inside a kernel).
        output: the front end of the frames (default: the in-browser canvas,
            :class:`~cam_widget.ui.canvas_output.CanvasOutput`, inside a kernel with anywidget installed, else
            :class:`~cam_widget.ui.output.ImageOutput`).

    Controls (attributes): ``image_control``, ``upload_control``, ``class_control``, ``class_search``,
    ``layer_control``, ``method_control``, ``refit_button``, ``alpha_control``, ``colormap_control``,
    ``save_button``, ``view_control``, ``scope_control``, ``smooth_control``, ``layers_control``, ``methods_control``,
    ``contrast_control``, ``run_button``, ``progress_bar``, ``cancel_button``; output: ``image_widget`` and
    ``caption`` (DOM class ``cam-caption``: ``.cam-legend`` and ``.cam-status`` inside, errors ``.cam-error``).
    ``legend`` and ``status`` are views of the caption's two parts (``.value`` reads and writes that part).
    """

    def __init__(self, engine: Any, images: Any = (), top_k: int = 5, display_size: int = 768, alpha: float = 0.5,
                 colormap: str = "jet", layer: str | None = None, method: str | None = None, view: str = "single",
                 scope: str = "map", normalize: render.Normalize = "minmax", relu: bool = True, png_max: int = 0,
                 jpeg_quality: int = 90, map_cache_bytes: int = 32 * 2**20, max_upload_bytes: int = 25 * 2**20,
                 max_upload_pixels: int = MAX_PIXELS, save_dir: str | os.PathLike = ".", threaded: bool | None = None,
                 output: Output | None = None, **kwargs: Any) -> None:
        _check_arguments(engine, display_size, alpha)
        self.engine, self.top_k, self.save_dir = engine, max(1, int(top_k)), Path(save_dir)
        self.refit_reports: dict[str, Any] = {}
        self._layer_infos = {info.name: info for info in engine.layers()}
        if not self._layer_infos:
            raise CAMError("The engine reports no spatial layers, so there is nothing to map.")
        methods = available_methods()
        self._store = PhotoStore(images, display_size, max_upload_bytes, max_upload_pixels)
        self._mapstore = MapStore(engine, methods, map_cache_bytes)
        self.output = output or default_output(png_max, jpeg_quality, _in_kernel())
        self._frames = FrameBuilder(engine, self._store, self._mapstore, all_views(), self.output,
                                    layer_infos=self._layer_infos, methods=methods, refit_reports=self.refit_reports,
                                    top_k=self.top_k, normalize=normalize, relu=bool(relu))
        self._labels = dict((i, label) for label, i in sorted_class_options(self._frames.class_names))
        self._name_to_class: dict[str, int] = {}
        for i, n in enumerate(self._frames.class_names):
            self._name_to_class.setdefault(n, i)
        first = self._first_layer(layer)
        self.controls = build_controls(
            image_names=self._store.names, class_label=self._extra_class_label, class_names=self._frames.class_names,
            layers=self._layer_options(), layer=first, methods=methods, method=self._first_method(method, first, methods),
            alpha=alpha, colormap=colormap, colormaps=_colormaps(colormap), view=view, scope=scope)
        for name, w in self.controls.items():
            setattr(self, name, w)
        self.layers_control.value = default_layers(self._layer_infos, getattr(engine, "cam_layer", None))
        if hasattr(self.output, "link"):  # an output that follows the controls in the browser (the canvas)
            self.output.link(self.alpha_control, self.colormap_control, scope=self.scope_control,
                             choice=self.class_control, context=[self.image_control, self.layer_control,
                                                                 self.method_control, self.view_control,
                                                                 self.smooth_control])  # fmt: skip
        self._caption = Caption()
        self.caption = self._caption.widget
        if hasattr(self.output, "attach_caption"):  # an output that draws the caption itself (the canvas)
            self.output.attach_caption(self._caption)
        self.legend, self.status = self._caption.legend, self._caption.status
        super().__init__(layout_rows(self.controls, self.output.widget, self.caption), **kwargs)
        self.add_class("cam-explorer")
        self._screen = Screen(self._frames, self.output, self._caption, self.controls,
                              _in_kernel() if threaded is None else bool(threaded), self._show_error)
        # The Trust section (collapsed): told about every image/class/layer/method change, computes when open.
        self.trust = TrustSection(engine, self._trust_target, threaded=self.threaded)
        self.children = (*self.children, self.trust.widget)
        for control in (self.image_control, self.class_control, self.layer_control, self.method_control):
            control.observe(lambda _change: self.trust.notify(), "value")
        handlers = Handlers(self)
        self._long = LongRun(handlers.on_long_progress, handlers.on_long_map, handlers.on_long_done)
        self._update_visibility()
        self.render()  # the first frame now, so the panel (and its static PNG fallback) shows a picture at once

    # ================================================================== set-up
    def _first_layer(self, layer: str | None) -> str:
        first = layer or getattr(self.engine, "cam_layer", None) or list(self._layer_infos)[-1]
        if first not in self._layer_infos:
            raise CAMError(f"Unknown layer {first!r}; pick one of engine.layers().")
        return first

    def _first_method(self, method: str | None, layer: str, methods: list) -> str:
        if method is None:
            return "cam" if self._mapstore.has_cam(layer) else "gradcam"
        names = [m.name for m in methods]
        if method not in names:
            raise ValueError(f"method must be one of {names}; got {method!r}.")
        return method

    # ================================================================== public API
    @property
    def threaded(self) -> bool:
        """Whether control changes render in the background worker (fixed when the panel is built)."""
        return self._screen.loop.threaded

    last_timings = property(lambda self: self._screen.last_timings, doc="Seconds per step of the last frame.")
    display_size = property(lambda self: self._store.display_size, doc="Longest side of the displayed frame.")
    png_max = property(lambda self: getattr(self.output, "png_max", 0), doc="Live frames up to this size are PNG.")
    jpeg_quality = property(lambda self: getattr(self.output, "jpeg_quality", 90), doc="JPEG quality of live frames.")
    normalize = property(lambda self: self._frames.normalize, doc="The per-map normalisation.")
    relu = property(lambda self: self._frames.relu, doc="Whether the per-map scope clips negative evidence.")

    @property
    def image_widget(self) -> widgets.Widget:
        """The output's widget (an ``ipywidgets.Image``, DOM class ``cam-image``, by default)."""
        return self.output.widget

    def render(self) -> bytes:
        """Render the current state now, in the calling thread; return the frame bytes."""
        self._screen.render_generation(self._screen.loop.next_generation())
        return self._screen.frame.data if self._screen.frame is not None else b""

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until no render (and no long method run) is pending or running; ``False`` on timeout."""
        return self._long.wait(timeout) and self._screen.loop.wait(timeout)

    @property
    def overlay_bytes(self) -> bytes:
        """The encoded frame on screen (``image_widget.format`` says PNG or JPEG); with the canvas output, which
        sends no encoded frames, the picture on screen as PNG."""
        value = getattr(self.image_widget, "value", None)
        if value is None:
            rgb = self.overlay_rgb
            return b"" if rgb is None else render.encode(rgb, "png")
        return bytes(value)

    @property
    def overlay_rgb(self) -> np.ndarray | None:
        """The picture on screen as RGB uint8 at display size (before encoding), or ``None``."""
        frame = self._screen.frame
        return None if frame is None or frame.rgb is None else frame.rgb.copy()

    def current_map(self) -> np.ndarray | None:
        """The raw float32 map behind the frame on screen (the first cell's), or ``None`` after an error."""
        frame = self._screen.frame
        return None if frame is None or frame.cam is None else frame.cam.copy()

    def current_maps(self) -> list[tuple[str, np.ndarray | None]]:
        """(label, raw map) of every cell on screen, in grid order."""
        frame = self._screen.frame
        return [] if frame is None else [(c.label, None if c.cam is None else c.cam.copy()) for c in frame.cells]

    @property
    def state(self) -> dict[str, Any]:
        """The controls' current values (what the next frame will show)."""
        s = self._screen.snapshot()
        names = self._frames.class_names
        return {"image": s.image, "class_index": s.class_index,
                "class_name": None if s.class_index is None else names[s.class_index], "layer": s.layer,
                "method": s.method, "alpha": s.alpha, "colormap": s.colormap, "view": s.view, "scope": s.scope}

    @property
    def image_names(self) -> list[str]:
        return self._store.names

    def add_image(self, image: Any, name: str | None = None, select: bool = True) -> str:
        """Add an image (anything ``load_image`` accepts) to the picker; returns its unique name."""
        name = self._store.add(image, name)
        current = self.image_control.value
        with self._screen.quiet():
            self.image_control.options = self._store.names
            self.image_control.value = current if current is not None else name
        if select and current is not None:
            self.image_control.value = name  # triggers a render
        elif current is None:
            self._screen.request()  # the first image: show it
        return name

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the view on screen at FULL resolution (every cell, with labels) as PNG; returns the path."""
        frame = self._screen.frame
        if frame is None or not frame.ok or frame.state.image is None or (frame.cam is None and len(frame.cells) < 2):
            raise CAMError("There is no overlay to save: the panel shows an error. Fix it (see the status line) first.")
        return save_png(self._frames, frame, path or self.save_dir / default_name(frame, self._frames.class_names))

    def figure(self, dpi: int = 100) -> Any:
        """A matplotlib Figure of the current view (each cell with its label, and a colour bar)."""
        if self.threaded:
            self.wait(timeout=30.0)
        frame = self._screen.frame
        if frame is None or not frame.ok:
            raise CAMError("There is no view to draw: the panel shows an error. Fix it (see the status line) first.")
        return figure(self._frames, frame, dpi=dpi)

    def refit(self, layer: str | None = None) -> Any:
        """Fit an exact-CAM head at ``layer`` (default: the selected one) with ``engine.refit_head`` on every image
        in the picker, switch to CAM there and re-render.  Returns the fit report."""
        if not hasattr(self.engine, "refit_head"):
            raise CAMError("This engine cannot refit heads (it has no refit_head method).")
        layer = layer or self.layer_control.value
        images = [self._store.get(n).rgb for n in self._store.names]
        if not images:
            raise CAMError("Add at least one image before refitting a head.")
        report = self.engine.refit_head(layer, images)
        self.refit_reports[layer] = report
        self._mapstore.forget(layer, "cam")
        self._screen.invalidate()
        with self._screen.quiet():
            value = self.layer_control.value
            self.layer_control.options = self._layer_options()
            self.layer_control.value = value
            self.method_control.value = "cam"
        self._update_refit_button()
        self._screen.request()
        return report

    def clear_cache(self) -> None:
        """Forget cached maps (e.g. after changing the engine's heads yourself)."""
        self._mapstore.clear()
        self._screen.invalidate()

    def close(self) -> None:
        if hasattr(self, "trust"):
            self.trust.close()
        if hasattr(self, "_long"):
            self._long.cancel()
        if hasattr(self, "_screen"):  # the constructor may have failed before the render loop existed
            self._screen.loop.close()
            stack: list[widgets.Widget] = list(self.children)
            while stack:
                w = stack.pop()
                stack.extend(getattr(w, "children", ()))
                w.close()
        super().close()

    def __repr__(self) -> str:
        frame = self._screen.frame if hasattr(self, "_screen") else None
        s = frame.state if frame is not None else None
        if s is None:
            return "CAMExplorer()"
        cls = None if s.class_index is None else self._frames.class_names[s.class_index]
        view = "" if s.view == "single" else f", view={s.view!r}, scope={s.scope!r}"
        return (f"CAMExplorer(image={s.image!r}, class={cls!r}, layer={s.layer!r}, method={s.method!r}, "
                f"alpha={s.alpha:.2f}, colormap={s.colormap!r}{view})")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget view plus a static PNG of the current picture (for nbconvert, GitHub, ...)."""
        data = super()._repr_mimebundle_(**kwargs)
        if self.threaded:
            self.wait(timeout=10.0)  # show the newest state if a render is under way
        frame = self._screen.frame
        rgb = frame.rgb if frame is not None else None
        if rgb is None and frame is not None and frame.state.image in self._store.photos:
            rgb = self._store.photos[frame.state.image].display
        if rgb is not None:
            data["image/png"] = base64.b64encode(render.encode(rgb, "png")).decode("ascii")
        data["text/plain"] = repr(self)
        return data

    # internal names the benchmarks and tests read
    @property
    def _maps(self) -> Any:
        return self._mapstore.lru

    @property
    def _photos(self) -> dict[str, Any]:
        return self._store.photos

    def _photo(self, name: str) -> Any:
        return self._store.get(name)

    def _show_error(self, exc: BaseException) -> None:
        self.status.value = error_html(exc)

    # ================================================================== helpers
    def _trust_target(self) -> TrustTarget | None:
        """What the Trust section checks: the photo at full resolution, class, layer and the method on screen
        (Grad-CAM where CAM has no head, as the frames do)."""
        s = self._screen.snapshot()
        if s.image is None or s.class_index is None or s.image not in self._store.sources:
            return None
        method = s.method if s.method != "cam" or self._mapstore.has_cam(s.layer) else "gradcam"
        return TrustTarget(self._store.get(s.image).rgb, int(s.class_index), s.layer, method)

    def _update_visibility(self) -> None:
        view = self.view_control.value
        show(self.layers_control, view == "layers")
        show(self.methods_control, view == "methods")
        show(self.contrast_control, view == "classes")
        show(self.method_control, view != "methods")
        self._update_refit_button()

    def _update_refit_button(self) -> None:
        layer = self.layer_control.value
        show(self.refit_button, hasattr(self.engine, "refit_head") and layer != getattr(self.engine, "cam_layer", None))
        self.refit_button.description = "Refit again" if self._mapstore.has_cam(layer) else "Refit CAM head here"

    def _layer_options(self) -> list[tuple[str, str]]:
        heads = self.engine.heads() if hasattr(self.engine, "heads") else {}
        return layer_options(self._layer_infos, getattr(self.engine, "cam_layer", None), heads)

    def _extra_class_label(self, value: Any) -> str | None:
        """Label for a class appended to the class dropdowns (picked by search or by index), ``None`` if ``value``
        is not a class index."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            return None
        i = int(value)
        if i not in self._labels:
            return None
        image = self._screen.class_image if hasattr(self, "_screen") else None
        photo = self._store.photos.get(image) if image is not None else None
        prob = f" — {float(photo.probs[i]):.1%}" if photo is not None and photo.probs is not None else ""
        return f"{self._labels[i]}{prob}"
