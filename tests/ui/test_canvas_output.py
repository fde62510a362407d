"""CAMExplorer with the canvas output, in the kernel (no browser): what goes to the canvas per change, that its
cells reproduce the Image path's picture, grids, the fall-back to the Image path, the default choice."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("anywidget")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from cam_widget import render  # noqa: E402
from cam_widget.samples import sample_image  # noqa: E402
from cam_widget.ui.canvas_output import FALLBACK_NOTE, CanvasOutput, default_output  # noqa: E402
from cam_widget.ui.output import ImageOutput  # noqa: E402
from cam_widget.ui.panel import CAMExplorer  # noqa: E402

from .test_canvas_model import Sent  # noqa: E402


@pytest.fixture
def panel(engine):  # the small nested model of tests/ui/conftest.py
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
    png = cv2.imdecode(np.frombuffer(panel.overlay_bytes, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), panel.overlay_rgb)
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


def test_image_path_until_the_front_end_confirms(panel) -> None:
    out = panel.output
    note, image = out.widget.children[1:]
    assert out.fallback and FALLBACK_NOTE in note.value and image is out.image.widget
    assert image.value and image.layout.display is None  # without a browser, the Image path shows the frames
    before = bytes(image.value)
    panel.alpha_control.value = 0.9
    panel.wait()
    assert bytes(image.value) != before
    out.canvas._handle_custom_msg({"event": "ready"}, [])  # what canvas.js sends when it renders
    assert not out.fallback and note.layout.display == "none" and image.layout.display == "none"
    before = bytes(image.value)
    panel.alpha_control.value = 0.2
    panel.class_control.value = panel.class_control.options[2][1]
    panel.wait()
    assert bytes(image.value) == before  # no more JPEG encodes: the canvas paints
    assert panel.overlay_rgb is not None and np.array_equal(out.canvas.overlays()[0], panel.overlay_rgb)


def test_default_output() -> None:
    assert isinstance(default_output(in_kernel=False), ImageOutput)
    assert isinstance(default_output(in_kernel=True), CanvasOutput)
