"""``CAMEngine.frozen_forward``: forward passes through a frozen copy of the graph (weights as constants, batch
norms folded) give the live model's logits, features and maps to float rounding, on a flat and on a nested
(transfer-learning) model with real batch-norm statistics; the copy keeps the weights it was frozen with until
``reload_head()``; batch jobs run frozen; a bad value is a clear error."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from cam_widget import CAMEngine, CAMError  # noqa: E402

SIZE = 32


def _backbone(inp: keras.KerasTensor) -> keras.KerasTensor:
    """Conv -> BN -> ReLU6 -> depthwise conv -> BN -> ReLU6 -> 1x1 conv -> BN -> ReLU6 (folded when frozen)."""
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_act")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(6.0, name="dw_act")(x)
    x = keras.layers.Conv2D(12, 1, use_bias=False, name="top")(x)
    x = keras.layers.BatchNormalization(name="top_bn")(x)
    return keras.layers.ReLU(6.0, name="top_act")(x)


def _model(nested: bool, seed: int = 4) -> keras.Model:
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    if nested:
        inner_in = keras.Input((SIZE, SIZE, 3))
        backbone = keras.Model(inner_in, _backbone(inner_in), name="backbone")
        feats = backbone(inp)
    else:
        feats = _backbone(inp)
    out = keras.layers.Dense(5, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D()(feats))
    model = keras.Model(inp, out)
    for layer in (backbone.layers if nested else model.layers):
        if isinstance(layer, keras.layers.BatchNormalization):  # statistics far from the identity
            k = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, k), rng.normal(0, 0.5, k), rng.normal(0, 0.5, k), rng.uniform(0.2, 3, k)])
    return model


def _photos(n: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(9)
    return [rng.integers(0, 256, (SIZE + 7 * i, SIZE + 3 * i, 3), dtype=np.uint8) for i in range(n)]


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_frozen_forward_equals_the_live_model(nested):
    model = _model(nested)
    live, frozen = CAMEngine(model), CAMEngine(model)
    frozen.frozen_forward = True
    assert frozen.frozen_forward and not live.frozen_forward
    layers = [frozen.cam_layer, "backbone/stem_act" if nested else "stem_act"]
    photos = _photos()
    want_logits, want = live.features_many(photos, layers, cache=False, batch_size=2)
    got_logits, got = frozen.features_many(photos, layers, cache=False, batch_size=2)  # a partial last batch
    np.testing.assert_allclose(got_logits, want_logits, rtol=1e-4, atol=1e-5)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)
    # the same through the cached path the batch jobs use, and the CAMs made from it
    np.testing.assert_allclose(frozen.predict(photos), live.predict(photos), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(frozen.cam(photos, [0, 1, 2, 3, 4]), live.cam(photos, [0, 1, 2, 3, 4]), rtol=1e-4, atol=1e-5)
    # and against an independent computation: the Keras model itself
    x = np.stack([live.model_input(p) for p in photos])
    np.testing.assert_allclose(frozen.predict(photos), model(x, training=False).numpy(), rtol=1e-4, atol=1e-6)


def test_frozen_copy_keeps_its_weights_until_reload_head():
    model = _model(False, seed=6)
    live, frozen = CAMEngine(model), CAMEngine(model)
    frozen.frozen_forward = True
    photos = _photos(3)
    before = frozen.features_many(photos, [], cache=False)[0]
    head = model.get_layer("head")
    w, b = head.get_weights()
    head.set_weights([w[:, ::-1].copy(), b[::-1].copy()])  # the classes' weights swapped in place
    model.get_layer("top").set_weights([model.get_layer("top").get_weights()[0] * 1.5])
    after_live = live.features_many(photos, [], cache=False)[0]
    assert np.abs(after_live - before).max() > 1e-2  # the live pass reads the variables
    np.testing.assert_allclose(frozen.features_many(photos, [], cache=False)[0], before, rtol=1e-6)  # a frozen copy
    frozen.reload_head()
    np.testing.assert_allclose(frozen.features_many(photos, [], cache=False)[0], after_live, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_frozen_forward_bad_value(bad):
    engine = CAMEngine(_model(False))
    with pytest.raises(CAMError, match="frozen_forward must be True or False"):
        engine.frozen_forward = bad
    assert engine.frozen_forward is False


def test_batch_engines_run_frozen(tmp_path):
    from cam_widget.batch import BatchJob
    from cam_widget.batch.engines import engine_for

    model = _model(True)
    path = tmp_path / "m.keras"
    model.save(path)
    engine = engine_for(BatchJob(model=str(path), items=[], out=tmp_path / "out"))
    assert engine.frozen_forward


def test_cached_results_come_from_one_kind_of_pass():
    """The passes agree to ~1e-5, not bit for bit: a frozen engine's cached logits and features are the frozen
    pass's even after a gradient pass ran first, and switching the flag empties the cache."""
    model = _model(False, seed=8)
    engine = CAMEngine(model)
    engine.frozen_forward = True
    photos = _photos(3)
    fresh_logits, fresh = engine.features_many(photos, [engine.cam_layer], cache=False)
    engine.gradients(photos, 1)  # a gradient pass first: it computes logits and features too
    logits, feats = engine.features_many(photos, [engine.cam_layer])
    np.testing.assert_array_equal(logits, fresh_logits)  # bit for bit: from the frozen pass
    np.testing.assert_array_equal(feats[engine.cam_layer], fresh[engine.cam_layer])
    assert engine.cache_info()["entries"] > 0
    engine.frozen_forward = False
    assert engine.cache_info()["entries"] == 0
    engine.frozen_forward = False  # no change: nothing dropped
    engine.features_many(photos, [engine.cam_layer])
    entries = engine.cache_info()["entries"]
    engine.frozen_forward = False
    assert engine.cache_info()["entries"] == entries
