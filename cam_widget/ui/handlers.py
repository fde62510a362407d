"""The panel's reactions to its controls: which change re-renders, searches a class, uploads a photo, refits a
head, saves, or runs and cancels a long method.  Every handler catches its exceptions and shows them in the status
line; the panel keeps working."""

from __future__ import annotations

import contextlib
import functools
import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .controls import show

if TYPE_CHECKING:
    from .panel import CAMExplorer

__all__ = ["Handlers"]


def _guarded(handler: Callable[..., None]) -> Callable[..., None]:
    """Widget callbacks never raise: an exception is shown in the status line instead."""

    @functools.wraps(handler)
    def wrapper(self: Handlers, *args: Any) -> None:
        try:
            handler(self, *args)
        except Exception as exc:
            self.panel._show_error(exc)

    return wrapper


class Handlers:
    """Observers and button callbacks of one panel."""

    def __init__(self, panel: CAMExplorer) -> None:
        self.panel = panel
        self.screen = panel._screen
        p = panel
        for w in (p.image_control, p.method_control, p.alpha_control, p.colormap_control, p.scope_control,
                  p.smooth_control, p.layers_control, p.methods_control, p.contrast_control):
            w.observe(self.on_change, "value")
        p.class_control.observe(self.on_class, "value")
        p.class_search.observe(self.on_search, "value")
        p.layer_control.observe(self.on_layer, "value")
        p.view_control.observe(self.on_view, "value")
        p.upload_control.observe(self.on_upload, "value")
        p.refit_button.on_click(self.on_refit_click)
        p.save_button.on_click(self.on_save_click)
        p.run_button.on_click(self.on_run_click)
        p.cancel_button.on_click(lambda _b: p._long.cancel())

    @_guarded
    def on_change(self, change: dict) -> None:
        if not self.screen.is_quiet():
            self.screen.request()

    @_guarded
    def on_class(self, change: dict) -> None:
        if not self.screen.is_quiet() and change["new"] is not None:
            self.screen.request()

    @_guarded
    def on_search(self, change: dict) -> None:
        index = self.panel._name_to_class.get(change["new"])
        if not self.screen.is_quiet() and index is not None and index != self.panel.class_control.value:
            self.panel.class_control.value = index  # renders via on_class

    @_guarded
    def on_layer(self, change: dict) -> None:
        if not self.screen.is_quiet():
            self.panel._update_refit_button()
            self.screen.request()

    @_guarded
    def on_view(self, change: dict) -> None:
        if not self.screen.is_quiet():
            self.panel._update_visibility()
            self.screen.request()

    @_guarded
    def on_upload(self, change: dict) -> None:
        files = change["new"]
        if self.screen.is_quiet() or not files:
            return
        p = self.panel
        try:
            added = None
            for f in files:
                name, rgb = p._store.decode_upload(f)
                added = p.add_image(rgb, name=name, select=False)
            if added is not None:
                p.image_control.value = added
        finally:
            with self.screen.quiet(), contextlib.suppress(Exception):
                p.upload_control.value = ()  # free the bytes held by the widget

    @_guarded
    def on_refit_click(self, _button: Any) -> None:
        p = self.panel
        layer = p.layer_control.value
        p.refit_button.disabled = True  # one refit at a time
        p.status.value = (f"Refitting a GAP → linear head on <code>{html.escape(layer)}</code> from "
                          f"{len(p.image_names)} image(s)…")

        def job() -> None:
            try:
                p.refit(layer)
            finally:
                p.refit_button.disabled = False

        self.screen.loop.submit(job)

    @_guarded
    def on_save_click(self, _button: Any) -> None:
        path = self.panel.save()
        self.panel.status.value = f"Saved the full-resolution view to <code>{html.escape(str(path))}</code>."

    @_guarded
    def on_run_click(self, _button: Any) -> None:
        """Start the expensive maps of the view on screen in the background (progress bar + Cancel)."""
        p, frame = self.panel, self.screen.frame
        if frame is None or frame.state.image is None:
            return
        pending = [c.spec for c in frame.cells if c.spec.expensive and c.cam is None]
        if pending and p._long.start(p.engine, p._mapstore, p._store.get(frame.state.image), pending):
            p.progress_bar.value = 0.0
            for w in (p.progress_bar, p.cancel_button):
                show(w, True)
            show(p.run_button, False)

    def on_long_progress(self, fraction: float, what: str) -> None:
        bar = self.panel.progress_bar
        bar.value = max(0.0, min(1.0, float(fraction)))
        bar.description = f"{fraction:.0%}"

    def on_long_map(self) -> None:
        """A long method stored a map: show it (the rest of the grid is unchanged)."""
        self.screen.invalidate()
        self.screen.request()

    def on_long_done(self, outcome: BaseException | str | None) -> None:
        p = self.panel
        for w in (p.progress_bar, p.cancel_button):
            show(w, False)
        if outcome is None:
            return
        show(p.run_button, True)  # the map is still missing: it can be asked for again
        if isinstance(outcome, BaseException):
            p._show_error(outcome)
        else:
            p.status.value = "<span class='cam-note'>Cancelled: the expensive map was not computed.</span>"
