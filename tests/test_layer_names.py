"""User layer names that collide with the flattened graph's own op names: a layer called "add" (Keras' automatic
name for the pre-softmax bias op), and two nested models each with a layer "conv" (one flattened graph must not
have two ops of one name).  Regression tests against a hand computation on the same layers."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from cam_widget import CAMEngine  # noqa: E402

SIZE = 16


def photo(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def _conv_block(name: str, channels: int) -> keras.Model:
    i = keras.Input((SIZE, SIZE, channels))
    return keras.Model(i, keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(i), name=name)


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """stem -> one/conv -> two/conv -> backbone/add (+ a skip) -> GAP -> Dense(softmax) named "matmul"."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(3, 1, name="stem")(inp)
    a = _conv_block("one", 3)(x)
    b = _conv_block("two", 4)(a)
    s = keras.layers.Add(name="add")([a, b])
    backbone = keras.Model(inp, s, name="backbone")
    outer = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(backbone(outer))
    return keras.Model(outer, keras.layers.Dense(3, activation="softmax", name="matmul")(pooled))


def _by_hand(model: keras.Model, x: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features at backbone/add, their gradient of logit c, logits), layer by layer on the user's own layers."""
    backbone = model.get_layer("backbone")
    dense = model.get_layer("matmul")
    with tf.GradientTape() as tape:
        stem = backbone.get_layer("stem")(x[None])
        a = backbone.get_layer("one")(stem)
        feats = backbone.get_layer("add")([a, backbone.get_layer("two")(a)])
        tape.watch(feats)
        logits = tf.matmul(tf.reduce_mean(feats, axis=(1, 2)), dense.kernel) + dense.bias
        chosen = logits[0, c]
    return feats[0].numpy(), tape.gradient(chosen, feats)[0].numpy(), logits[0].numpy()


def test_layers_named_add_and_conv_twice_trace_and_map_correctly(model):
    engine = CAMEngine(model)
    assert [i.name for i in engine.layers()] == ["backbone/stem", "backbone/one/conv", "backbone/two/conv", "backbone/add"]
    img = photo()
    x = engine.model_input(img)
    for c in range(3):
        feats, grads, logits = _by_hand(model, x, c)
        np.testing.assert_allclose(engine.logits(img), logits, rtol=1e-5, atol=1e-5)  # pre-softmax, via the "add"
        want = feats @ grads.mean(axis=(0, 1))
        np.testing.assert_allclose(engine.cam(img, c, "backbone/add", method="gradcam"), want, rtol=1e-4,
                                   atol=1e-4 * np.abs(want).max())
        cam = engine.cam(img, c)  # exact CAM at the head: mean(map) + b = logit
        assert engine.cam_layer == "backbone/add"
        np.testing.assert_allclose(cam.mean() + model.get_layer("matmul").bias.numpy()[c], logits[c], rtol=1e-4)
    # both "conv" layers: distinct features; Ablation-CAM at two/conv (the skip from one/conv jumps over it, so
    # the channel-scaled re-trace runs) against zeroing each channel by hand
    assert not np.allclose(engine.features(img, "backbone/one/conv"), engine.features(img, "backbone/two/conv"))
    assert not engine.can_split("backbone/two/conv")
    backbone, dense = model.get_layer("backbone"), model.get_layer("matmul")
    a = backbone.get_layer("one")(backbone.get_layer("stem")(x[None]))
    b = backbone.get_layer("two")(a).numpy()
    y = float(engine.logits(img)[0])
    drops = []
    for k in range(b.shape[-1]):
        cut = b.copy()
        cut[..., k] = 0
        z = (tf.matmul(tf.reduce_mean(a + cut, axis=(1, 2)), dense.kernel) + dense.bias)[0, 0].numpy()
        drops.append((y - z) / abs(y))
    want = b[0] @ np.asarray(drops, np.float32)
    got = engine.cam(img, 0, "backbone/two/conv", method="ablationcam")
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
