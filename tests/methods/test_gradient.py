"""Gradient family against the papers' formulas on a flat reference graph, on flat and nested models; the
identities between them; one gradient pass serving every method (cache counters)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import methods_reference as ref
from conftest import close as close_to
from conftest import photo

from cam_widget import CAMEngine

GRADIENT = {
    "gradcam": ref.gradcam,
    "gradcam++": ref.gradcam_pp,
    "xgradcam": ref.xgradcam,
    "hirescam": ref.hirescam,
    "layercam": ref.layercam,
}


def close(got: np.ndarray, want: np.ndarray, rtol: float = 2e-4) -> None:  # tighter than the other families
    close_to(got, want, rtol)


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3"])
def test_every_gradient_method_matches_the_paper(case, layer):
    engine, prefix, net = case
    img = photo(seed=3)
    x = engine.model_input(img)
    for c in (0, 3):
        a, g, _ = net.ingredients(x, layer, c)
        for name, formula in GRADIENT.items():
            close(engine.cam(img, c, prefix + layer, method=name), formula(a, g))
        close(engine.cam(img, c, prefix + layer, method="gradcam++", variant="authors"), ref.gradcam_pp(a, g, normalise=True))


def test_identities_at_the_gap_dense_head(case):
    """Gradients at the layer feeding GAP -> Dense are W[:, c] / (h w) everywhere, so Grad-CAM = HiResCAM =
    XGrad-CAM = CAM / (h w) (activations are ReLU outputs, positive sums); Layer-CAM = HiResCAM where all
    gradients are positive."""
    engine, prefix, _ = case
    img = photo(seed=4)
    layer = prefix + "conv3"
    assert engine.cam_layer == layer
    w = engine.heads()[layer].weights
    for c in range(5):
        cam = engine.cam(img, c)
        hw = cam.size
        for name in ("gradcam", "hirescam", "xgradcam"):
            close(engine.cam(img, c, method=name), cam / hw, rtol=1e-4)
        g = engine.gradients(img, c)
        positive = g > 0
        layer_cam = engine.cam(img, c, method="layercam")
        if positive.all():
            close(layer_cam, engine.cam(img, c, method="hirescam"))
        else:  # only the positive-weight channels survive relu(g)
            feats = engine.features(img)
            close(layer_cam, feats[..., w[:, c] > 0] @ (w[w[:, c] > 0, c] / hw))


def test_layercam_equals_hirescam_where_all_gradients_are_positive(net):
    """Build the case directly: a head whose weights for class 0 are all positive."""
    engine = CAMEngine(net.flat)
    img = photo(seed=5)
    dense = net.layers["dense"]
    kernel, bias = dense.get_weights()
    try:
        k2 = kernel.copy()
        k2[:, 0] = np.abs(k2[:, 0]) + 0.1
        dense.set_weights([k2, bias])
        engine = CAMEngine(net.flat)  # the head's weights are read at construction
        assert (engine.gradients(img, 0) > 0).all()
        close(engine.cam(img, 0, method="layercam"), engine.cam(img, 0, method="hirescam"))
    finally:
        dense.set_weights([kernel, bias])


def test_one_gradient_pass_serves_every_gradient_method_for_every_class(net):
    engine = CAMEngine(net.functional)
    img = photo(seed=6)
    top = [i for i, _, _ in engine.top_k(img, 5)]
    engine.cam([img] * 5, top, "backbone/conv2", method="gradcam")  # the panel's top-k prefetch: one pass
    before = engine.cache_info()
    assert before["gradient_passes"] == 1
    maps = {
        (name, c): engine.cam(img, c, "backbone/conv2", method=name)
        for name in ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam")
        for c in top
    }
    after = engine.cache_info()
    assert (after["gradient_passes"], after["forward_passes"]) == (before["gradient_passes"], before["forward_passes"])
    assert after["misses"] == before["misses"]
    assert all(np.isfinite(m).all() for m in maps.values())
    # and the batched pass equals per-class passes on a fresh engine
    fresh = CAMEngine(net.functional)
    for c in top[:2]:
        np.testing.assert_allclose(fresh.gradients(img, c, "backbone/conv2"), engine.gradients(img, c, "backbone/conv2"),
                                   rtol=1e-5, atol=1e-7)


def test_a_gradient_map_caches_its_cheap_companions_so_the_first_switch_is_a_lookup(net):
    """The panel's top-k request for one gradient method caches every cheap method's map (numpy on the
    ingredients just fetched): the first switch to another computes nothing, and each map is the paper's."""
    engine = CAMEngine(net.functional)
    img = photo(seed=8)
    layer = "backbone/conv2"
    top = [i for i, _, _ in engine.top_k(img, 3)]
    engine.cam([img] * 3, top, layer, method="hirescam")
    before = engine.cache_info()
    x = engine.model_input(img)
    for c in top:
        a, g, _ = net.ingredients(x, "conv2", c)
        for name, formula in {**GRADIENT, "eigencam": lambda a, g: ref.eigencam(a)}.items():
            close(engine.cam(img, c, layer, method=name), formula(a, g), rtol=1e-3)
    after = engine.cache_info()
    assert after["entries"] == before["entries"]  # every map was cached already: no map computed on the switch
    assert (after["gradient_passes"], after["forward_passes"]) == (before["gradient_passes"], before["forward_passes"])
    # options a companion does not default to (another variant) are computed on request, not guessed
    close(engine.cam(img, top[0], layer, method="gradcam++", variant="authors"),
          ref.gradcam_pp(*net.ingredients(x, "conv2", top[0])[:2], normalise=True))
    assert engine.cache_info()["entries"] == after["entries"] + 1
    # a request over several images (a batch job) caches what it asks for only: per image its logits, features,
    # gradients and the one map
    before = engine.cache_info()["entries"]
    engine.cam([photo(seed=9), photo(seed=10)], 0, layer, method="gradcam")
    assert engine.cache_info()["entries"] == before + 2 * 4


def test_gradients_api_shapes_and_class_names(net):
    engine = CAMEngine(net.flat, class_names=net.class_names)
    img = photo(seed=7)
    assert engine.gradients(img, 1).shape == (16, 16, 10)
    assert engine.gradients(img, [0, "tiger cat", 2], "conv1").shape == (3, 32, 32, 6)
    assert engine.gradients([img, photo(seed=8)], "dog").shape == (2, 16, 16, 10)
    np.testing.assert_array_equal(engine.gradients(img, "Tabby"), engine.gradients(img, 0))
