"""Refit heads: distilled GAP heads at any layer, exact CAM for them, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
cw = pytest.importorskip("cam_widget")

from cam_widget.errors import CAMError, NoCAMHeadError  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    return cw.default_engine()


@pytest.fixture(scope="module")
def photos():
    return cw.sample_images()


def test_refit_at_top_layer_reproduces_the_models_own_head(engine, photos):
    report = engine.refit_head("top_activation", photos, register=False)
    assert report.head is not None and report.head.layer == "top_activation"
    imgs = list(photos.values())
    logits = engine.logits(imgs)
    pooled = engine.features(imgs, "top_activation").mean(axis=(1, 2))
    refit_logits = pooled @ report.head.weights + report.head.bias
    assert (refit_logits.argmax(1) == logits.argmax(1)).all()
    corr = np.corrcoef(refit_logits.ravel(), logits.ravel())[0, 1]
    assert corr > 0.98
    assert report.top1_agreement >= 0.75  # held-out crops and flips, not the fitting samples
    own = engine.heads()["top_activation"]  # register=False (and the model's own layer): its head is untouched
    assert own.kind == "dense" and own.weights is not report.head.weights


def test_refit_at_14x14_block_gives_exact_cam_for_its_head(engine, photos):
    with pytest.raises(NoCAMHeadError):
        engine.cam(photos["coffee"], 967, layer="block5c_add")
    report = engine.refit_head("block5c_add", photos)
    assert 0.5 < report.top1_agreement <= 1.0 and 0.0 <= report.top5_overlap <= 1.0
    assert report.n_heldout == 4 * len(photos) and report.n_samples > 1000
    assert engine.has_cam("block5c_add")
    cam = engine.cam(photos["coffee"], 967, layer="block5c_add")
    assert cam.shape == (14, 14)
    head = engine.heads()["block5c_add"]
    feats = engine.features(photos["coffee"], "block5c_add")
    expected_logit = feats.mean(axis=(0, 1)) @ head.weights[:, 967] + head.bias[967]
    assert cam.mean() + head.bias[967] == pytest.approx(float(expected_logit), rel=1e-4, abs=1e-4)
    assert "top-1 agreement" in str(report)


def test_save_and_load_heads_roundtrip(engine, photos, tmp_path):
    if not engine.has_cam("block5c_add"):
        engine.refit_head("block5c_add", photos)
    before = engine.cam(photos["chelsea"], 281, layer="block5c_add")
    path = tmp_path / "heads.npz"
    engine.save_heads(path)
    engine.remove_head("block5c_add")
    assert not engine.has_cam("block5c_add")
    assert engine.load_heads(path) == ["block5c_add"]
    np.testing.assert_allclose(engine.cam(photos["chelsea"], 281, layer="block5c_add"), before)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(CAMError, match="save_heads"):
        engine.load_heads(tmp_path / "bad.npz")


def test_refit_without_a_model_head_uses_augmented_crops():
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    f = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="f")(inp)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D(4)(f))
    out = keras.layers.Dense(4, activation="softmax")(x)
    eng = cw.CAMEngine(keras.Model(inp, out))
    assert eng.cam_layer is None
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(3)]
    report = eng.refit_head("f", imgs)
    assert "logits on" in report.teacher
    assert eng.cam(imgs[0], 2, layer="f").shape == (32, 32)


def test_refit_bad_input(engine):
    with pytest.raises(CAMError, match="at least one image"):
        engine.refit_head("block5c_add", [])
    with pytest.raises(CAMError, match="No spatial layer"):
        engine.refit_head("block99_add", [np.zeros((8, 8, 3), np.uint8)])
