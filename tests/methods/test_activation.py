"""Eigen-CAM against a power-iteration principal component, and its sign rule."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import methods_reference as ref
from conftest import photo


@pytest.mark.parametrize("layer", ["conv1", "conv3"])
def test_eigencam_is_the_first_principal_component_with_a_fixed_sign(case, layer):
    engine, prefix, net = case
    for seed in (1, 2, 3):
        img = photo(seed=seed)
        a, _, _ = net.ingredients(engine.model_input(img), layer, 0)
        got = engine.cam(img, 0, prefix + layer, method="eigencam")
        want = ref.eigencam(a)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
        # sign rule: positive correlation with the channel mean; the map is the same for every class
        assert np.corrcoef(got.ravel(), a.mean(axis=2).ravel())[0, 1] > 0
        np.testing.assert_array_equal(got, engine.cam(img, 4, prefix + layer, method="eigencam"))
        # negated activations (not a ReLU output, but the rule must hold for any sign) flip the map's sign
        from cam_widget.methods import pca_projection

        neg = pca_projection(-a[None], -a.mean(axis=2)[None])[0]
        np.testing.assert_allclose(neg, -got, rtol=1e-3, atol=1e-3 * np.abs(want).max())
