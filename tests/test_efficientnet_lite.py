"""The Keras EfficientNet-Lite0 builder: names, shapes at several sizes, parameter counts."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cam_widget.errors import ModelError
from cam_widget.models.efficientnet_lite import (
    BLOCKS,
    block_names,
    build_efficientnet_lite0,
    normalize_input_size,
)


@pytest.fixture(scope="module")
def model_224():
    return build_efficientnet_lite0(224)


def test_layer_names_follow_keras_applications(model_224):
    names = [layer.name for layer in model_224.layers]
    for expected in [
        "input_layer", "stem_conv", "stem_bn", "stem_activation",
        "block1a_dwconv", "block1a_bn", "block1a_activation", "block1a_project_conv", "block1a_project_bn",
        "block2a_expand_conv", "block2a_expand_bn", "block2a_expand_activation", "block2a_dwconv",
        "block5c_add", "block6d_add", "block7a_project_bn",
        "top_conv", "top_bn", "top_activation", "avg_pool", "top_dropout", "predictions",
    ]:
        assert expected in names, expected
    assert names[-6:] == ["top_conv", "top_bn", "top_activation", "avg_pool", "top_dropout", "predictions"]
    assert len(set(names)) == len(names)
    assert block_names() == [
        "block1a", "block2a", "block2b", "block3a", "block3b", "block4a", "block4b", "block4c",
        "block5a", "block5b", "block5c", "block6a", "block6b", "block6c", "block6d", "block7a",
    ]
    assert sum(b.repeats for b in BLOCKS) == 16


def test_residual_adds_exactly_where_stride_1_and_channels_match(model_224):
    adds = sorted(layer.name for layer in model_224.layers if isinstance(layer, keras.layers.Add))
    assert adds == [
        "block2b_add", "block3b_add", "block4b_add", "block4c_add", "block5b_add", "block5c_add",
        "block6b_add", "block6c_add", "block6d_add",
    ]
    assert not any("_se_" in layer.name for layer in model_224.layers)  # Lite: no squeeze-excite


def test_head_is_gap_dropout_dense_softmax_and_relu6_everywhere(model_224):
    pred = model_224.get_layer("predictions")
    assert isinstance(pred, keras.layers.Dense) and pred.units == 1000
    assert pred.activation is keras.activations.softmax
    assert isinstance(model_224.get_layer("avg_pool"), keras.layers.GlobalAveragePooling2D)
    assert model_224.get_layer("top_dropout").rate == pytest.approx(0.2)
    relus = [layer for layer in model_224.layers if isinstance(layer, keras.layers.ReLU)]
    assert relus and all(float(layer.max_value) == 6.0 for layer in relus)
    assert len(relus) == 1 + 16 + 15 + 1  # stem, every dwconv, every expand conv, top
    bns = [layer for layer in model_224.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.epsilon == pytest.approx(1e-3) for layer in bns)


def test_parameter_counts_match_the_pytorch_weights(model_224):
    assert model_224.count_params() == 4_694_024  # incl. BN moving statistics
    assert sum(int(np.prod(w.shape)) for w in model_224.trainable_weights) == 4_652_008


def test_resolutions_at_224(model_224):
    shape = lambda name: tuple(model_224.get_layer(name).output.shape[1:])  # noqa: E731
    assert shape("stem_activation") == (112, 112, 32)
    assert shape("block2b_add") == (56, 56, 24)
    assert shape("block3b_add") == (28, 28, 40)
    assert shape("block5c_add") == (14, 14, 112)
    assert shape("block6d_add") == (7, 7, 192)
    assert shape("top_activation") == (7, 7, 1280)
    assert tuple(model_224.output.shape) == (None, 1000)


def test_fully_convolutional_448_and_any_size():
    big = build_efficientnet_lite0(448)
    assert tuple(big.get_layer("top_activation").output.shape[1:]) == (14, 14, 1280)
    assert big.count_params() == 4_694_024
    rect = build_efficientnet_lite0((224, 320))
    assert tuple(rect.get_layer("top_activation").output.shape[1:]) == (7, 10, 1280)

    anysize = build_efficientnet_lite0(None)
    assert tuple(anysize.input.shape) == (None, None, None, 3)
    for h, w in [(64, 96), (100, 130)]:
        out = anysize.predict_on_batch(np.zeros((1, h, w, 3), np.float32))
        assert out.shape == (1, 1000)
        np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-5)
    feats = keras.Model(anysize.input, anysize.get_layer("top_activation").output)
    assert feats.predict_on_batch(np.zeros((1, 100, 130, 3), np.float32)).shape == (1, 4, 5, 1280)


@pytest.mark.parametrize("bad", [0, 16, -224, 224.0, True, (224,), (224, 224, 3), "224"])
def test_bad_input_sizes_are_model_errors(bad):
    with pytest.raises(ModelError):
        normalize_input_size(bad)


def test_input_size_forms():
    assert normalize_input_size(224) == (224, 224)
    assert normalize_input_size((240, 320)) == (240, 320)
    assert normalize_input_size([240, 320]) == (240, 320)
    assert normalize_input_size(None) == (None, None)
