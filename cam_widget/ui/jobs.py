"""Long methods (Score-CAM, Ablation-CAM, augmentation smoothing) run here: one run at a time, in its own thread,
with progress and cancellation, so the panel stays usable meanwhile (the render loop keeps serving the cheap
controls).  A finished map goes into the panel's map store and the panel re-renders.

The engine's long methods take ``progress=(done, total) callback`` and ``cancel=threading.Event`` and raise
``cam_widget.errors.CancelledError`` when cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .. import errors
from .maps import MapStore
from .state import CellSpec, Photo

__all__ = ["LongRun"]


class LongRun:
    """Computes the maps of expensive cells in a background thread.

    ``on_progress(fraction, what)`` is called as the engine reports progress; ``on_done(message)`` once at the end
    with ``None`` (all maps computed), ``"cancelled"`` or the error; ``on_map()`` after each map is stored."""

    def __init__(
        self,
        on_progress: Callable[[float, str], None],
        on_map: Callable[[], None],
        on_done: Callable[[BaseException | str | None], None],
    ) -> None:
        self._on_progress, self._on_map, self._on_done = on_progress, on_map, on_done
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, engine: Any, maps: MapStore, photo: Photo, specs: list[CellSpec]) -> bool:
        """Start computing ``specs`` (skipped if a run is under way); ``True`` if started."""
        with self._lock:
            if self.running:
                return False
            self._cancel = threading.Event()
            jobs = list(dict.fromkeys(
                (s.layer, c, maps.resolve(s.layer, s.method)[0], s.smooth)
                for s in specs for c in (s.class_index, s.minus) if c is not None
            ))
            self._thread = threading.Thread(
                target=self._run, args=(engine, maps, photo, jobs, self._cancel), name="cam-explorer-long", daemon=True
            )
            self._thread.start()
            return True

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def _run(self, engine: Any, maps: MapStore, photo: Photo, jobs: list[tuple[str, int, str, str]],
             cancel: threading.Event) -> None:
        cancelled = getattr(errors, "CancelledError", None)
        n = len(jobs)
        try:
            for k, (layer, cls, method, smooth) in enumerate(jobs):
                if cancel.is_set():
                    raise _Cancelled
                what = f"{method} at {layer}, class {cls} ({k + 1}/{n})"

                def progress(done: float, total: float, k: int = k, what: str = what) -> None:
                    self._on_progress((k + (float(done) / float(total) if total else 0.0)) / n, what)

                self._on_progress(k / n, what)
                options = {"smooth": smooth} if smooth else {}
                cam = engine.cam(photo.rgb, cls, layer=layer, method=method, progress=progress, cancel=cancel, **options)
                maps.put_raw(photo, layer, cls, method, smooth, cam)
                self._on_map()
            self._on_progress(1.0, "done")
            self._on_done(None)
        except _Cancelled:
            self._on_done("cancelled")
        except Exception as exc:
            self._on_done("cancelled" if cancelled is not None and isinstance(exc, cancelled) else exc)


class _Cancelled(Exception):
    pass
