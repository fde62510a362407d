"""CAMCanvas in the kernel, no browser: what it sends (and does not send), the normalisation modes as render
calls, the static PNG, linked controls mirrored without echo, bad input.  Pixel agreement of the browser's
composite is tests/browser/test_canvas.py."""

from __future__ import annotations

import base64

import cv2
import ipywidgets as widgets
import numpy as np
import pytest

pytest.importorskip("anywidget")

from cam_widget import render
from cam_widget.samples import sample_image
from cam_widget.ui.canvas import NORMALIZATIONS, CAMCanvas, CanvasCell, normalize_args


@pytest.fixture
def photo() -> np.ndarray:
    return sample_image("chelsea")


class Sent:
    """Collect the state updates a widget would send to the browser."""

    def __init__(self, widget: widgets.Widget) -> None:
        self.updates: list[dict] = []
        orig = widget._send

        def capture(msg, buffers=None):
            if msg.get("method") == "update":
                self.updates.append(
                    {"keys": sorted(msg["state"]), "buffers": [len(b) for b in buffers or []]}
                )
            return orig(msg, buffers)

        widget._send = capture


def test_raw_map_once_photo_once(photo: np.ndarray) -> None:
    cv = CAMCanvas()
    sent = Sent(cv)
    cam = np.random.default_rng(0).normal(size=(7, 7)).astype(np.float32)
    cv.show(photo, cam, "first")
    assert sent.updates[-1]["keys"] == ["cells", "photos"]  # one message
    entry = next(iter(cv.photos.values()))
    assert entry["format"] == "png" and entry["shape"] == [300, 451]
    decoded = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(entry["data"], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert np.array_equal(decoded, photo)  # lossless: the browser blends the very pixels render.overlay uses
    # a new map over the same photo: the map only (196 bytes of float32), no photo
    cv.show(photo, cam * 2, "second")
    last = sent.updates[-1]
    assert last["keys"] == ["cells"] and last["buffers"] == [7 * 7 * 4]
    assert np.array_equal(np.frombuffer(cv.cells[0]["map"], "<f4").reshape(7, 7), cam * 2)
    # the same cells again: nothing sent
    n = len(sent.updates)
    cv.show(photo, cam * 2, "second")
    assert len(sent.updates) == n


def test_modes_are_render_calls(photo: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    maps = [rng.normal(size=(7, 7)).astype(np.float32), 3 * rng.normal(size=(14, 14)).astype(np.float32)]
    cv = CAMCanvas(alpha=0.6, colormap="viridis", columns=2)
    cv.set_cells(
        [CanvasCell(photo, maps[0], "a", vrange=(0.0, 2.0)), CanvasCell(photo, maps[1], "b", relu=False)]
    )
    scale = render.shared_scale(maps)
    expected = {
        "minmax": [render.overlay(photo, m, 0.6, "viridis") for m in maps],
        "shared": [render.overlay(photo, m, 0.6, "viridis", normalize=scale) for m in maps],
        "signed": [render.overlay(photo, m, 0.6, "viridis", relu=False) for m in maps],
        "none": [render.overlay(photo, m, 0.6, "viridis", normalize="none") for m in maps],
        "fixed": [render.overlay(photo, maps[0], 0.6, "viridis", normalize=(0.0, 2.0)),
                  render.overlay(photo, maps[1], 0.6, "viridis", relu=False)],
    }  # fmt: skip
    assert set(expected) == set(NORMALIZATIONS)
    for mode, want in expected.items():
        cv.normalize = mode
        for got, ref in zip(cv.overlays(), want, strict=True):
            assert np.array_equal(got, ref), mode
    grid = cv.composite(gap=4)
    assert grid.shape == (300, 451 * 2 + 4, 3)
    assert np.array_equal(grid[:, 455:], expected["fixed"][1])


def test_mimebundle_has_the_widget_and_a_png(photo: np.ndarray) -> None:
    cv = CAMCanvas()
    data, _ = cv._repr_mimebundle_()
    assert "image/png" not in data  # nothing to show yet
    cam = np.ones((7, 7), np.float32)
    cv.show(photo, cam)
    data, _ = cv._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    png = cv2.imdecode(np.frombuffer(base64.b64decode(data["image/png"]), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), render.overlay(photo, cam))


def test_linked_controls_are_mirrored_without_echo(photo: np.ndarray) -> None:
    cv = CAMCanvas()
    cv.show(photo, np.eye(7, dtype=np.float32))
    alpha = widgets.FloatSlider(value=0.3, min=0, max=1, step=0.01)
    cmap = widgets.Dropdown(options=["jet", "twilight_shifted"], value="jet")
    norm = widgets.Dropdown(options=[("own", "minmax"), ("shared", "shared")], value="minmax")
    cv.link_controls(alpha=alpha, colormap=cmap, normalize=norm)
    assert cv.alpha == 0.3
    assert "twilight_shifted" in cv.luts and len(cv.luts["twilight_shifted"]) == 768
    assert bytes(cv.luts["twilight_shifted"]) == render.colormap_lut("twilight_shifted").tobytes()
    assert cv.control_options == {"colormap": ["jet", "twilight_shifted"], "normalize": ["minmax", "shared"]}
    assert {k: w.model_id for k, w in cv.controls.items()} == {
        "alpha": alpha.model_id, "colormap": cmap.model_id, "normalize": norm.model_id,
    }  # fmt: skip
    sent = Sent(cv)
    alpha.value, cmap.value, norm.value = 0.8, "twilight_shifted", "shared"
    assert (cv.alpha, cv.colormap, cv.normalize) == (0.8, "twilight_shifted", "shared")
    assert sent.updates == []  # the browser follows the controls itself: the kernel sends the canvas nothing
    assert np.array_equal(
        cv.overlays()[0],
        render.overlay(photo, np.eye(7, dtype=np.float32), 0.8, "twilight_shifted", normalize=(0.0, 1.0)),
    )
    cv.link_controls()  # unlink
    alpha.value = 0.1
    assert cv.alpha == 0.8


def test_bad_input_is_named() -> None:
    cv = CAMCanvas()
    with pytest.raises(ValueError, match="RGB uint8"):
        cv.show(np.zeros((4, 4)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        cv.show(np.zeros((4, 4, 3), np.uint8), np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="CanvasCell"):
        cv.set_cells(["nope"])
    with pytest.raises(ValueError, match="Unknown colormap"):
        cv.colormap = "not-a-map"
    with pytest.raises(ValueError, match="normalize must be one of"):
        CAMCanvas(normalize="zscore")
    with pytest.raises(ValueError, match="opacity"):
        CAMCanvas(alpha=1.5)
    with pytest.raises(ValueError, match="photo_format"):
        CAMCanvas(photo_format="gif")
    with pytest.raises(ValueError, match="normalize must be one of"):
        normalize_args("zscore", np.zeros((2, 2)), [])


def test_handshake() -> None:
    cv = CAMCanvas()
    seen = []
    cv.on_ready(lambda: seen.append(1))
    assert not cv.wait_ready(0.05) and not cv.frontend_ready and seen == []
    cv._handle_custom_msg({"event": "ready"}, [])  # what canvas.js sends when it renders
    cv._handle_custom_msg({"event": "ready"}, [])  # a second view: callbacks ran once
    assert cv.frontend_ready and cv.wait_ready(0) and seen == [1]
    cv.on_ready(lambda: seen.append(2))  # already rendered: at once
    assert seen == [1, 2]
