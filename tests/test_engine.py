"""CAMEngine against independent computations: brute-force sums, the GAP identity, Grad-CAM on GAP models."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from cam_widget import CAMEngine, overlay  # noqa: E402
from cam_widget.errors import CAMError, ClassIndexError, LayerError, NoCAMHeadError  # noqa: E402

RNG = np.random.default_rng(0)


def photo(h: int = 90, w: int = 120, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def small_gap_cnn(activation: str = "softmax", size: int = 32, classes: int = 6) -> keras.Model:
    keras.utils.set_random_seed(3)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(0.3, name="drop")(x)
    out = keras.layers.Dense(classes, activation=activation, name="predictions")(x)
    model = keras.Model(inp, out, name="small_gap")
    # random but not tiny head weights, so maps have real contrast
    dense = model.get_layer("predictions")
    dense.set_weights([RNG.normal(size=(12, classes)).astype("float32"), RNG.normal(size=classes).astype("float32")])
    return model


@pytest.fixture(scope="module")
def gap_model() -> keras.Model:
    return small_gap_cnn()


@pytest.fixture(scope="module")
def gap_engine(gap_model: keras.Model) -> CAMEngine:
    return CAMEngine(gap_model, class_names=[f"c{i}" for i in range(6)])


def brute_force_cam(features: np.ndarray, weights: np.ndarray, c: int) -> np.ndarray:
    h, w, k = features.shape
    out = np.zeros((h, w), np.float64)
    for y in range(h):
        for x in range(w):
            for ch in range(k):
                out[y, x] += float(weights[ch, c]) * float(features[y, x, ch])
    return out


def test_cam_equals_brute_force_sum_and_gap_identity(gap_model, gap_engine):
    img = photo()
    x = gap_engine.model_input(img)[None]
    # independent features: the user's own functional graph, no flattening involved
    feats = keras.Model(gap_model.input, gap_model.get_layer("conv2").output)(x).numpy()[0]
    w, b = gap_model.get_layer("predictions").get_weights()
    assert gap_engine.cam_layer == "conv2"
    assert gap_engine.probability == "softmax"
    pooled = feats.mean(axis=(0, 1))
    independent_logits = pooled @ w + b
    np.testing.assert_allclose(gap_engine.logits(img), independent_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gap_engine.predict(img), gap_model(x).numpy()[0], atol=1e-6)
    for c in range(6):
        cam = gap_engine.cam(img, c)
        assert cam.shape == (16, 16) and cam.dtype == np.float32
        np.testing.assert_allclose(cam, brute_force_cam(feats, w, c), rtol=1e-4, atol=1e-5)
        # mean(CAM_c) + b_c == logit_c
        assert cam.mean() + b[c] == pytest.approx(float(independent_logits[c]), abs=1e-4)


def test_gradcam_is_cam_over_hw_at_gap_layer(gap_engine):
    img = photo(seed=5)
    for c in (0, 3):
        cam = gap_engine.cam(img, c)
        grad = gap_engine.cam(img, c, method="gradcam")
        np.testing.assert_allclose(grad, cam / cam.size, rtol=1e-4, atol=1e-6)


def test_gradcam_matches_independent_tape_at_inner_layer():
    model = small_gap_cnn(activation="linear")  # raw logits: the user's graph gives them directly
    engine = CAMEngine(model)
    assert engine.probability == "softmax-added"
    img = photo(seed=7)
    x = tf.constant(engine.model_input(img)[None])
    inner = keras.Model(model.input, [model.get_layer("conv1").output, model.output])
    with tf.GradientTape() as tape:
        a, logits = inner(x)
        chosen = logits[:, 2]
    g = tape.gradient(chosen, a).numpy()[0]
    expected = np.einsum("hwk,k->hw", a.numpy()[0], g.mean(axis=(0, 1)))
    got = engine.cam(img, 2, layer="conv1", method="gradcam")
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    p = engine.predict(img)
    assert p.sum() == pytest.approx(1.0, abs=1e-5)


def test_softmax_is_undone_for_separate_activation_layer():
    keras.utils.set_random_seed(1)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(4, 3, name="c")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(3, name="fc")(x)
    out = keras.layers.Softmax()(logits)
    model = keras.Model(inp, out)
    engine = CAMEngine(model)
    img = photo(24, 24)
    raw = keras.Model(inp, logits)(engine.model_input(img)[None]).numpy()[0]
    np.testing.assert_allclose(engine.logits(img), raw, rtol=1e-5, atol=1e-6)
    assert engine.cam_layer == "c"


def test_softmax_inside_a_1x1_conv_classifier_before_flatten_is_undone():
    keras.utils.set_random_seed(4)
    inp = keras.Input((24, 24, 3))
    f = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="f")(inp)
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True)(f)
    logits = keras.layers.Conv2D(5, 1, name="cls")(pooled)
    out = keras.layers.Flatten()(keras.layers.Activation("softmax")(logits))
    model = keras.Model(inp, out)
    # the same weights with the softmax built into the conv, before the Flatten
    built_in = keras.layers.Conv2D(5, 1, activation="softmax", name="cls")
    model2 = keras.Model(inp, keras.layers.Flatten()(built_in(pooled)))
    built_in.set_weights(model.get_layer("cls").get_weights())
    img = photo(24, 24)
    raw = keras.Model(inp, keras.layers.Flatten()(logits))(CAMEngine(model).model_input(img)[None]).numpy()[0]
    for m in (model, model2):
        engine = CAMEngine(m)
        assert engine.probability == "softmax" and engine.cam_layer == "f"
        np.testing.assert_allclose(engine.logits(img), raw, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(engine.predict(img), m(engine.model_input(img)[None]).numpy()[0], atol=1e-6)
        head = engine.heads()["f"]
        assert engine.cam(img, 2).mean() + head.bias[2] == pytest.approx(float(raw[2]), rel=1e-4, abs=1e-4)


def _nested_sequential() -> keras.Model:
    keras.utils.set_random_seed(2)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3))
    return keras.Sequential(
        [keras.Input((64, 64, 3)), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, activation="softmax")]
    )


def _nested_functional() -> keras.Model:
    keras.utils.set_random_seed(2)
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    inp = keras.Input((64, 64, 3))
    x = base(inp, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(5, activation="softmax")(x)
    return keras.Model(inp, out)


@pytest.mark.parametrize(
    ("builder", "expected_layer"),
    [(_nested_sequential, "mobilenetv2_1.00_64/out_relu"), (_nested_functional, "resnet50/conv5_block3_out")],
    ids=["sequential", "functional"],
)
def test_nested_transfer_models(builder, expected_layer):
    model = builder()
    engine = CAMEngine(model)
    assert engine.cam_layer == expected_layer
    names = [layer.name for layer in engine.layers()]
    assert expected_layer in names and len(names) == len(set(names))
    assert all("/" in n for n in names)  # every spatial layer lives in the nested backbone
    img = photo(64, 64, seed=11)
    x = engine.model_input(img)[None]
    np.testing.assert_allclose(engine.predict(img), model(x, training=False).numpy()[0], atol=1e-5)
    head = engine.heads()[expected_layer]
    logits = engine.logits(img)
    for c in range(head.bias.shape[0]):
        cam = engine.cam(img, c)
        assert cam.mean() + head.bias[c] == pytest.approx(float(logits[c]), rel=1e-4, abs=1e-5)
    # Grad-CAM deep inside the nested backbone works too
    inner = names[len(names) // 2]
    g = engine.cam(img, 0, layer=inner, method="gradcam")
    assert g.shape == engine.layer(inner).shape[:2] and np.isfinite(g).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("app", "layer"),
    [
        ("MobileNetV2", "out_relu"),
        ("ResNet50", "conv5_block3_out"),
        ("EfficientNetB0", "top_activation"),
        ("DenseNet121", "relu"),
    ],
)
def test_keras_applications_with_gap_head(app, layer):
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, app)(weights=None, input_shape=(64, 64, 3), classes=10)
    engine = CAMEngine(model)
    assert engine.cam_layer == layer
    img = photo(64, 64, seed=3)
    head = engine.heads()[layer]
    logits = engine.logits(img)
    c = int(np.argmax(logits))
    cam = engine.cam(img, c)
    assert cam.mean() + head.bias[c] == pytest.approx(float(logits[c]), rel=1e-4, abs=1e-5)
    assert head.kind == "dense"


def test_mobilenet_v1_conv1x1_head():
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNet(weights=None, input_shape=(64, 64, 3), classes=7)
    engine = CAMEngine(model)
    head = engine.heads()[engine.cam_layer]
    assert head.kind == "conv1x1" and engine.cam_layer == "conv_pw_13_relu"
    img = photo(64, 64)
    logits = engine.logits(img)
    for c in (0, 6):
        assert engine.cam(img, c).mean() + head.bias[c] == pytest.approx(float(logits[c]), rel=1e-4, abs=1e-5)


def test_vgg16_flatten_fc_top_has_no_exact_cam_but_gradcam_works():
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=5)
    engine = CAMEngine(model)
    assert engine.cam_layer is None
    img = photo(32, 32)
    with pytest.raises(NoCAMHeadError, match="gradcam"):
        engine.cam(img, 1)
    g = engine.cam(img, 1, layer="block5_conv3", method="gradcam")
    assert g.shape == (2, 2)
    default = engine.cam(img, 1, method="gradcam")  # defaults to the last spatial layer
    assert default.shape == engine.layers()[-1].shape[:2]


@pytest.mark.parametrize("relu_classmap", [False, True])
def test_class_map_networks(relu_classmap):
    keras.utils.set_random_seed(4)
    inp = keras.Input((20, 20, 3))
    f = keras.layers.Conv2D(6, 3, activation="relu", name="features")(inp)
    m = keras.layers.Conv2D(3, 1, activation="relu" if relu_classmap else None, name="classmaps")(f)
    out = keras.layers.Activation("softmax")(keras.layers.GlobalAveragePooling2D()(m))
    engine = CAMEngine(keras.Model(inp, out))
    img = photo(20, 20)
    head = engine.heads()[engine.cam_layer]
    if relu_classmap:
        assert (engine.cam_layer, head.kind) == ("classmaps", "classmap")
    else:
        assert (engine.cam_layer, head.kind) == ("features", "conv1x1")
    logits = engine.logits(img)
    for c in range(3):
        assert engine.cam(img, c).mean() + head.bias[c] == pytest.approx(float(logits[c]), rel=1e-5, abs=1e-5)


def test_full_window_average_pool_then_flatten():
    keras.utils.set_random_seed(5)
    inp = keras.Input((16, 16, 3))
    f = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="feat")(inp)
    x = keras.layers.Flatten()(keras.layers.AveragePooling2D(8)(f))
    out = keras.layers.Dense(2, activation="softmax")(x)
    engine = CAMEngine(keras.Model(inp, out))
    assert engine.cam_layer == "feat"
    img = photo(16, 16)
    b = engine.heads()["feat"].bias
    assert engine.cam(img, 1).mean() + b[1] == pytest.approx(float(engine.logits(img)[1]), rel=1e-5, abs=1e-5)


def test_cache_one_forward_pass_per_image_and_layer():
    engine = CAMEngine(small_gap_cnn(), cache_bytes=10 * 2**20)
    img = photo(seed=21)
    engine.cam(img, 0)
    info = engine.cache_info()
    assert (info["misses"], info["forward_passes"]) == (1, 1)
    for c in range(6):
        engine.cam(img, c)
    engine.logits(img)
    info = engine.cache_info()
    assert (info["misses"], info["forward_passes"]) == (1, 1)
    assert info["hits"] == 7 and info["bytes"] > 0
    engine.cam(img, 0, layer="conv1", method="gradcam")  # new layer: one gradient pass
    engine.features(img, "conv1")  # features were captured by that pass
    assert engine.cache_info()["forward_passes"] == 1 and engine.cache_info()["gradient_passes"] == 1


def test_cache_is_bounded_in_bytes():
    engine = CAMEngine(small_gap_cnn(), cache_bytes=40_000)  # conv2 maps are 16*16*12*4 = 12 kB
    for seed in range(20):
        engine.cam(photo(seed=seed), 0)
        assert engine.cache_info()["bytes"] <= 40_000
    assert engine.cache_info()["evictions"] > 0


def test_batch_form_uses_one_forward_pass(gap_model):
    engine = CAMEngine(gap_model)
    imgs = [photo(seed=s) for s in range(4)]
    maps = engine.cam(imgs, [0, 1, 2, 3])
    assert maps.shape == (4, 16, 16) and engine.cache_info()["forward_passes"] == 1
    for i, im in enumerate(imgs):
        np.testing.assert_allclose(engine.cam(im, i), maps[i], rtol=1e-5, atol=1e-6)
    assert engine.cache_info()["forward_passes"] == 1
    assert engine.logits(imgs).shape == (4, 6)
    g = engine.cam(imgs, 1, method="gradcam")
    assert g.shape == (4, 16, 16) and engine.cache_info()["gradient_passes"] == 1


def test_input_size_of_fully_convolutional_model_sets_map_resolution():
    keras.utils.set_random_seed(6)
    inp = keras.Input((None, None, 3))
    f = keras.layers.Conv2D(4, 3, strides=4, padding="same", name="f")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(f))
    model = keras.Model(inp, out)
    img = photo(100, 100)
    assert CAMEngine(model).input_size == (224, 224)
    small, big = CAMEngine(model, input_size=64), CAMEngine(model, input_size=(128, 96))
    assert small.cam(img, 0).shape == (16, 16)
    assert big.cam(img, 0).shape == (32, 24)
    assert big.layer("f").shape == (32, 24, 4)


# ---------------------------------------------------------------- bad input


def test_unknown_layer_suggests_close_names(gap_engine):
    with pytest.raises(LayerError, match=r"Did you mean 'conv2'") as err:
        gap_engine.cam(photo(), 0, layer="conv_2", method="gradcam")
    assert "engine.layers()" in str(err.value)
    with pytest.raises(LayerError) as err:  # nothing close: no suggestion, only the list to pick from
        gap_engine.cam(photo(), 0, layer="zzzzzz", method="gradcam")
    assert "Did you mean" not in str(err.value) and "engine.layers()" in str(err.value)


def test_non_spatial_layer_is_refused(gap_engine):
    with pytest.raises(LayerError, match="not a spatial"):
        gap_engine.cam(photo(), 0, layer="predictions", method="gradcam")


def test_cam_at_layer_without_head_suggests_gradcam(gap_engine):
    with pytest.raises(NoCAMHeadError, match="method='gradcam'"):
        gap_engine.cam(photo(), 0, layer="conv1")


@pytest.mark.parametrize("bad", [6, -1, 100, 2.5, True, "cat", [0, 1]])
def test_class_out_of_range_or_wrong_type(gap_engine, bad):
    with pytest.raises(ClassIndexError):
        gap_engine.cam(photo(), bad)


def test_unknown_method(gap_engine):
    with pytest.raises(CAMError, match=r"Unknown method 'gradcamm'.*available: cam, gradcam.*Did you mean 'gradcam'"):
        gap_engine.cam(photo(), 0, method="gradcamm")


def test_model_without_conv_layers():
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(inp))
    with pytest.raises(CAMError, match="no layer with a spatial"):
        CAMEngine(keras.Model(inp, out))


def test_non_image_model_and_non_model():
    inp = keras.Input((10,))
    with pytest.raises(CAMError, match=r"\(batch, h, w, channels\)"):
        CAMEngine(keras.Model(inp, keras.layers.Dense(2)(inp)))
    with pytest.raises(TypeError, match=r"keras\.Model"):
        CAMEngine("model.keras")


def test_subclassed_model_is_refused_with_a_fix():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(3, 3)
            self.gap = keras.layers.GlobalAveragePooling2D()

        def call(self, x):
            return self.gap(self.conv(x))

    net = Net()
    net(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(CAMError, match="Functional API"):
        CAMEngine(net)


def test_fixed_size_model_refuses_other_input_size(gap_model):
    with pytest.raises(CAMError, match="fixed input size"):
        CAMEngine(gap_model, input_size=64)


def test_wrong_class_names_length(gap_model):
    with pytest.raises(CAMError, match="one name per output"):
        CAMEngine(gap_model, class_names=["a", "b"])


def test_broken_preprocess_is_reported(gap_model):
    engine = CAMEngine(gap_model, preprocess=lambda x: x[:10])
    with pytest.raises(CAMError, match="preprocess"):
        engine.logits(photo())


def test_constant_and_nan_maps_render_without_division_by_zero():
    img = photo()
    flat = overlay(img, np.zeros((4, 4)), alpha=0.5)  # a map of zeros: every pixel gets the colormap's bottom
    assert flat.shape == img.shape and flat.dtype == np.uint8
    with np.errstate(all="raise"):  # a division by zero or an invalid value would raise here
        for cam in (np.full((4, 4), np.nan), np.full((3, 3), 7.0)):
            np.testing.assert_array_equal(overlay(img, cam, alpha=0.5), flat)


def test_safe_mode_loading(tmp_path):
    from cam_widget import load_model

    model = small_gap_cnn()
    path = tmp_path / "ok.keras"
    model.save(path)
    engine = CAMEngine(load_model(path))
    assert engine.cam_layer == "conv2"
    inp = keras.Input((8, 8, 3))
    lam = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp))
    bad = tmp_path / "lambda.keras"
    lam.save(bad)
    with pytest.raises(CAMError, match="safe mode"):
        load_model(bad)
    with pytest.raises(CAMError, match="not found"):
        load_model(tmp_path / "missing.keras")
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(CAMError, match="not a Keras model file"):
        load_model(tmp_path / "x.pkl")


def test_subclassed_backbone_inside_functional_model_is_an_opaque_layer():
    class Backbone(keras.Model):
        def __init__(self):
            super().__init__(name="custom_backbone")
            self.conv = keras.layers.Conv2D(5, 3, padding="same", activation="relu")

        def call(self, x):
            return self.conv(x)

    keras.utils.set_random_seed(8)
    inp = keras.Input((12, 12, 3))
    f = Backbone()(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(f))
    engine = CAMEngine(keras.Model(inp, out))
    assert engine.cam_layer == "custom_backbone"
    img = photo(12, 12)
    b = engine.heads()["custom_backbone"].bias
    assert engine.cam(img, 2).mean() + b[2] == pytest.approx(float(engine.logits(img)[2]), rel=1e-5, abs=1e-5)


def test_read_only_arrays_keep_their_key_and_writable_ones_are_rehashed(gap_engine):
    img = photo(seed=31)
    frozen = img.copy()
    frozen.setflags(write=False)
    key, _ = gap_engine.prepare(frozen)
    assert gap_engine.prepare(frozen)[0] == key == gap_engine.prepare(img)[0]
    img[0, 0] = 255 - img[0, 0]  # a writable array changed in place gets a new key
    assert gap_engine.prepare(img)[0] != key
    base = photo(seed=32)
    view = base.view()
    view.setflags(write=False)  # read-only, but its writable base can still change it
    first = gap_engine.prepare(view)[0]
    base[:] = 255 - base
    assert gap_engine.prepare(view)[0] != first
