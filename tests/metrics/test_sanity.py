"""The model parameter randomisation test (Adebayo et al. 2018) on real learned weights (the embedded
EfficientNet-Lite0), the weight-independent control (an edge map), the user's model untouched, bad input."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from square_model import square_engine, square_photo

import cam_widget
from cam_widget.engine import CAMEngine
from cam_widget.errors import ClassIndexError
from cam_widget.metrics.sanity import INSENSITIVE, SENSITIVE, edge_map, sanity_check, weight_blocks
from cam_widget.metrics.scoring import MetricInputError


@pytest.fixture(scope="module")
def real():
    engine = cam_widget.default_engine()
    photo = cam_widget.sample_images()["chelsea"]
    return engine, photo, engine.top_k(photo, 1)[0][0]


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cam", "gradcam"])
def test_cam_and_gradcam_change_when_the_learned_weights_are_randomised(real, method):
    engine, photo, cls = real
    before = _weights(engine.model)
    map_before = engine.cam(photo, cls, method=method)
    rep = sanity_check(engine, photo, cls, method=method, mode="cascade", blocks=3)
    assert [s.block for s in rep.stages] == ["predictions", "top", "block7a"]
    assert rep.verdict == SENSITIVE and not rep.insensitive
    # Cascading: the deeper the randomisation, the less of the map survives.
    assert rep.stages[-1].spearman_abs < 0.5 and rep.stages[-1].ssim < rep.stages[0].ssim
    # The user's model and engine are untouched: every weight, and the map itself.
    after = _weights(engine.model)
    assert len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    engine.clear_cache()
    np.testing.assert_array_equal(engine.cam(photo, cls, method=method), map_before)


@pytest.mark.slow
def test_independent_mode_restores_each_block_before_the_next(real):
    engine, photo, cls = real
    rep = sanity_check(engine, photo, cls, method="cam", mode="independent", blocks=3)
    assert rep.mode == "independent" and len(rep.stages) == 3
    # Randomising only the head changes the CAM weights but keeps the features: partly similar.
    assert rep.stages[0].block == "predictions" and rep.stages[0].spearman_abs < 0.99
    assert rep.verdict == SENSITIVE


@pytest.mark.slow
def test_a_weight_independent_method_is_flagged(real):
    engine, photo, cls = real
    rep = sanity_check(engine, photo, cls, saliency_fn=edge_map, blocks=2)
    assert rep.insensitive and rep.verdict == INSENSITIVE
    assert all(s.spearman == pytest.approx(1.0) and s.ssim == pytest.approx(1.0) for s in rep.stages)
    assert "do not trust" in rep.summary()


def test_blocks_group_layers_by_name_prefix_output_first():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv2d")(inp)
    x = keras.layers.BatchNormalization(name="batch_normalization")(x)
    x = keras.layers.Conv2D(4, 3, name="conv2d_1")(x)
    inner = keras.Model(inp, x, name="backbone")
    outer_in = keras.Input((16, 16, 3))
    y = keras.layers.GlobalAveragePooling2D()(inner(outer_in))
    model = keras.Model(outer_in, keras.layers.Dense(3, name="dense")(y))
    assert weight_blocks(model) == [
        ("dense", ["dense"]), ("conv2d#2", ["conv2d_1"]), ("batch", ["batch_normalization"]), ("conv2d", ["conv2d"])
    ]  # fmt: skip


def test_nested_model_is_cloned_and_left_untouched():
    """The square model with its conv inside a nested backbone: the test runs on a clone; the user's
    nested model keeps every weight and its engine keeps its cache."""
    engine = square_engine(nested=True)
    before = _weights(engine.model)
    img = square_photo()
    passes = engine.cache_info()["forward_passes"]
    rep = sanity_check(engine, img, 0, method="gradcam", blocks=None)
    assert [s.block for s in rep.stages] == ["predictions", "square"]
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(engine.model), strict=True))
    assert engine.cache_info()["forward_passes"] - passes <= 1  # only the original map, on the user's engine
    # The map of a 1x1 layer is constant: nothing to check, whatever the weights.
    assert rep.insensitive


def test_with_model_keeps_preprocess_classes_and_size():
    engine = square_engine()
    twin = engine.with_model(keras.models.clone_model(engine.model))
    assert isinstance(twin, CAMEngine) and twin is not engine
    assert twin.input_size == engine.input_size and twin.class_names == engine.class_names


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"mode": "both"}, MetricInputError, "mode must be"),
        ({"threshold": 1.5}, MetricInputError, "threshold"),
        ({"blocks": 0}, MetricInputError, "blocks must be >= 1"),
        ({"blocks": [["nope"]]}, MetricInputError, "No weighted layer named 'nope'"),
        ({"blocks": ["predictions"]}, MetricInputError, "non-empty list of layer names"),
    ],
)
def test_bad_input(kwargs, error, match):
    engine = square_engine()
    with pytest.raises(error, match=match):
        sanity_check(engine, square_photo(), 0, method="gradcam", **kwargs)


@pytest.mark.parametrize("cls", [-1, 2, "0"])
def test_class_out_of_range(cls):
    with pytest.raises(ClassIndexError):
        sanity_check(square_engine(), square_photo(), cls, method="gradcam")


def test_a_reused_clone_gives_the_same_answer_and_is_handed_back_trained():
    from cam_widget.metrics.sanity import clone_engine

    inp = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="features")(x)
    out = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    engine = CAMEngine(keras.Model(inp, out), preprocess=None)
    clone = clone_engine(engine)
    img = np.random.default_rng(0).integers(0, 256, (24, 24, 3)).astype(np.uint8)
    fresh = sanity_check(engine, img, 0, method="cam", blocks=None, seed=3)
    again = sanity_check(engine, img, 0, method="cam", blocks=None, seed=3, clone=clone)
    twice = sanity_check(engine, img, 0, method="cam", blocks=None, seed=3, clone=clone)
    for rep in (again, twice):
        np.testing.assert_allclose([s.spearman for s in rep.stages], [s.spearman for s in fresh.stages], equal_nan=True)
    assert [s.block for s in fresh.stages] == ["head", "features", "conv"]
    assert all(np.array_equal(a, b) for a, b in zip(_weights(engine.model), _weights(clone.model), strict=True))
