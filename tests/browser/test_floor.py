"""The floor of the stack, no CAM code: a bare ipywidgets.IntSlider swapping pre-encoded JPEG frames in an
ipywidgets.Image, driven with the keyboard in JupyterLab/Chromium, keypress -> painted timed in the page."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .jlab import (
    FLOOR_DROPDOWN_CLASS,
    FLOOR_IMAGE_CLASS,
    FLOOR_SLIDER_CLASS,
    LabPage,
    LatencyProbe,
    artifacts_dir,
    summarize,
    write_floor_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_kernelspec_is_this_venv(lab: LabPage) -> None:
    """The server's python3 kernelspec runs the interpreter the tests run under (the venv's)."""
    specs = lab.server.kernelspecs()
    assert specs["default"] == "python3"
    argv = specs["kernelspecs"]["python3"]["spec"]["argv"]
    assert Path(argv[0]) == Path(sys.executable)


def test_floor_slider_swaps_jpeg_frames(lab: LabPage) -> None:
    write_floor_notebook(lab.server.root_dir / "floor_224_jpeg.ipynb", size=224, fmt="jpeg", n_frames=24)
    info = lab.open_notebook("floor_224_jpeg.ipynb")
    assert info["kernel"] == "python3"

    lab.run_all_cells(timeout=120)
    assert lab.errors() == []
    assert f"kernel python: {sys.executable}" in lab.text_outputs()

    img = lab.wait_for_widget(f"img.{FLOOR_IMAGE_CLASS}")
    slider = lab.control(f".{FLOOR_SLIDER_CLASS}")
    assert "noUi-handle" in (slider.get_attribute("class") or "")

    # One plain keyboard step first: the picture must change.
    first = lab.img_src(img)
    assert lab.press_and_wait_change(slider, "ArrowRight", img) != first

    # Then the latency series: ArrowRight across the frames (the slider is at 1 of 0..23).
    probe = LatencyProbe(lab, img)
    samples = probe.series(slider, ["ArrowRight"] * 17, warmup=2, settle_ms=120)
    stats = summarize(samples)
    lab.screenshot("floor_224_jpeg", scroll_to=img)
    lab.screenshot("floor_224_jpeg_widget", locator=img)

    out = {"case": "bare ipywidgets.Image, 224 px JPEG", **stats, "samples": [s.as_dict() for s in samples]}
    (artifacts_dir() / "floor_latency.json").write_text(json.dumps(out, indent=1))
    print("\nfloor 224 px JPEG:", json.dumps(stats))

    assert all(s.n_changes == 1 for s in samples), [s.n_changes for s in samples]
    assert all(s.target and "noUi-handle" in s.target for s in samples)
    assert float(slider.get_attribute("aria-valuenow") or "nan") == 18  # 1 + 17 steps
    # Sanity bounds only (shared, noisy machines): every frame appeared, in a time a human would call live.
    assert stats["latency_ms_median"] < 1500
    assert lab.errors() == []

    # A Dropdown moved with the keyboard swaps the frame too.  (PageDown/End/Home: JupyterLab 4 keeps
    # ArrowUp/ArrowDown for cell navigation even when a collapsed <select> has focus, ipywidgets #3912.)
    dropdown = lab.control(f".{FLOOR_DROPDOWN_CLASS}")
    assert dropdown.evaluate("el => el.tagName") == "SELECT"
    assert lab.step_key(dropdown) == "PageDown"
    lab.press_and_wait_change(dropdown, "End", img)
    assert dropdown.evaluate("el => el.selectedIndex") == 23
    assert lab.step_key(dropdown) == "Home"
    lab.press_and_wait_change(dropdown, "Home", img)
    assert dropdown.evaluate("el => el.selectedIndex") == 0
    assert lab.step_key(slider) == "ArrowRight"
    assert lab.errors() == []
