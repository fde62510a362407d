"""The canvas output's kernel copy is lazy: an opacity or colormap step blends nothing in the kernel (the browser
paints), while ``overlay_rgb``, the static ``image/png`` and Save still return what ``render.overlay`` draws for
the current state, blended once on demand.  The Image path keeps blending per step.  And a kernel without
anywidget gets the Image path under a one-line note."""

from __future__ import annotations

import base64

import numpy as np
import pytest

pytest.importorskip("anywidget")
pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from cam_widget import render
from cam_widget.imaging import resize_to
from cam_widget.optional import install_line
from cam_widget.ui import canvas as canvas_mod
from cam_widget.ui.canvas_output import NO_ANYWIDGET_NOTE, CanvasOutput, CanvasPainted, default_output
from cam_widget.ui.output import ImageOutput, NotedImageOutput

from .helpers import CAM_LAYER, SMALL, TRIPWIRE, decode, fresh_photo, is_error
from .test_canvas_model import Sent


@pytest.fixture
def blends(monkeypatch) -> list[tuple[int, int]]:
    """Every ``render.blend`` call (the one LUT blend behind blend_mosaic and render.overlay): its picture size."""
    calls: list[tuple[int, int]] = []
    orig = render.blend

    def counting(image, *args, **kwargs):
        calls.append(tuple(image.shape[:2]))
        return orig(image, *args, **kwargs)

    monkeypatch.setattr(render, "blend", counting)
    return calls


def _live_canvas(make):
    w = make(output=CanvasOutput())
    w.output.canvas._handle_custom_msg({"event": "ready"}, [])  # what canvas.js sends once it rendered
    assert not w.output.fallback
    return w


def _expected(photo: np.ndarray, cam: np.ndarray, alpha: float, cmap: str, longest: int | None) -> np.ndarray:
    """render.overlay of the photo (at display size, as the panel resizes it, or full size) and the raw map."""
    if longest is not None:
        photo = resize_to(photo, render.fit_within(photo.shape, longest))
    return render.overlay(photo, cam, alpha=alpha, colormap=cmap)


def test_steps_blend_nothing_reads_match_render_overlay(make, engine, photos, blends, tmp_path) -> None:
    w = _live_canvas(make)
    sent = Sent(w.output.canvas)
    photo = photos["chelsea"]
    cls = engine.top_k(photo, 1)[0][0]
    cam = engine.cam(photo, cls, layer=CAM_LAYER, method="cam")  # the panel's default: exact CAM, top class
    blends.clear()
    steps = [("alpha", 0.3), ("colormap", "viridis"), ("alpha", 0.75), ("colormap", "magma"), ("alpha", 0.62)]
    for what, value in steps:
        getattr(w, f"{what}_control").value = value
        painted = w._screen.frame.painted
        assert isinstance(painted, CanvasPainted) and not painted.blended
        assert w.last_timings["blend"] == 0.0
    assert blends == []  # five steps, no blend in the kernel
    assert sent.updates == []  # and nothing for the canvas: the browser follows the controls itself
    assert w.state["alpha"] == 0.62 and w.state["colormap"] == "magma"

    want, full = _expected(photo, cam, 0.62, "magma", SMALL), _expected(photo, cam, 0.62, "magma", None)
    blends.clear()  # (render.overlay just blended twice)
    assert np.array_equal(w.overlay_rgb, want)
    assert blends == [want.shape[:2]]  # one blend, on the first read
    assert np.array_equal(w.overlay_rgb, want)
    bundle = w._repr_mimebundle_()
    assert np.array_equal(decode(base64.b64decode(bundle["image/png"])), want)
    assert np.array_equal(decode(w.overlay_bytes), want)
    assert blends == [want.shape[:2]]  # kept: later reads of the same state blend nothing
    path = w.save(tmp_path / "lazy.png")
    assert np.array_equal(decode(path.read_bytes()), full)

    w.alpha_control.value = 0.2  # the state changed: the kept copy is not reused
    assert not w._screen.frame.painted.blended
    assert np.array_equal(w.overlay_rgb, _expected(photo, cam, 0.2, "magma", SMALL))


def test_lazy_copy_is_the_image_paths_picture_in_grids(make, blends) -> None:
    canvas = _live_canvas(make)
    image = make(output=ImageOutput(png_max=SMALL))
    for w in (canvas, image):
        w.view_control.value = "layers"
        w.scope_control.value = "signed"  # diverging colormap, no ReLU
        w.colormap_control.value = "viridis"
        blends.clear()
        w.alpha_control.value = 0.7
        if w is image:  # the Image path as before: one blend and one encode per step
            assert blends and image.last_timings["blend"] > 0
            assert np.array_equal(decode(image.image_widget.value), image.overlay_rgb)
        else:
            assert blends == []
    assert len(canvas.current_maps()) >= 2
    assert np.array_equal(canvas.overlay_rgb, image.overlay_rgb)
    canvas.scope_control.value = "shared"
    image.scope_control.value = "shared"
    assert np.array_equal(canvas.overlay_rgb, image.overlay_rgb)


def test_error_frame_has_no_picture_then_recovers(make, photos) -> None:
    w = _live_canvas(make)
    TRIPWIRE["on"] = True  # the model raises: the new photo's frame is an error frame
    try:
        name = w.add_image(fresh_photo(photos), name="fresh")
    finally:
        TRIPWIRE["on"] = False
    assert is_error(w) and w.overlay_rgb is None
    static = decode(base64.b64decode(w._repr_mimebundle_()["image/png"]))
    assert np.array_equal(static, w._photos[name].display)  # the static fallback: the photo, no stale map
    w.alpha_control.value = 0.4
    assert not is_error(w) and w.overlay_rgb.shape == w._photos[name].display.shape


def test_kernel_without_anywidget_gets_the_image_path_with_a_note(make, monkeypatch) -> None:
    assert isinstance(default_output(in_kernel=True), CanvasOutput)
    monkeypatch.setattr(canvas_mod, "available", lambda: False)
    assert type(default_output(in_kernel=False)) is ImageOutput  # scripts and tests: no note, no browser
    out = default_output(png_max=SMALL, in_kernel=True)
    assert isinstance(out, NotedImageOutput)
    assert out.widget.children == (out.note, out.image) and "cam-output-note" in out.note._dom_classes
    assert NO_ANYWIDGET_NOTE in out.note.value and install_line("canvas") in NO_ANYWIDGET_NOTE
    w = make(output=out)
    before = bytes(out.image.value)
    assert before and out.image.format == "png"
    w.alpha_control.value = 0.9
    assert bytes(out.image.value) != before
    assert np.array_equal(decode(out.image.value), w.overlay_rgb)
    assert np.array_equal(decode(w.overlay_bytes), w.overlay_rgb)
