"""A coalescing render loop: one worker thread that renders only the newest request.

Every :meth:`RenderLoop.request` bumps a generation number; the worker wakes up, takes the newest
generation and calls ``render(generation)`` once, however many requests arrived meanwhile.  Jobs
(:meth:`RenderLoop.submit`, e.g. a refit) run in the same thread, in order, before the next render.
With ``threaded=False`` everything runs in the caller's thread instead (tests, scripts, nbconvert).

Nothing here knows about widgets or TensorFlow: the view passes its render function and an error
callback, and guards against stale frames with the generation numbers it receives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RenderLoop"]


class RenderLoop:
    """Run ``render(generation)`` for the newest request, in a worker thread (``threaded``) or now.

    ``on_error(exc)`` receives any exception from a job or a render (the loop itself survives)."""

    def __init__(
        self,
        render: Callable[[int], None],
        on_error: Callable[[BaseException], None],
        threaded: bool = True,
        name: str = "cam-explorer-render",
    ) -> None:
        self._render = render
        self._on_error = on_error
        self.threaded = threaded
        self._name = name
        self._cv = threading.Condition()
        self._generation = 0
        self._pending = False
        self._busy = False
        self._closed = False
        self._jobs: list[Callable[[], None]] = []
        self._worker: threading.Thread | None = None

    @property
    def generation(self) -> int:
        """How many renders have been requested so far (the newest generation number)."""
        return self._generation

    def next_generation(self) -> int:
        """A new generation for a render the caller runs itself; cancels a pending one."""
        with self._cv:
            self._generation += 1
            self._pending = False
            return self._generation

    def request(self) -> None:
        """Something changed: render the newest state (now, or coalesced in the worker)."""
        if not self.threaded:
            self._guarded(self._render, self.next_generation())
            return
        with self._cv:
            if self._closed:
                return
            self._generation += 1
            self._pending = True
            self._ensure_worker()
            self._cv.notify_all()

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the worker (threaded) or now; its exception goes to ``on_error``."""
        if not self.threaded:
            self._guarded(job)
            return
        with self._cv:
            if self._closed:
                return
            self._jobs.append(job)
            self._ensure_worker()
            self._cv.notify_all()

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until no render or job is pending or running; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._pending or self._busy or self._jobs:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cv.wait(remaining)
        return True

    def close(self) -> None:
        """Stop the worker after its current render; later requests are ignored."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def _guarded(self, fn: Callable[..., None], *args: int) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._on_error(exc)

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._jobs and not self._closed:
                    self._busy = False
                    self._cv.notify_all()
                    self._cv.wait()
                if self._closed:
                    self._busy = False
                    self._cv.notify_all()
                    return
                self._busy = True
                jobs, self._jobs = self._jobs, []
                if not jobs:
                    self._pending = False
                    generation = self._generation
            if jobs:
                for job in jobs:
                    self._guarded(job)
                continue  # jobs request their own renders
            self._guarded(self._render, generation)
