"""Refit heads: distilled GAP heads at any layer, exact CAM for them, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
cw = pytest.importorskip("cam_widget")

from cam_widget.errors import CAMError, NoCAMHeadError  # noqa: E402


def _augment(image, rng, shift):
    """A held-out crop and its shifted twin, drawn the way refit_head draws them."""
    from cam_widget.refit import _cut, _draw

    crop = _draw(image.shape, rng, shift)
    return _cut(image, crop), _cut(image, crop, twin=True)


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
    # held-out crops and flips: a clear majority overall, and most crops where the model's own top-1 is stable
    assert 0.7 <= report.top1_agreement <= 1.0 and 0.0 <= report.top5_overlap <= 1.0
    assert report.top1_agreement_stable >= 0.85
    assert 0 < report.n_stable <= report.n_heldout == 8 * len(photos)
    assert report.model_self_agreement == pytest.approx(report.n_stable / report.n_heldout)
    assert report.n_samples == len(photos) * (1 + 32) * 100  # views x windows of >= 4x4 cells on the 7x7 grid
    assert 0.7 <= report.fit_top1_agreement <= 1.0 and "windows" in report.teacher
    assert engine.has_cam("block5c_add")
    cam = engine.cam(photos["coffee"], 967, layer="block5c_add")
    assert cam.shape == (14, 14)
    head = engine.heads()["block5c_add"]
    feats = engine.features(photos["coffee"], "block5c_add")
    expected_logit = feats.mean(axis=(0, 1)) @ head.weights[:, 967] + head.bias[967]
    assert cam.mean() + head.bias[967] == pytest.approx(float(expected_logit), rel=1e-4, abs=1e-4)
    assert "top-1 agreement" in str(report) and "stable" in str(report)


def test_fit_report_stability_numbers_match_a_recomputation(engine, photos):
    """model_self_agreement and top1_agreement_stable, recomputed with the engine's public (cached) path on
    the same held-out pairs: the refit draws them from the documented stream ``default_rng([seed, 1])``."""
    from cam_widget.refit import SHIFT

    imgs = list(photos.values())
    report = engine.refit_head("block4c_add", imgs, crops_per_image=4, heldout_per_image=3, seed=5, register=False)
    rng = np.random.default_rng([5, 1])
    pairs = [_augment(cw.load_image(p), rng, SHIFT) for p in imgs for _ in range(3)]
    a, b = engine.logits([x for x, _ in pairs]), engine.logits([y for _, y in pairs])
    stable = a.argmax(1) == b.argmax(1)
    student = engine.features([x for x, _ in pairs], "block4c_add").mean(axis=(1, 2)) @ report.head.weights
    agree = (student + report.head.bias).argmax(1) == a.argmax(1)
    assert report.n_heldout == len(pairs) and report.n_stable == int(stable.sum())
    assert report.model_self_agreement == pytest.approx(stable.mean())
    assert report.top1_agreement == pytest.approx(agree.mean())
    assert report.top1_agreement_stable == pytest.approx(agree[stable].mean())
    assert report.image_agreement == pytest.approx([agree[3 * i : 3 * i + 3].mean() for i in range(len(imgs))])


def test_heldout_twin_is_the_crop_moved_by_the_shift():
    yy, xx = np.mgrid[0:300, 0:400]
    image = np.dstack([yy // 2, xx // 2, (yy % 2) * 50 + (xx % 2) * 100]).astype(np.uint8)  # every pixel unique
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = _augment(image, rng, 0.05)
        assert a.shape == b.shape and 0.5 * 300 <= a.shape[0] <= 0.95 * 300 + 1
        flipped = int(a[0, 0, 1]) > int(a[0, -1, 1])  # x grows to the right unless the pair was mirrored
        a, b = (a[:, ::-1], b[:, ::-1]) if flipped else (a, b)
        dy, dx = max(1, round(0.05 * a.shape[0])), max(1, round(0.05 * a.shape[1]))
        np.testing.assert_array_equal(a[dy:, dx:], b[:-dy, :-dx])  # the twin starts dy rows, dx columns later
        assert not np.array_equal(a, b)


def test_uncached_features_match_the_cached_path_and_leave_the_cache_alone(engine, photos):
    rng = np.random.default_rng(9)
    crops = [cw.load_image(photos["coffee"])[y : y + 200, x : x + 260].copy() for y, x in rng.integers(0, 100, (3, 2))]
    before = engine.cache_info()
    lg, feats = engine.features_many(crops, ["block5c_add"], cache=False, batch_size=2)
    after = engine.cache_info()
    assert (after["hits"], after["misses"], after["bytes"]) == (before["hits"], before["misses"], before["bytes"])
    assert after["forward_passes"] == before["forward_passes"] + 2  # batches of 2 and 1
    np.testing.assert_allclose(lg, engine.logits(crops), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(feats["block5c_add"], engine.features(crops, "block5c_add"), rtol=1e-4, atol=1e-4)
    with pytest.raises(CAMError, match="at least one image"):
        engine.features_many([], ["block5c_add"], cache=False)


def test_save_and_load_heads_roundtrip(engine, photos, tmp_path):
    if not engine.has_cam("block5c_add"):
        engine.refit_head("block5c_add", photos)
    before = engine.cam(photos["chelsea"], 281, layer="block5c_add")
    path = tmp_path / "new" / "folder" / "heads.npz"  # folders are created
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


def test_window_means_equal_direct_means_and_the_window_cap_keeps_the_whole_grid():
    from cam_widget.refit import _scale_boxes, _window_matrix, _window_means, _windows

    rng = np.random.default_rng(0)
    f = rng.normal(size=(3, 14, 14, 5)).astype(np.float32)
    boxes = _scale_boxes(_windows(7, 7, 0.5, rng), (7, 7), (14, 14))
    assert len(boxes) == 100  # 10 positions x 10 for sizes 4..7 per side
    got = _window_means(f, _window_matrix(boxes, 14, 14)).reshape(3, len(boxes), 5)
    want = np.stack([[f[i, y0:y1, x0:x1].mean(axis=(0, 1)) for y0, x0, y1, x1 in boxes] for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    big = _windows(14, 14, 0.5, rng, limit=50)
    assert len(big) == 50 and (big[-1] == (0, 0, 14, 14)).all() and len({tuple(b) for b in big}) == 50
    assert ((big[:, 2] - big[:, 0] >= 7) & (big[:, 3] - big[:, 1] >= 7)).all()


def test_refit_on_a_huge_photo_crops_a_shrunk_copy():
    from cam_widget.refit import _shrunk

    big = np.zeros((4000, 6000, 3), np.uint8)
    assert _shrunk(big, 896).shape == (597, 896, 3)
    small = np.zeros((300, 200, 3), np.uint8)
    assert _shrunk(small, 896) is small
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    f = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="f")(inp)
    g = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="g")(f)
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(g))
    eng = cw.CAMEngine(keras.Model(inp, out))
    rng = np.random.default_rng(2)
    photo = np.repeat(np.repeat(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), 100, 0), 100, 1)  # 24 MP
    report = eng.refit_head("f", [photo], crops_per_image=4, heldout_per_image=2)
    assert report.n_heldout == 2 and eng.cam(photo, 1, layer="f").shape == (32, 32)
