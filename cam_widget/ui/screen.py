"""What is on screen: the render loop turns the controls' newest state into a frame (:mod:`.frames`) and this
module publishes it -- picture, caption and class lists together, inside ``hold_sync`` (the picture's message
first) -- unless a newer frame is already on screen (every frame carries a generation number)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .caption import Caption
from .controls import Controls, show
from .frames import FrameBuilder
from .output import Output
from .render_loop import RenderLoop
from .state import Frame, Request

__all__ = ["Screen"]


class Screen:
    """Renders the newest request and publishes its frame (``frame``: the one on screen)."""

    def __init__(self, builder: FrameBuilder, output: Output, caption: Caption, controls: Controls,
                 threaded: bool, on_error: Callable[[BaseException], None]) -> None:
        self.builder, self.output, self.caption, self.c = builder, output, caption, controls
        self.loop = RenderLoop(self.render_generation, on_error, threaded)
        self.frame: Frame | None = None
        self.published = 0
        self.epoch = 0  # bumped when heads or caches change: an equal state must still be recomputed
        self.class_image: str | None = None  # the image whose top-k the class dropdowns list
        self.last_timings: dict[str, float] = {}
        self._tls = threading.local()
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ requests
    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Programmatic control changes inside this block do not trigger renders (this thread only)."""
        self._tls.quiet = getattr(self._tls, "quiet", 0) + 1
        try:
            yield
        finally:
            self._tls.quiet -= 1

    def is_quiet(self) -> bool:
        return getattr(self._tls, "quiet", 0) > 0

    def request(self) -> None:
        """Something changed: render the newest state (now, or coalesced in the worker)."""
        self.loop.request()

    def invalidate(self) -> None:
        """Heads, caches or long-method maps changed: recompute even an unchanged state."""
        self.builder.forget_content()
        self.epoch += 1

    def snapshot(self) -> Request:
        c = self.c
        cls, minus = c.class_control.value, c.contrast_control.value
        return Request(
            image=c.image_control.value, class_index=None if cls is None else int(cls),
            layer=c.layer_control.value, method=c.method_control.value, alpha=float(c.alpha_control.value),
            colormap=c.colormap_control.value, view=c.view_control.value, scope=c.scope_control.value,
            layers=tuple(c.layers_control.value), methods=tuple(c.methods_control.value),
            contrast=None if minus is None else int(minus), smooth=c.smooth_control.value or "",
        )

    # ------------------------------------------------------------------ rendering and publishing
    def render_generation(self, generation: int) -> None:
        state = self.snapshot()
        current = self.frame
        if (current is not None and current.ok and current.epoch == self.epoch and current.state == state
                and state.image == self.class_image):
            with self._lock:  # nothing visible would change (a request made redundant by coalescing)
                self.published = max(self.published, generation)
            return
        try:
            frame = self.builder.build(state, generation, self.epoch, self.class_image)
        except Exception as exc:
            frame = self.builder.error_frame(state, generation, self.epoch, exc)
        prefetch = getattr(self.output, "prefetch", None)  # an output that gets alternatives ahead (the canvas)
        if prefetch is not None:
            prefetch(self.builder, frame)
        self.publish(frame)

    def publish(self, frame: Frame) -> bool:
        """Show ``frame`` unless a newer one is already on screen (generation guard)."""
        c = self.c
        with self._lock:
            if frame.generation <= self.published:
                return False
            self.published = frame.generation
            with contextlib.ExitStack() as stack:
                # held syncs are flushed in reverse order of entry: the picture (entered last) goes first
                for w in (c.class_control, c.contrast_control, self.caption.widget):
                    stack.enter_context(w.hold_sync())
                stack.enter_context(self.output.hold_sync())
                if frame.class_update is not None:
                    self._set_classes(*frame.class_update)
                    self.class_image = frame.state.image
                if frame.painted is not None:
                    self.output.publish(frame.painted)
                self.caption.set(legend=frame.legend, status=frame.status)
            self.frame = frame
            self.last_timings = dict(frame.timings)
            show(c.run_button, any(cell.spec.expensive and cell.cam is None for cell in frame.cells))
            return True

    def _set_classes(self, options: Any, value: int, minus: int | None) -> None:
        with self.quiet():
            self.c.class_control.options = options
            self.c.class_control.value = value
            self.c.contrast_control.options = options
            self.c.contrast_control.value = minus
