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
from cam_widget.ui.scope import symmetric_scale  # noqa: E402

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
    p = panel
    assert {k: w.model_id for k, w in cv.controls.items()} == {
        "alpha": p.alpha_control.model_id, "colormap": p.colormap_control.model_id, "scope": p.scope_control.model_id,
        "choice": p.class_control.model_id,
        **{f"context{i}": w.model_id for i, w in enumerate(
            (p.image_control, p.layer_control, p.method_control, p.view_control, p.smooth_control))},
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


def test_opacity_scope_and_prefetched_class_send_nothing_to_the_canvas(panel) -> None:
    cv = panel.output.canvas
    top = [int(i) for i, _ in ((v, 0) for _, v in panel.class_control.options)]
    assert sorted(cv.choices) == sorted(str(i) for i in top)  # every top-k class's map came with the first frame
    sent = Sent(cv)
    panel.alpha_control.value = 0.3
    panel.colormap_control.value = "magma"
    panel.scope_control.value = "shared"
    panel.wait()
    assert sent.updates == []  # the browser follows the controls itself
    assert cv.scope == "shared" and np.array_equal(cv.overlays()[0], panel.overlay_rgb)
    panel.scope_control.value = "map"
    panel.class_control.value = top[1]
    panel.wait()
    assert sent.updates == []  # the browser painted choices["<class>"] when the dropdown changed
    assert cv.choices[str(top[1])]["status"] == panel.status.value
    assert np.array_equal(cv.cell_list[0].cam, panel.current_map())
    assert np.array_equal(cv.overlays()[0], panel.overlay_rgb)  # Save / the static PNG follow
    # a class outside the choices (picked by search): the kernel sends its map, once
    outside = next(i for i in range(len(panel._frames.class_names)) if i not in top)
    panel.class_control.value = outside
    panel.wait()
    options, update = sent.updates  # the dropdown's new option (values the browser maps indexes with), the frame
    assert options["keys"] == ["control_options"]
    assert update["keys"] == ["cells", "frame_key", "frame_override", "status"] and update["buffers"] == [8 * 8 * 4]
    assert cv.frame_key == str(outside) and cv.frame_override and cv.status == panel.status.value
    # back to a prefetched class: the override is dropped so that the browser shows its choice
    panel.class_control.value = top[0]
    panel.wait()
    assert sent.updates[-1]["keys"] == ["frame_override"] and not cv.frame_override
    panel.image_control.value = "coffee"
    panel.wait()
    # a new photo (once), its top-k as the choices and as the dropdown's option values: one message
    assert sent.updates[-1]["keys"] == ["cells", "choices", "control_options", "frame_key", "photos", "status"]
    assert sorted(cv.choices) == sorted(str(v) for _, v in panel.class_control.options)


def test_without_prefetch_a_class_change_sends_the_map(panel) -> None:
    cv = panel.output.canvas
    cv_out = panel.output
    cv_out.prefetch_classes = False
    panel.method_control.value = "gradcam"  # a new context: the choices go
    panel.wait()
    assert cv.choices == {}
    sent = Sent(cv)
    panel.class_control.value = panel.class_control.options[1][1]
    panel.wait()
    (update,) = sent.updates
    assert "cells" in update["keys"] and "choices" not in update["keys"] and len(update["buffers"]) == 1


def test_scopes_match_the_kernel_picture(panel) -> None:
    """The canvas applies the scope itself (its cells carry the per-map scale): its composite equals the kernel's
    picture in every scope, for the single view and a grid with a contrast map."""
    cv = panel.output.canvas
    for view in ("single", "classes"):
        panel.view_control.value = view
        for scope in ("map", "shared", "signed"):
            panel.scope_control.value = scope
            panel.wait()
            assert cv.scope == scope
            frame = panel._screen.frame
            mosaic = panel._frames._last[2]
            rects = mosaic.cells or [(0, frame.rgb.shape[0], 0, frame.rgb.shape[1])]
            tiles = cv.overlays()
            assert len(tiles) == len(rects) == len(frame.cells)
            for (y0, y1, x0, x1), tile, cell in zip(rects, tiles, frame.cells, strict=True):
                assert np.array_equal(tile, frame.rgb[y0:y1, x0:x1]), (view, scope, cell.label)
    assert any(c.contrast for c in cv.cell_list)


def test_grid_view_cells_and_signed_colours(panel) -> None:
    panel.view_control.value = "layers"
    panel.wait()
    cv = panel.output.canvas
    n = len(panel.current_maps())
    assert n >= 2 and len(cv.cells) == n and cv.columns >= 2
    assert [c.label for c in cv.cell_list] == [label for label, _ in panel.current_maps()]
    panel.scope_control.value = "signed"
    panel.wait()
    assert cv.scope == "signed"
    for tile, cell in zip(cv.overlays(), cv.cell_list, strict=True):
        if cell.cam is not None:
            ref = render.overlay(cell.image, cell.cam, cv.alpha, cv.signed_colormaps.get(cv.colormap, cv.colormap),
                                 normalize=symmetric_scale([cell.cam]), relu=False)  # fmt: skip
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
