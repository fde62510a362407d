"""smooth="eigen" and smooth="aug" against direct computations, for several methods."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import methods_reference as ref  # noqa: E402
from conftest import close, photo  # noqa: E402


def test_eigen_smoothing_is_the_principal_component_of_the_weighted_activations(case):
    engine, prefix, net = case
    img = photo(seed=21)
    a, g, _ = net.ingredients(engine.model_input(img), "conv1", 2)
    alpha = g.mean(axis=(0, 1))
    terms = {"gradcam": a * alpha, "hirescam": a * g, "layercam": a * np.maximum(g, 0)}
    for name, t in terms.items():
        want = ref.first_component(t, t.sum(axis=2))
        close(engine.cam(img, 2, prefix + "conv1", method=name, smooth="eigen"), want)
    # Eigen-CAM is already a principal component: eigen smoothing changes nothing
    np.testing.assert_array_equal(
        engine.cam(img, 2, prefix + "conv1", method="eigencam", smooth="eigen"),
        engine.cam(img, 2, prefix + "conv1", method="eigencam"),
    )


def test_aug_smoothing_averages_flipped_and_intensity_scaled_copies(case):
    engine, prefix, net = case
    img = photo(seed=22)  # at the input size: the engine's resize is the identity
    want = np.zeros((16, 16))
    for flip in (False, True):
        for scale in (0.9, 1.0, 1.1):
            im = np.clip(np.rint(img.astype(np.float64) * scale), 0, 255).astype(np.uint8)
            if flip:
                im = im[:, ::-1]
            a, g, _ = net.ingredients(im.astype(np.float32), "conv3", 1)
            m = ref.gradcam(a, g)
            want += m[:, ::-1] if flip else m
    want /= 6
    got = engine.cam(img, 1, prefix + "conv3", method="gradcam", smooth="aug")
    close(got, want)
    seen = []
    engine.cam(img, 1, prefix + "conv3", method="hirescam", smooth="aug", progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
