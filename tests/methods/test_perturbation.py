"""Score-CAM and Ablation-CAM against the papers on a flat reference; Faster Score-CAM's channel selection;
split (tail on cached features) and unsplit (full passes) ablation; progress and cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import methods_reference as ref
from conftest import close, photo

from cam_widget import CAMEngine, CancelledError, MethodError
from cam_widget.methods import method as lookup


@pytest.mark.parametrize("layer", ["conv1", "conv3"])
def test_scorecam_matches_the_paper(case, layer):
    engine, prefix, net = case
    img = photo(seed=11)
    x = engine.model_input(img)
    a, _, _ = net.ingredients(x, layer, 0)
    k = a.shape[2]
    for c in (0, 2):
        want = ref.scorecam(net, x, a, c, list(range(k)))
        close(engine.cam(img, c, prefix + layer, method="scorecam", max_channels=None), want)
        # max_channels = all channels is the full method
        close(engine.cam(img, c, prefix + layer, method="scorecam", max_channels=k), want)
    # Faster Score-CAM: the 3 channels of largest spatial variance, the others weigh 0
    top = list(np.argsort(-a.reshape(-1, k).var(axis=0))[:3])
    close(engine.cam(img, 1, prefix + layer, method="scorecam", max_channels=3), ref.scorecam(net, x, a, 1, top))
    # corner-aligned mask upsampling (tf-keras-vis' scipy zoom)
    close(
        engine.cam(img, 1, prefix + layer, method="scorecam", max_channels=3, align_corners=True),
        ref.scorecam(net, x, a, 1, top, align_corners=True),
    )


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3"])
def test_ablationcam_matches_the_paper_split_or_not(case, layer):
    engine, prefix, net = case
    name = prefix + layer
    assert engine.can_split(name) == (layer != "conv2")  # conv2 feeds a skip-connection Add
    img = photo(seed=12)
    x = engine.model_input(img)
    for c in (0, 4):
        a, _, logits = net.ingredients(x, layer, c)
        before = engine.cache_info()
        got = engine.cam(img, c, name, method="ablationcam")
        after = engine.cache_info()
        close(got, ref.ablationcam(net, x, layer, a, c, float(logits[c])))
        if engine.can_split(name):  # ablations run on cached features through the tail only
            assert after["tail_passes"] > before["tail_passes"]
            assert after["forward_passes"] - before["forward_passes"] <= 1
        else:
            assert after["forward_passes"] > before["forward_passes"]


def test_perturbation_maps_are_cached_per_options(net):
    engine = CAMEngine(net.flat)
    img = photo(seed=13)
    first = engine.cam(img, 0, method="scorecam", max_channels=4)
    passes = engine.cache_info()["forward_passes"]
    np.testing.assert_array_equal(engine.cam(img, 0, method="scorecam", max_channels=4), first)
    assert engine.cache_info()["forward_passes"] == passes
    engine.cam(img, 0, method="scorecam", max_channels=5)  # other options: computed again
    assert engine.cache_info()["forward_passes"] > passes


def test_progress_and_cancel_leave_the_engine_usable(net):
    engine = CAMEngine(net.flat)
    img = photo(seed=14)
    seen: list[tuple[int, int]] = []
    engine.cam(img, 0, method="scorecam", max_channels=None, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 10) and seen[-1] == (10, 10) and len(seen) == 5
    cancel = threading.Event()

    def stop_after_first(done: int, total: int) -> None:
        if done >= 3:
            cancel.set()

    for method in ("scorecam", "ablationcam"):
        with pytest.raises(CancelledError, match="Cancelled"):
            engine.cam(img, 1, method=method, batch_size=3, progress=stop_after_first, cancel=cancel)
        cancel.clear()
    # nothing half-done was cached, and the engine still works
    full = engine.cam(img, 1, method="scorecam", batch_size=3)
    assert np.isfinite(full).all() and full.shape == (16, 16)
    assert engine.cam(img, 1, method="gradcam").shape == (16, 16)


def test_full_scorecam_on_a_wide_layer_is_refused_with_its_cost():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    wide = keras.layers.Conv2D(600, 1, activation="relu", name="wide")(inp)
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(wide))
    engine = CAMEngine(keras.Model(inp, out))
    img = photo(size=8)
    with pytest.raises(MethodError, match=r"all 600 channels.*600 forward passes.*max_channels=N.*allow_slow=True"):
        engine.cam(img, 0, method="scorecam", max_channels=None)
    assert engine.cam(img, 0, method="scorecam").shape == (8, 8)  # the default (64 channels) runs
    from cam_widget import method

    assert method("scorecam").estimate(engine, "wide").startswith("64 forward passes")
    assert method("scorecam").estimate(engine, "wide", max_channels=None).startswith("600 forward passes")
    assert method("scorecam").estimate(engine, "wide", smooth="aug").startswith("6 x (64 forward passes")
    assert method("gradcam").estimate(engine, "wide") == "gradient pass"


def test_one_set_of_masked_passes_serves_every_class_of_an_image(net):
    engine = CAMEngine(net.flat)
    img = photo(seed=15)
    engine.features(img)  # the features' own forward pass, before counting
    before = engine.cache_info()["forward_passes"]
    maps = engine.cam([img] * 3, [0, 2, 4], method="scorecam", max_channels=None, batch_size=4)
    assert engine.cache_info()["forward_passes"] - before == 3  # 10 channels in batches of 4, once for 3 classes
    for m, c in zip(maps, (0, 2, 4), strict=True):
        close(m, CAMEngine(net.flat).cam(img, c, method="scorecam", max_channels=None))


def test_ablationcam_max_channels_ablates_the_highest_variance_channels_only(net):
    """At conv2 (a skip connection jumps over it: one full forward pass per ablation) ``max_channels=N`` ablates
    the N channels of largest spatial variance, the others weigh 0; N = all channels is the full method."""
    import tensorflow as tf

    engine = CAMEngine(net.flat)
    img, layer, c = photo(seed=15), "conv2", 1
    x = engine.model_input(img)
    a, _, logits = net.ingredients(x, layer, c)
    k = a.shape[2]
    close(engine.cam(img, c, layer, method="ablationcam", max_channels=k), engine.cam(img, c, layer, method="ablationcam"))
    top = np.sort(np.argsort(-a.reshape(-1, k).var(axis=0), kind="stable")[:3])
    ablated = np.repeat(a[None], 3, 0)
    ablated[np.arange(3), :, :, top] = 0
    y = float(logits[c])
    w = (y - net.logits_after(layer, tf.constant(ablated), x)[:, c]) / abs(y)
    before = engine.cache_info()["forward_passes"]
    close(engine.cam(img, c, layer, method="ablationcam", max_channels=3, batch_size=2), a[..., top] @ w)
    assert engine.cache_info()["forward_passes"] - before == 2  # 3 ablations in batches of 2
    assert "3 forward passes" in lookup("ablationcam").estimate(engine, layer, max_channels=3)
    for bad in (0, -2, 2.5, "all", True):
        with pytest.raises(MethodError, match="max_channels must be a positive int or None"):
            engine.cam(img, c, layer, method="ablationcam", max_channels=bad)
