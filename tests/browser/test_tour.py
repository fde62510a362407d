"""The tour notebook in a real browser: run it, drive CAMExplorer's class and alpha controls with the
keyboard, check every change reaches the screen and nothing errors.

The notebook is ``notebooks/01_tour.ipynb`` (the whole ``notebooks/`` folder is copied to the server's tmp
root); ``CAM_TOUR_NOTEBOOK=/path/to.ipynb`` points the test at another notebook with a CAMExplorer in it.
Controls are found by the CSS classes CAMExplorer puts on them (``cam-explorer``, ``cam-image``, ``cam-class``,
``cam-alpha``, ``cam-status``, errors as ``.cam-error`` inside the status line).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from .jlab import HarnessError, LabPage, LatencyProbe, artifacts_dir, summarize

REPO = Path(__file__).resolve().parents[2]
TOUR = Path(os.environ.get("CAM_TOUR_NOTEBOOK") or REPO / "notebooks" / "01_tour.ipynb")
ERROR_WORDS = re.compile(r"error|traceback|exception", re.IGNORECASE)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not TOUR.is_file(), reason=f"{TOUR} does not exist yet"),
]


def _status(lab: LabPage, explorer) -> tuple[str, int]:
    status = explorer.locator(".cam-status").first
    return status.inner_text(), status.locator(".cam-error").count()


def _assert_clean(lab: LabPage, explorer, when: str) -> str:
    text, n_errors = _status(lab, explorer)
    assert n_errors == 0 and not ERROR_WORDS.search(text), f"status line {when}: {text!r}"
    assert lab.errors() == [], f"Python errors {when}"
    return text


def test_tour_notebook_keyboard(lab: LabPage) -> None:
    source = TOUR
    lab.page.set_viewport_size({"width": 1280, "height": 1440})  # room for the whole panel in screenshots
    copy = lab.server.add(source.parent, "notebooks") / source.name
    assert copy.is_file()
    info = lab.open_notebook(f"notebooks/{source.name}", timeout=120)
    assert info["kernel"] == "python3"

    lab.run_all_cells(timeout=170)
    assert lab.errors() == [], "the tour notebook raised"
    red = lab.page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert red.count() == 0, f"stderr boxes in the tour: {red.all_inner_texts()}"

    explorer = lab.page.locator(".jp-OutputArea-output .cam-explorer").first
    explorer.wait_for(state="visible", timeout=60_000)
    # the panel's picture: the in-browser canvas (anywidget installed), or the Image path's <img>
    picture = lab.page.locator(".cam-explorer canvas.cam-canvas-cell, .cam-explorer img.cam-image").first
    picture.wait_for(state="attached", timeout=60_000)
    tag = picture.evaluate("el => el.tagName")
    img = lab.wait_for_widget("canvas.cam-canvas-cell" if tag == "CANVAS" else "img.cam-image", timeout=60)
    # The first frame renders in the panel's worker thread: wait for its status line.
    lab.page.wait_for_function(
        "(el) => el.innerText.trim().length > 0", arg=explorer.locator(".cam-status").first.element_handle(),
        timeout=60_000, polling=100,
    )  # fmt: skip
    status0 = _assert_clean(lab, explorer, "after run-all")
    lab.screenshot("tour_initial", scroll_to=img)

    class_ctl = lab.control(".cam-explorer .cam-class")
    alpha_ctl = lab.control(".cam-explorer .cam-alpha")
    assert "noUi-handle" in (alpha_ctl.get_attribute("class") or ""), "alpha_control should be a slider"

    # Class: one keyboard step, the map must change and the status line follow.
    for _ in range(2):
        key = lab.step_key(class_ctl)
        lab.press_and_wait_change(class_ctl, key, img, timeout=60)
        _assert_clean(lab, explorer, f"after {key} on the class control")
    lab.page.wait_for_function(
        "([el, old]) => el.innerText !== old", arg=[explorer.locator(".cam-status").first.element_handle(), status0],
        timeout=30_000, polling=50,
    )  # fmt: skip
    lab.screenshot("tour_class", scroll_to=img)

    # Alpha: re-blend only.
    for _ in range(2):
        key = lab.step_key(alpha_ctl)
        lab.press_and_wait_change(alpha_ctl, key, img, timeout=60)
        _assert_clean(lab, explorer, f"after {key} on the alpha control")

    # A few timed steps of each (keypress -> painted), for the record; the benchmark does this properly.
    probe = LatencyProbe(lab, img)
    timings = {}
    for name, ctl, n in (("alpha", alpha_ctl, 6), ("class", class_ctl, 4)):
        samples = []
        for i in range(n):
            try:
                samples.append(
                    probe.measure(ctl, lab.step_key(ctl, forward=i % 2 == 0), timeout=60, settle_ms=200)
                )
            except HarnessError:
                _assert_clean(lab, explorer, f"after a timed {name} step")
                raise
        timings[name] = {**summarize(samples), "samples": [s.as_dict() for s in samples]}
    (artifacts_dir() / "tour_latency.json").write_text(json.dumps(timings, indent=1))
    print("\ntour latency:", {k: v["latency_ms_median"] for k, v in timings.items()})

    _assert_clean(lab, explorer, "at the end")
    lab.screenshot("tour_final", scroll_to=img)
    lab.screenshot("tour_explorer", locator=explorer)
