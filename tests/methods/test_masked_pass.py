"""The engine's masked-input pass (``CAMEngine.masked_scores``, Score-CAM's forward passes): masks built in the
graph and the frozen weights give what masks built by hand in numpy and the live Keras model give; a partial last
batch, a constant map, the unfrozen fallback and weights changed in place (``reload_head``)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from conftest import photo  # noqa: E402

from cam_widget import CAMEngine, CAMError  # noqa: E402

SIZE = 24


def bn_model(seed: int = 3) -> keras.Model:
    """Conv -> BatchNorm -> ReLU6, then depthwise conv -> BatchNorm -> ReLU6, GAP, Dense, softmax: the patterns
    freezing folds (BN into the conv, BN into the depthwise conv)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    for i, k in enumerate((8, 16)):
        if i == 0:
            x = keras.layers.Conv2D(k, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        else:  # channel multiplier 2: the folded scale is laid out (in, multiplier)
            x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, use_bias=False)(x)
        bn = keras.layers.BatchNormalization(name=f"bn{i}")
        x = bn(x)
        # non-trivial statistics, so that folding them into the convolution is exercised
        bn.set_weights([rng.uniform(0.5, 2, k), rng.normal(0, 0.5, k), rng.normal(0, 0.5, k), rng.uniform(0.2, 3, k)])
        x = keras.layers.ReLU(6.0, name=f"act{i}")(x)
    out = keras.layers.Dense(4, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


def masks_by_hand(maps: np.ndarray, align_corners: bool) -> np.ndarray:
    """(m, h, w) -> (m, SIZE, SIZE, 1): bilinear upsampling (scipy zoom for corner alignment), min-max to [0, 1]."""
    from scipy.ndimage import zoom

    out = []
    for a in maps.astype(np.float64):
        if align_corners:
            up = zoom(a, (SIZE / a.shape[0], SIZE / a.shape[1]), order=1, mode="nearest")
        else:
            up = tf.image.resize(a[None, :, :, None], (SIZE, SIZE), method="bilinear").numpy()[0, :, :, 0]
        lo, hi = up.min(), up.max()
        # a constant map gives a zero mask (tested on the map itself: scipy's zoom of a constant is not exact)
        out.append((up - lo) / (hi - lo) if np.ptp(a) > 0 else np.zeros_like(up))
    return np.stack(out)[..., None]


def expected(model: keras.Model, engine: CAMEngine, img: np.ndarray, maps: np.ndarray, align: bool) -> np.ndarray:
    x = engine.model_input(img)
    return model(tf.constant(masks_by_hand(maps, align) * x[None], tf.float32), training=False).numpy()


@pytest.fixture(scope="module")
def setup() -> tuple[keras.Model, CAMEngine, np.ndarray, np.ndarray]:
    model = bn_model()
    maps = np.random.default_rng(5).random((7, 6, 6)).astype(np.float32)
    maps[3] = 0.25  # a constant map: a zero mask
    return model, CAMEngine(model), photo(seed=21, size=SIZE), maps


@pytest.mark.parametrize("align", [False, True])
def test_masked_scores_equal_masks_built_by_hand_in_any_batching(setup, align):
    model, engine, img, maps = setup
    want = expected(model, engine, img, maps, align)
    whole = engine.masked_scores(img, maps, align_corners=align, batch_size=7)
    np.testing.assert_allclose(whole, want, rtol=1e-4, atol=1e-6)
    # 7 maps in batches of 3: a partial last batch (no retrace, no padding) gives the same rows
    seen: list[tuple[int, int]] = []
    parts = engine.masked_scores(img, maps, align_corners=align, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-7)
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert engine._passes.masked(align)[1]  # this model is frozen (weights folded into the graph)
    logits = engine.masked_scores(img, maps, align_corners=align, output="logits")
    np.testing.assert_allclose(engine._probabilities(logits), whole, rtol=1e-5, atol=1e-7)


def test_depthwise_batch_norms_are_folded_exactly(setup):
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from cam_widget.passes import _graph_function, fold_depthwise_scales

    model = setup[0]
    spec = tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32)
    frozen = convert_variables_to_constants_v2(tf.function(lambda x: model(x, training=False)).get_concrete_function(spec))
    graph_def = frozen.graph.as_graph_def()
    assert fold_depthwise_scales(graph_def) == 1
    ops = [n.op for n in graph_def.node]
    assert ops.count("BiasAdd") >= 1
    run = _graph_function(graph_def, [t.name for t in frozen.inputs], [t.name for t in frozen.outputs])
    x = tf.constant(np.random.default_rng(2).normal(0, 60, (3, SIZE, SIZE, 3)).astype(np.float32))
    np.testing.assert_allclose(run(x)[0].numpy(), model(x, training=False).numpy(), rtol=1e-4, atol=1e-6)
    assert fold_depthwise_scales(graph_def) == 0  # nothing left to fold


def test_a_model_that_cannot_be_frozen_runs_unfrozen(setup, monkeypatch):
    from tensorflow.python.framework import convert_to_constants

    model, engine, img, maps = setup

    def refuse(*args, **kwargs):
        raise ValueError("GraphDef cannot be larger than 2GB.")

    monkeypatch.setattr(convert_to_constants, "convert_variables_to_constants_v2", refuse)
    fresh = CAMEngine(model)
    got = fresh.masked_scores(img, maps)
    assert fresh._passes.masked(False)[1] is False
    np.testing.assert_allclose(got, expected(model, fresh, img, maps, False), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got, engine.masked_scores(img, maps), rtol=1e-4, atol=1e-6)


def test_weights_changed_in_place_reach_the_frozen_pass_after_reload_head(setup):
    _, _, img, maps = setup
    model = bn_model(seed=4)
    engine = CAMEngine(model)
    before = engine.masked_scores(img, maps)
    bn = model.get_layer("bn1")
    bn.set_weights([w[::-1].copy() for w in bn.get_weights()])
    engine.reload_head()  # the documented call after assigning weights in place
    after = engine.masked_scores(img, maps)
    np.testing.assert_allclose(after, expected(model, engine, img, maps, False), rtol=1e-4, atol=1e-6)
    assert not np.allclose(after, before)


def test_bad_maps_are_refused(setup):
    _, engine, img, _ = setup
    for bad in (np.zeros((6, 6)), np.zeros((0, 6, 6)), np.zeros((2, 6, 6, 1))):
        with pytest.raises(CAMError, match=r"maps must have shape \(m, h, w\)"):
            engine.masked_scores(img, bad)
    with pytest.raises(CAMError, match="output must be"):
        engine.masked_scores(img, np.ones((1, 6, 6)), output="softmax")
