"""The coalescing render loop (cam_widget/ui/render_loop.py): newest-only rendering, ordered jobs, errors, close."""

from __future__ import annotations

import threading

import pytest

from cam_widget.ui.render_loop import RenderLoop


def test_a_burst_of_requests_is_coalesced_and_the_newest_generation_is_rendered():
    gate = threading.Event()
    rendered: list[int] = []

    def render(generation: int) -> None:
        gate.wait(5)  # the first render blocks while 200 more requests arrive
        rendered.append(generation)

    loop = RenderLoop(render, lambda exc: pytest.fail(f"unexpected error {exc!r}"))
    for _ in range(201):
        loop.request()
    gate.set()
    assert loop.wait(10)
    assert loop.generation == 201 and rendered[-1] == 201
    assert len(rendered) <= 3 and rendered == sorted(rendered)  # the first, maybe one in between, the newest
    loop.close()


def test_jobs_run_in_order_in_the_worker_and_errors_do_not_stop_the_loop():
    errors: list[BaseException] = []
    ran: list[tuple[str, str]] = []
    main = threading.current_thread().name
    loop = RenderLoop(lambda g: ran.append(("render", threading.current_thread().name)), errors.append)

    def boom() -> None:
        raise RuntimeError("job failed")

    loop.submit(lambda: ran.append(("a", threading.current_thread().name)))
    loop.submit(boom)
    loop.submit(lambda: ran.append(("b", threading.current_thread().name)))
    assert loop.wait(10)
    loop.request()
    assert loop.wait(10)
    assert [k for k, _ in ran] == ["a", "b", "render"]
    assert all(t != main for _, t in ran)
    assert len(errors) == 1 and str(errors[0]) == "job failed"
    loop.close()


def test_a_failing_render_is_reported_and_the_next_request_still_renders():
    errors: list[BaseException] = []
    rendered: list[int] = []

    def render(generation: int) -> None:
        if generation == 1:
            raise ValueError("bad frame")
        rendered.append(generation)

    loop = RenderLoop(render, errors.append)
    loop.request()
    assert loop.wait(10)
    loop.request()
    assert loop.wait(10)
    assert [str(e) for e in errors] == ["bad frame"] and rendered == [2]
    loop.close()


def test_wait_times_out_while_a_render_runs_and_close_ignores_later_requests():
    gate = threading.Event()
    rendered: list[int] = []
    loop = RenderLoop(lambda g: (gate.wait(5), rendered.append(g)), lambda exc: None)
    loop.request()
    assert loop.wait(0.05) is False
    gate.set()
    assert loop.wait(10)
    loop.close()
    loop.request()
    loop.submit(lambda: rendered.append(-1))
    assert loop.wait(1) and rendered == [1]


def test_unthreaded_loop_renders_and_runs_jobs_in_the_calling_thread():
    errors: list[BaseException] = []
    seen: list[tuple[int, str]] = []
    loop = RenderLoop(lambda g: seen.append((g, threading.current_thread().name)), errors.append, threaded=False)
    loop.request()
    loop.request()
    loop.submit(lambda: 1 / 0)
    assert seen == [(1, threading.current_thread().name), (2, threading.current_thread().name)]
    assert isinstance(errors[0], ZeroDivisionError)
    assert loop.next_generation() == 3 and loop.wait(0)
