"""The panel's Trust section, tested in the kernel by asserting on widget state (no browser)."""

from __future__ import annotations

import numpy as np
import pytest
from square_model import indicator, square_engine, square_photo

from cam_widget.ui.trust import TrustSection, TrustTarget, curves_png

PNG = b"\x89PNG"


class Panel:
    """The part of a panel the section needs: a current target that changes."""

    def __init__(self, image):
        self.target = TrustTarget(image, 0, None, "gradcam")

    def __call__(self):
        return self.target


@pytest.fixture
def engine():
    return square_engine()


def test_collapsed_by_default_and_opening_runs_the_checks_in_the_worker(engine):
    panel = Panel(square_photo())
    section = TrustSection(engine, panel, steps=8, sanity_blocks=None)
    assert section.widget.selected_index is None and section.plot.value == b""
    section.widget.selected_index = 0  # the user opens it
    assert section.last_job is not None  # running in the background; the caller returned at once
    section.wait()
    assert section.status.value == "done"
    assert bytes(section.plot.value).startswith(PNG)
    text = section.numbers.value
    assert "deletion AUC" in text and "insertion AUC" in text and "random map" in text
    assert "avg drop %" in text and "ROAD" in text
    assert "Sanity check:" in text and "gradcam" in text
    assert section.progress.layout.visibility == "hidden"
    section.close()


def test_results_are_cached_per_image_layer_class_method(engine):
    panel = Panel(square_photo())
    section = TrustSection(engine, panel, metrics=("deletion", "insertion", "drop"), steps=4)
    section.widget.selected_index = 0
    section.wait()
    first = section.numbers.value
    panel.target = TrustTarget(square_photo(seed=9), 0, None, "gradcam")
    section.notify()
    section.wait()
    assert section.numbers.value != first
    passes = engine.cache_info()["forward_passes"]
    panel.target = TrustTarget(square_photo(), 0, None, "gradcam")  # flip back
    section.notify()
    assert section.status.value == "cached" and section.numbers.value == first
    assert engine.cache_info()["forward_passes"] == passes  # flipping back ran no network
    section.close()


def test_closed_section_ignores_state_changes(engine):
    panel = Panel(square_photo())
    section = TrustSection(engine, panel, metrics=("drop",))
    section.notify()
    assert section.last_job is None and section.numbers.value == ""
    section.close()


def test_compare_methods_fills_a_table_with_the_best_marked(engine):
    panel = Panel(square_photo())
    section = TrustSection(engine, panel, metrics=("deletion", "insertion", "drop"), steps=4,
                           methods=["gradcam"])  # fmt: skip
    assert section.method_names() == ["gradcam", "random"]
    section.compare()
    section.wait()
    table = section.compare_table.value
    assert "<td>gradcam</td>" in table and "<td>random</td>" in table and "<b>" in table
    assert "deletion AUC" in table and "avg drop %" in table
    section.close()


def test_a_failing_check_shows_a_message_and_the_section_keeps_working(engine):
    panel = Panel(square_photo())
    panel.target = TrustTarget(square_photo(), 0, "nope", "gradcam")  # an unknown layer
    section = TrustSection(engine, panel, metrics=("drop",), threaded=False)
    section.widget.selected_index = 0
    assert "cam-trust-error" in section.status.value and "No spatial layer named" in section.status.value
    panel.target = TrustTarget(square_photo(), 0, None, "gradcam")
    section.notify()
    assert section.status.value == "done" and "avg drop %" in section.numbers.value
    section.close()


def test_no_image_yet():
    section = TrustSection(square_engine(), lambda: None, threaded=False)
    section.widget.selected_index = 0
    assert section.status.value == "No image yet."
    section.close()


def test_curves_png_plots_the_report(engine):
    from cam_widget.metrics.trust import trust_checks

    r = trust_checks(engine, square_photo(), 0, method="gradcam", metrics=("deletion",), steps=4)
    png = curves_png(r)
    assert png.startswith(PNG) and len(png) > 1000
    r2 = trust_checks(engine, square_photo(), 0, method="gradcam", metrics=("deletion",), steps=4)
    np.testing.assert_allclose(r2.deletion.deletion_curve, r.deletion.deletion_curve)
    assert indicator().shape == square_photo().shape[:2]


def test_the_panel_carries_the_section_and_tells_it_about_changes(engine):
    """Wiring: CAMExplorer appends the section (collapsed) as its last row; opening it checks the photo,
    class, layer and method on screen; a class change while open re-checks (cached when flipping back)."""
    from cam_widget.ui.panel import CAMExplorer

    panel = CAMExplorer(engine, {"a": square_photo(), "b": square_photo(seed=7)}, threaded=False)
    section = panel.trust
    assert panel.children[-1] is section.widget and section.widget.selected_index is None
    section._metrics = ("deletion", "insertion", "drop")
    section._options = {"steps": 4}
    section.widget.selected_index = 0
    t = section._target()
    assert t.class_index == panel.state["class_index"] and t.layer == panel.state["layer"]
    assert t.method == panel.state["method"] and t.image.shape == square_photo().shape
    assert section.status.value == "done" and "deletion AUC" in section.numbers.value
    first = section.numbers.value
    panel.image_control.value = "b"
    assert section.status.value == "done" and section.numbers.value != first
    panel.image_control.value = "a"
    assert section.status.value == "cached" and section.numbers.value == first
    panel.close()
