"""Pure-numpy scoring against independent references: scipy's Spearman, scikit-image's SSIM, a dense
solve of ROAD's imputation, a brute-force bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from cam_widget.metrics import scoring as sc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_correlation_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, (12, 9)).astype(float)  # many ties
    b = a + rng.normal(0, 1.5, a.shape)
    assert sc.rank_correlation(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    assert sc.rank_correlation(a, a) == pytest.approx(1.0)
    assert sc.rank_correlation(a, -a) == pytest.approx(-1.0)
    assert np.isnan(sc.rank_correlation(a, np.ones_like(a)))
    with pytest.raises(sc.MetricInputError):
        sc.rank_correlation(a, b.T)


@pytest.mark.parametrize("seed", [0, 3])
def test_ssim_matches_scikit_image(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((40, 56))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    want = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert sc.ssim(a, b) == pytest.approx(want, abs=1e-6)
    assert sc.ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(sc.MetricInputError, match="at least 11"):
        sc.ssim(a[:5], b[:5])


def test_imputation_reproduces_a_plane_inside_and_is_seeded():
    yy, xx = np.mgrid[0:30, 0:40]
    plane = np.stack([2 * xx + yy, 100 + xx, 200 - 3 * yy], -1).clip(0, 255).astype(np.uint8)
    removed = np.zeros((30, 40), bool)
    removed[5:25, 8:30] = True
    out = sc.noisy_linear_imputation(plane, removed, noise=0.0)
    assert np.abs(out.astype(int) - plane).max() <= 1  # a linear function is its neighbours' weighted mean
    np.testing.assert_array_equal(out[~removed], plane[~removed])
    a = sc.noisy_linear_imputation(plane, removed, noise=0.01, seed=3)
    b = sc.noisy_linear_imputation(plane, removed, noise=0.01, seed=3)
    np.testing.assert_array_equal(a, b)
    spread = (a.astype(float) - out)[removed].std() / 255
    assert 0.005 < spread < 0.02
    assert np.all(sc.noisy_linear_imputation(plane, np.ones((30, 40), bool), noise=0) == 128)
    with pytest.raises(sc.MetricInputError, match="mask"):
        sc.noisy_linear_imputation(plane, removed.T)


def test_bootstrap_interval_of_the_mean():
    rng = np.random.default_rng(0)
    v = rng.normal(3.0, 1.0, 60)
    mean, lo, hi = sc.bootstrap_ci(v, n_resamples=4000, seed=1)
    assert mean == pytest.approx(v.mean())
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert lo == pytest.approx(mean - 1.96 * se, abs=0.4 * se) and hi == pytest.approx(mean + 1.96 * se, abs=0.4 * se)
    assert sc.bootstrap_ci([2.0]) == (2.0, 2.0, 2.0)
    assert all(np.isnan(sc.bootstrap_ci([np.nan])))


def test_steps_order_and_auc():
    np.testing.assert_array_equal(sc.step_counts(10, 4), [0, 2, 5, 8, 10])  # round half to even
    order = sc.removal_order(np.array([[1.0, 3.0], [3.0, 0.0]]))
    np.testing.assert_array_equal(order, [1, 2, 0, 3])  # ties keep raster order
    assert sc.auc([0, 0.5, 1], [1, 1, 0]) == pytest.approx(0.75)
    rgb = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    mixed = sc.mix_in(rgb, np.zeros_like(rgb), order, [0, 2, 4])
    assert mixed[0].tolist() == rgb.tolist() and not mixed[2].any()
    assert mixed[1].reshape(4, 3)[[1, 2]].sum() == 0 and mixed[1].reshape(4, 3)[0].tolist() == rgb[0, 0].tolist()
    p = sc.probabilities(np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.25, 0.75]])
    np.testing.assert_allclose(sc.probabilities(np.array([0.0]), "sigmoid"), [0.5])
    assert sc.unit_range(np.ones((3, 3))).sum() == 0
    assert sc.random_saliency((7, 7), 1).shape == (7, 7)
    np.testing.assert_array_equal(sc.random_saliency((7, 7), 1), sc.random_saliency((7, 7), 1))
