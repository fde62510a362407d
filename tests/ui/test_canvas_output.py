"""CAMExplorer with the canvas output, in the kernel (no browser): what goes to the canvas per change, that its
cells reproduce the Image path's picture, grids, the fall-back to the Image path, the default choice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("anywidget")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from cam_widget import CAMEngine, render  # noqa: E402
from cam_widget.samples import sample_image  # noqa: E402
from cam_widget.ui.canvas_output import FALLBACK_NOTE, CanvasOutput, default_output  # noqa: E402
from cam_widget.ui.output import ImageOutput  # noqa: E402
from cam_widget.ui.panel import CAMExplorer  # noqa: E402

from .test_canvas_model import Sent  # noqa: E402
from .test_widget import CLASS_NAMES, build_model  # noqa: E402


@pytest.fixture(scope="module")
def engine() -> CAMEngine:
    return CAMEngine(build_model(), class_names=CLASS_NAMES)


@pytest.fixture
def panel(engine):
    photos = {"chelsea": sample_image("chelsea"), "coffee": sample_image("coffee")}
    w = CAMExplorer(engine, photos, display_size=200, output=CanvasOutput())
    yield w
    w.close()


def test_canvas_cells_reproduce_the_image_path(panel, engine) -> None:
    cv = panel.output.canvas
    assert panel.image_widget is panel.output.widget and cv in panel.output.widget.children
    assert {k: w.model_id for k, w in cv.controls.items()} == {
        "alpha": panel.alpha_control.model_id, "colormap": panel.colormap_control.model_id,
    }  # fmt: skip
    assert cv.normalize == "fixed" and len(cv.cells) == 1
    # what the browser paints (the canvas's own render.overlay of its cells) is the kernel's picture
    for alpha, cmap in ((0.5, "jet"), (0.8, "viridis")):
        panel.alpha_control.value, panel.colormap_control.value = alpha, cmap
        panel.wait()
        (painted,) = cv.overlays()
        assert np.array_equal(painted, panel.overlay_rgb)
    cam = panel.current_map()
    assert np.array_equal(cv.cell_list[0].cam, cam)
    assert cv.alpha == 0.8 and cv.colormap == "viridis"


def test_opacity_sends_nothing_to_the_canvas_class_sends_the_map(panel) -> None:
    sent = Sent(panel.output.canvas)
    panel.alpha_control.value = 0.3
    panel.colormap_control.value = "magma"
    panel.wait()
    assert sent.updates == []  # the browser follows the controls itself
    options = panel.class_control.options
    panel.class_control.value = options[1][1]
    panel.wait()
    (update,) = sent.updates
    assert update["keys"] == ["cells"] and update["buffers"] == [8 * 8 * 4]  # the raw 8x8 float32 map, no photo
    panel.image_control.value = "coffee"
    panel.wait()
    assert sent.updates[-1]["keys"] == ["cells", "photos"]  # a new photo, once


def test_grid_view_cells_and_signed_colours(panel) -> None:
    panel.view_control.value = "layers"
    panel.wait()
    cv = panel.output.canvas
    n = len(panel.current_maps())
    assert n >= 2 and len(cv.cells) == n and cv.columns >= 2
    assert [c.label for c in cv.cell_list] == [label for label, _ in panel.current_maps()]
    panel.scope_control.value = "signed"
    panel.wait()
    assert all(c.signed and not c.relu for c in cv.cell_list if c.cam is not None)
    for tile, cell in zip(cv.overlays(), cv.cell_list, strict=True):
        if cell.cam is not None:
            ref = render.overlay(cell.image, cell.cam, cv.alpha, cv.signed_colormaps.get(cv.colormap, cv.colormap),
                                 normalize=cell.vrange, relu=False)  # fmt: skip
            assert np.array_equal(tile, ref)


def test_missing_front_end_falls_back_to_the_image_path(panel) -> None:
    out = panel.output
    out.handshake_timeout = 0.05
    out.displayed()
    assert out.canvas.wait_ready(0.3) is False
    for _ in range(50):
        if out.fallback:
            break
        import time

        time.sleep(0.02)
    assert out.fallback
    note, image = out.widget.children
    assert FALLBACK_NOTE in note.value and image is out.image.widget and image.value  # the picture, at once
    before = bytes(image.value)
    panel.alpha_control.value = 0.9
    panel.wait()
    assert bytes(image.value) != before  # kernel-rendered frames from now on


def test_default_output() -> None:
    assert isinstance(default_output(in_kernel=False), ImageOutput)
    assert isinstance(default_output(in_kernel=True), CanvasOutput)
