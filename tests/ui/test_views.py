"""The panel's views in the kernel: Layers, Methods and Classes grids, the normalisation scope, the contrast map,
the fall-back rules, Save and figure(), and long methods (progress, Cancel) -- against the engine's own maps."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cam_widget import render  # noqa: E402
from cam_widget.imaging import resize_to  # noqa: E402
from cam_widget.refit import FitReport  # noqa: E402
from cam_widget.ui import catalog  # noqa: E402
from cam_widget.ui.views.grid import grid_shape  # noqa: E402
from cam_widget.ui.views.layers import default_layers  # noqa: E402

from .helpers import (  # noqa: E402
    CAM_LAYER,
    CLASS_NAMES,
    NO_HEAD,
    SMALL,
    SPARE,
    Proxy,
    counters,
    decode,
    fresh_photo,
    is_error,
)

LABEL, GAP = 22, 4


def cell_rects(w: Any, n: int, full: bool = False) -> list[tuple[int, int, int, int]]:
    """Where cell k sits in the picture, computed from the documented layout (label strip above each cell)."""
    rgb = w._photo(w.state["image"]).rgb
    cols = grid_shape(n)[1]
    if full:
        ch, cw = rgb.shape[:2]
        label = max(LABEL, round(max(rgb.shape[:2]) / 24))
    else:
        ch, cw = render.fit_within(rgb.shape, max(64, (w.display_size - GAP * (cols - 1)) // cols))
        label = LABEL
    out = []
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = r * (label + ch + GAP) + label, c * (cw + GAP)
        out.append((y, y + ch, x, x + cw))
    return out


def crop(img: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    y0, y1, x0, x1 = rect
    return img[y0:y1, x0:x1]


# ------------------------------------------------------------------------------------------------ views
def test_layers_view_default_is_one_layer_per_resolution_plus_the_cam_layer(make, engine, photos):
    w = make()
    assert w.view_control.options == (("Single", "single"), ("Layers", "layers"), ("Methods", "methods"),
                                       ("Classes", "classes"))
    assert "cam-view" in w.view_control._dom_classes and "cam-scope" in w.scope_control._dom_classes
    w.view_control.value = "layers"
    assert not is_error(w), w.status.value
    infos = {i.name: i for i in engine.layers()}
    assert default_layers(infos, CAM_LAYER) == (SPARE, NO_HEAD, CAM_LAYER)  # 32x32, 16x16, 8x8 (the head's)
    labels = [label for label, _ in w.current_maps()]
    assert len(labels) == 3 and [lab.split(" · ")[0] for lab in labels] == [SPARE, NO_HEAD, CAM_LAYER]
    assert "32x32" in labels[0] and "16x16" in labels[1] and "8x8" in labels[2]
    # CAM selected: the layers without a head show Grad-CAM and say so; the head's layer shows exact CAM
    assert labels[0].endswith("Grad-CAM (no head)") and labels[2].endswith("CAM")
    assert "no GAP" in w.status.value and w.layers_control.layout.display != "none"
    rgb, cls = photos["chelsea"], w.class_control.value
    maps = [m for _, m in w.current_maps()]
    np.testing.assert_array_equal(maps[0], engine.cam(rgb, cls, layer=SPARE, method="gradcam"))
    np.testing.assert_array_equal(maps[2], engine.cam(rgb, cls, layer=CAM_LAYER, method="cam"))
    # the picture: each cell is the engine's map over the photo at cell size, exactly (PNG frames)
    frame = decode(w.overlay_bytes)
    for rect, cam in zip(cell_rects(w, 3), maps, strict=True):
        size = (rect[1] - rect[0], rect[3] - rect[2])
        want = render.blend(resize_to(rgb, size), render.to_index(cam, size), "jet", 0.5)
        np.testing.assert_array_equal(crop(frame, rect), want)
    assert (frame[:LABEL] < 128).any()  # a label is drawn in the strip above the first row
    # user-editable
    w.layers_control.value = (NO_HEAD, CAM_LAYER)
    assert [lab.split(" · ")[0] for lab, _ in w.current_maps()] == [NO_HEAD, CAM_LAYER]


def test_every_view_renders_and_changes_with_each_control(make, engine, photos):
    w = make()
    for view in ("layers", "methods", "classes", "single"):
        w.view_control.value = view
        assert not is_error(w), (view, w.status.value)
        seen = {w.overlay_bytes}
        steps: list[tuple[Any, Any]] = [
            (w.alpha_control, 0.8), (w.colormap_control, "viridis"), (w.class_control, w.class_control.options[1][1]),
            (w.scope_control, "signed"), (w.scope_control, "shared"),
        ]
        if view != "layers":
            steps.append((w.layer_control, NO_HEAD))
        if view == "classes":
            steps.append((w.contrast_control, w.class_control.options[2][1]))
        if view == "methods":
            steps.append((w.methods_control, ("gradcam",)))
        steps.append((w.image_control, "coffee"))
        for control, value in steps:
            control.value = value
            assert not is_error(w), (view, control.description, w.status.value)
            assert w.overlay_bytes not in seen, (view, control.description, value)
            seen.add(w.overlay_bytes)
        for control, value in ((w.image_control, "chelsea"), (w.alpha_control, 0.5), (w.colormap_control, "jet"),
                               (w.scope_control, "map"), (w.layer_control, CAM_LAYER), (w.methods_control, ())):
            control.value = value


def test_a_view_switch_after_the_first_visit_runs_no_network(make, engine, photos):
    w = make(images={"fresh": fresh_photo(photos)})
    for view in ("layers", "methods", "classes", "single"):
        for scope in ("map", "shared", "signed"):
            w.view_control.value = view
            w.scope_control.value = scope
    assert not is_error(w), w.status.value
    before = counters(engine)
    for _ in range(2):
        for view in ("classes", "single", "layers", "methods"):
            for scope in ("signed", "map", "shared"):
                w.view_control.value = view
                w.scope_control.value = scope
                w.alpha_control.value = 0.3 if w.alpha_control.value != 0.3 else 0.6
    assert counters(engine) == before and not is_error(w)


def test_the_layers_view_costs_one_forward_pass_per_new_layer_set_then_nothing(make, engine, photos):
    k = engine.layer(SPARE).shape[2]
    engine.register_head(SPARE, np.random.default_rng(3).normal(size=(k, len(CLASS_NAMES))), np.zeros(len(CLASS_NAMES)))
    try:
        w = make(images={"fresh": fresh_photo(photos)})
        _, f0, g0 = counters(engine)
        w.view_control.value = "layers"  # c1 (refit head, CAM), c2 (Grad-CAM fall-back), c3 (the model's head)
        assert not is_error(w), w.status.value
        _, f1, g1 = counters(engine)
        assert (f1 - f0, g1 - g0) == (1, 1)  # c1's features in one forward pass; c2's top-k in one gradient pass
        for cls, _ in [(v, None) for _, v in w.class_control.options] * 2:
            w.class_control.value = cls
        assert counters(engine)[1:] == (f1, g1) and not is_error(w)
    finally:
        engine.remove_head(SPARE)


def test_methods_view_shows_every_cheap_method_at_one_layer_and_falls_back_without_a_head(make, engine, photos):
    w = make()
    w.view_control.value = "methods"
    names = [m.name for m in catalog.available_methods() if not m.expensive]
    assert len(w.current_maps()) == len(names) and w.method_control.layout.display == "none"
    w.layer_control.value = NO_HEAD
    labels = [label for label, _ in w.current_maps()]
    assert labels[names.index("cam")].startswith("CAM -> Grad-CAM (no head)")
    cls = w.class_control.value
    for (_, cam), name in zip(w.current_maps(), names, strict=True):
        method = "gradcam" if name == "cam" else name
        np.testing.assert_array_equal(cam, engine.cam(photos["chelsea"], cls, layer=NO_HEAD, method=method))
    w.methods_control.value = ("gradcam",)  # a chosen subset
    assert len(w.current_maps()) == 1


def test_contrast_map_is_the_difference_of_the_two_raw_maps_signed_and_diverging(make, engine, photos):
    w = make(top_k=3)
    w.view_control.value = "classes"
    top = [v for _, v in w.class_control.options]
    maps = w.current_maps()
    assert len(maps) == 4 and w.contrast_control.layout.display != "none"
    a, b = w.class_control.value, w.contrast_control.value
    assert (a, b) == (top[0], top[1])
    rgb = photos["chelsea"]
    label, diff = maps[-1]
    assert label == f"{CLASS_NAMES[a]} - {CLASS_NAMES[b]}"
    np.testing.assert_allclose(diff, engine.cam(rgb, a) - engine.cam(rgb, b), rtol=0, atol=1e-6)
    for (_, cam), c in zip(maps[:3], top, strict=True):
        np.testing.assert_array_equal(cam, engine.cam(rgb, c))
    # signed on a diverging colormap centred on zero, whatever the scope and the colormap control say
    cell = w._screen.frame.cells[-1]
    m = float(np.abs(diff).max())
    assert cell.signed and not cell.relu and cell.scale == (-m, m)
    lut = render.colormap_lut("RdBu_r")
    frame = decode(w.overlay_bytes)
    rect = cell_rects(w, 4)[-1]
    size = (rect[1] - rect[0], rect[3] - rect[2])
    index = render.to_index(diff, size, normalize=(-m, m), relu=False)
    want = render.blend(resize_to(rgb, size), index, "RdBu_r", 0.5)
    np.testing.assert_array_equal(crop(frame, rect), want)
    w.alpha_control.value = 1.0
    np.testing.assert_array_equal(crop(decode(w.overlay_bytes), rect), lut[index])
    w.contrast_control.value = top[2]
    np.testing.assert_allclose(w.current_maps()[-1][1], engine.cam(rgb, a) - engine.cam(rgb, top[2]), atol=1e-6)


def test_shared_scale_really_shares_a_weaker_class_looks_weaker(make, engine, photos):
    w = make(top_k=3)
    w.view_control.value = "classes"
    w.scope_control.value = "shared"
    rgb = photos["chelsea"]
    top = [v for _, v in w.class_control.options]
    cams = [engine.cam(rgb, c) for c in top]
    hi = max(float(np.maximum(c, 0).max()) for c in cams)
    cells = w._screen.frame.cells[:3]
    assert all(c.scale == (0.0, hi) for c in cells)
    assert "shared" in w.legend.value and f"colour-bar maximum'>{hi:.3g}<" in w.legend.value
    peaks = [int(c.index.max()) for c in cells]
    strongest = int(np.argmax([float(np.maximum(c, 0).max()) for c in cams]))
    weakest = int(np.argmin([float(np.maximum(c, 0).max()) for c in cams]))
    assert peaks[strongest] >= 240 and peaks[weakest] < peaks[strongest]  # bilinear may miss the peak a little
    ratio = float(np.maximum(cams[weakest], 0).max()) / hi
    assert abs(peaks[weakest] / 255 - ratio) < 0.05  # its pixels are as much weaker as its map is
    w.scope_control.value = "map"  # per map: every cell reaches the top of the bar
    assert all(int(c.index.max()) >= 240 for c in w._screen.frame.cells[:3])
    assert "per map" in w.legend.value and "colour-bar maximum'>max<" in w.legend.value


def test_signed_scope_keeps_negative_evidence_on_a_diverging_colormap(make, engine, photos):
    w = make()
    w.scope_control.value = "signed"
    cam = w.current_map()
    assert cam.min() < 0 < cam.max()
    m = float(np.abs(cam).max())
    assert w._screen.frame.cells[0].scale == (-m, m)
    assert "signed" in w.legend.value and "RdBu_r colour bar" in w.legend.value and f"{-m:.3g}" in w.legend.value
    rgb = photos["chelsea"]
    display = resize_to(rgb, render.fit_within(rgb.shape, SMALL))
    want = render.blend(display, render.to_index(cam, display.shape[:2], normalize=(-m, m), relu=False), "RdBu_r", 0.5)
    np.testing.assert_array_equal(decode(w.overlay_bytes), want)
    w.colormap_control.value = "coolwarm"  # a diverging colormap of the user's own is kept
    assert "coolwarm colour bar" in w.legend.value


def test_refit_head_labels_carry_the_fit_agreement(make, engine, photos):
    k = engine.layer(SPARE).shape[2]
    engine.register_head(SPARE, np.random.default_rng(4).normal(size=(k, len(CLASS_NAMES))), np.zeros(len(CLASS_NAMES)))
    try:
        w = make()
        w.refit_reports[SPARE] = FitReport(SPARE, 0.93, 0.875, n_samples=10, n_heldout=4, teacher="t", seconds=0.1)
        w.clear_cache()
        w.view_control.value = "layers"
        label = w.current_maps()[0][0]
        assert label.startswith(SPARE) and label.endswith("CAM · refit fit 93%")
    finally:
        engine.remove_head(SPARE)


# ------------------------------------------------------------------------------------------------ output
def test_save_writes_the_whole_grid_at_full_resolution_with_labels(make, engine, photos, tmp_path):
    w = make(save_dir=tmp_path)
    w.view_control.value = "layers"
    path = w.save()
    assert path.parent == tmp_path and "layers" in path.name
    full = decode(path.read_bytes())
    rgb = photos["chelsea"]
    rows, cols = grid_shape(3)
    label = max(LABEL, round(max(rgb.shape[:2]) / 24))
    assert full.shape == (rows * (label + rgb.shape[0] + GAP) - GAP, cols * (rgb.shape[1] + GAP) - GAP, 3)
    for rect, (_, cam) in zip(cell_rects(w, 3, full=True), w.current_maps(), strict=True):
        np.testing.assert_array_equal(crop(full, rect), render.overlay(rgb, cam, alpha=0.5, colormap="jet"))
    assert (full[:label] < 128).any() and (full[:label] == 255).any()  # dark text on a white label strip
    w.save_button.click()
    assert "full-resolution view" in w.status.value


def test_figure_is_a_matplotlib_figure_of_the_current_view(make, engine):
    from matplotlib.figure import Figure

    w = make()
    w.view_control.value = "classes"
    fig = w.figure()
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [label for label, _ in w.current_maps()]
    assert any("per map" in ax.get_ylabel() for ax in fig.axes)  # the colour bar states the scope
    w.view_control.value = "single"
    w.scope_control.value = "shared"
    fig = w.figure()
    assert sum(1 for ax in fig.axes if ax.images) == 1 and any("shared" in ax.get_ylabel() for ax in fig.axes)


def test_a_failing_cell_does_not_blank_the_grid(make, engine):
    class HalfBroken(Proxy):
        def cam(self, image: Any, class_index: Any, layer: Any = None, method: str = "cam", **kw: Any) -> Any:
            if layer == NO_HEAD:
                raise RuntimeError("this layer exploded")
            return self._engine.cam(image, class_index, layer=layer, method=method, **kw)

    w = make(eng=HalfBroken(engine))
    w.view_control.value = "layers"
    maps = w.current_maps()
    assert [m is None for _, m in maps] == [False, True, False]
    assert "this layer exploded" in w.status.value and "RuntimeError" in w.status.value


# ------------------------------------------------------------------------------------------------ long methods
SLOW = {"gate": threading.Event(), "calls": 0}


class SlowMethods(Proxy):
    """An engine with one long method, ``slowcam`` (Grad-CAM's map, reported in 4 steps, cancellable)."""

    def cam(self, image: Any, class_index: Any, layer: Any = None, method: str = "cam", progress: Any = None,
            cancel: Any = None, **kw: Any) -> Any:
        if method != "slowcam":
            return self._engine.cam(image, class_index, layer=layer, method=method, **kw)
        SLOW["calls"] += 1
        for step in range(4):
            if not SLOW["gate"].wait(10):
                raise TimeoutError("the test never opened the gate")
            if cancel is not None and cancel.is_set():
                from cam_widget.ui.jobs import _Cancelled

                raise _Cancelled
            if progress is not None:
                progress(step + 1, 4)
        return self._engine.cam(image, class_index, layer=layer, method="gradcam")


@pytest.fixture
def slow_registry(monkeypatch):
    records = [
        {"name": "gradcam", "family": "gradient", "needs_head": False, "cost": "gradient pass",
         "description": "Grad-CAM.", "paper": "Selvaraju 2017", "expensive": False},
        {"name": "slowcam", "family": "perturbation", "needs_head": False, "cost": "1280 forward passes",
         "description": "A slow one.", "paper": "Test 2026", "expensive": True},
        {"name": "cam", "family": "head", "needs_head": True, "cost": "none", "description": "CAM.",
         "paper": "Zhou 2016", "expensive": False},
    ]
    monkeypatch.setattr(catalog, "_registry", lambda: records)
    SLOW["gate"].clear()
    SLOW["calls"] = 0
    yield records
    SLOW["gate"].set()


def test_the_method_picker_lists_the_registry_by_family_with_descriptions(make, engine, slow_registry):
    w = make()
    assert [v for _, v in w.method_control.options] == ["cam", "gradcam", "slowcam"]  # head, gradient, perturbation
    tips = dict(zip([v for _, v in w.method_control.options], w.method_control.tooltips, strict=True))
    assert "A slow one." in tips["slowcam"] and "1280 forward passes" in tips["slowcam"] and "Test 2026" in tips["slowcam"]
    assert "[head]" in tips["cam"]


def test_an_expensive_method_shows_its_cost_runs_on_request_with_progress_and_cancel(make, engine, photos,
                                                                                     slow_registry):
    w = make(eng=SlowMethods(engine), images={"fresh": fresh_photo(photos)})
    w.method_control.value = "slowcam"
    assert SLOW["calls"] == 0  # nothing runs before it is asked for
    assert "1280 forward passes" in w.status.value and "Run" in w.status.value
    assert w.run_button.layout.display != "none" and w.current_map() is None and not is_error(w)
    w.run_button.click()
    assert w.progress_bar.layout.display != "none" and w.cancel_button.layout.display != "none"
    w.method_control.value = "gradcam"  # the panel stays usable while the long method runs
    assert not is_error(w) and w.current_map() is not None and w.progress_bar.layout.display != "none"
    SLOW["gate"].set()
    assert w.wait(timeout=30)
    w.method_control.value = "slowcam"
    assert SLOW["calls"] == 1 and w.progress_bar.value == 1.0
    assert w.progress_bar.layout.display == "none" and w.run_button.layout.display == "none"
    cls = w.class_control.value
    np.testing.assert_array_equal(w.current_map(), engine.cam(w._photo("fresh").rgb, cls, layer=CAM_LAYER,
                                                              method="gradcam"))
    # another class: not computed yet; Run, then Cancel
    SLOW["gate"].clear()
    w.class_control.value = w.class_control.options[1][1]
    assert w.current_map() is None and w.run_button.layout.display != "none"
    w.run_button.click()
    w.cancel_button.click()
    SLOW["gate"].set()
    assert w.wait(timeout=30)
    assert "Cancelled" in w.status.value and w.run_button.layout.display != "none" and w.current_map() is None
    w.alpha_control.value = 0.2
    assert not is_error(w)


def test_an_uninformative_map_is_shown_as_such(make, engine):
    class Flat(Proxy):
        def cam(self, image: Any, class_index: Any, **kw: Any) -> Any:
            out = np.asarray(self._engine.cam(image, class_index, **kw))
            return np.zeros_like(out)

    w = make(eng=Flat(engine))
    assert not is_error(w) and "uninformative map" in w.status.value


def test_smoothing_eigen_is_live_and_aug_runs_on_request(make, engine, photos):
    w = make(images={"fresh": fresh_photo(photos)}, layer=NO_HEAD, method="gradcam")
    rgb, cls = w._photo("fresh").rgb, w.class_control.value
    w.smooth_control.value = "eigen"
    assert not is_error(w), w.status.value
    np.testing.assert_allclose(w.current_map(), engine.cam(rgb, cls, layer=NO_HEAD, method="gradcam", smooth="eigen"),
                               rtol=1e-5, atol=1e-6)
    w.smooth_control.value = "aug"  # one run per augmentation: only on request, its cost said first
    assert w.current_map() is None and "aug smoothing" in w.status.value and w.run_button.layout.display != "none"
    w.run_button.click()
    assert w.wait(timeout=60) and not is_error(w), w.status.value
    np.testing.assert_allclose(w.current_map(), engine.cam(rgb, cls, layer=NO_HEAD, method="gradcam", smooth="aug"),
                               rtol=1e-5, atol=1e-6)
