"""Deletion/insertion, confidence change and ROAD against independent computations on a model whose
answer is analytic (tests/square_model.py), plus bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from square_model import SIZE, indicator, p0_of, square_engine, square_photo

import cam_widget
from cam_widget.errors import ClassIndexError
from cam_widget.metrics.faithfulness import confidence_change, deletion_insertion, road
from cam_widget.metrics.scoring import MetricInputError


@pytest.fixture(scope="module", params=[False, True], ids=["flat", "nested"])
def engine(request):
    return square_engine(nested=request.param)


def _raster_deletion(img, saliency, steps, fill):
    """Independent RISE deletion: remove pixels one step at a time, highest saliency first; equal
    saliency in row-major order (the documented tie rule), written as an explicit loop."""
    n = SIZE * SIZE
    ranked = sorted(range(n), key=lambda i: (-saliency.ravel()[i], i))
    out = []
    for s in range(steps + 1):
        k = round(s * n / steps)
        cur = img.copy().reshape(n, 3)
        for i in ranked[:k]:
            cur[i] = fill.reshape(n, 3)[i]
        out.append(cur.reshape(SIZE, SIZE, 3))
    return np.stack(out)


def test_public_names_are_re_exported():
    assert cam_widget.deletion_insertion is deletion_insertion
    assert cam_widget.confidence_change is confidence_change
    assert cam_widget.road is road
    from cam_widget.metrics.sanity import sanity_check

    assert cam_widget.sanity_check is sanity_check


def test_square_indicator_gives_the_best_deletion_curve_and_its_complement_the_worst(engine):
    img = square_photo()
    steps = 16
    best = deletion_insertion(engine, img, 0, saliency=indicator(), steps=steps)
    worst = deletion_insertion(engine, img, 0, saliency=1.0 - indicator(), steps=steps)
    zeros = np.zeros_like(img)
    for rep, sal in ((best, indicator()), (worst, 1.0 - indicator())):
        want = p0_of(_raster_deletion(img, sal, steps, zeros))
        np.testing.assert_allclose(rep.deletion_curve, want, rtol=1e-4, atol=1e-6)
        fr = np.round(np.arange(steps + 1) * SIZE * SIZE / steps) / (SIZE * SIZE)
        np.testing.assert_allclose(rep.fractions, fr)
        assert rep.deletion_auc == pytest.approx(np.trapezoid(want, fr), rel=1e-4)
    # The square's area is 144 of 1024 px: the indicator removes all of it within the first 3 steps.
    area = indicator().sum()
    m_k = lambda k: 200 / 255 * max(0.0, area - k) / area  # noqa: E731
    for k, p in zip(np.round(np.arange(steps + 1) * 64), best.deletion_curve, strict=True):
        assert p == pytest.approx(1 / (1 + np.exp(-(8 * m_k(k) - 4))), rel=1e-4)
    # Pointwise: nothing can do better than the indicator or worse than its complement.
    rnd = best.random
    assert np.all(np.asarray(best.deletion_curve) <= np.asarray(rnd.deletion_curve) + 1e-6)
    assert np.all(np.asarray(worst.deletion_curve) >= np.asarray(rnd.deletion_curve) - 1e-6)
    assert best.deletion_auc < rnd.deletion_auc < worst.deletion_auc
    assert best.gain_over_random["deletion"] > 0 > worst.gain_over_random["deletion"]
    assert 0.0 <= best.deletion_auc <= 1.0 and 0.0 <= worst.insertion_auc <= 1.0


def test_insertion_starts_from_the_rise_blur_and_inserts_the_square_first(engine):
    img = square_photo(seed=3)
    steps = 8
    rep = deletion_insertion(engine, img, 0, saliency=indicator(), steps=steps)
    blurred = cv2.GaussianBlur(img, (11, 11), 5)  # RISE: gkern(klen=11, nsig=5)
    # Insertion = deletion of the blurred image "towards" the original.
    want = p0_of(_raster_deletion(blurred, indicator(), steps, img))
    np.testing.assert_allclose(rep.insertion_curve, want, rtol=1e-4, atol=1e-6)
    assert rep.insertion_curve[0] == pytest.approx(p0_of(blurred)[0], rel=1e-4)
    assert rep.insertion_curve[-1] == pytest.approx(p0_of(img)[0], rel=1e-4)
    # All 144 square pixels are back by step 2 (256 px): from there on the score is the original's.
    np.testing.assert_allclose(rep.insertion_curve[2:], p0_of(img)[0], rtol=1e-4)
    assert rep.insertion_auc > rep.random.insertion_auc
    # The logit variant: K * m - K / 2 exactly.
    logits = np.log(want) - np.log1p(-want)
    np.testing.assert_allclose(rep.insertion_logits, logits, rtol=1e-3, atol=1e-4)


def test_constant_saliency_removes_in_raster_order_and_is_defined(engine):
    img = square_photo(seed=5)
    rep = deletion_insertion(engine, img, 0, saliency=np.zeros((4, 4)), steps=4, random_baseline=False)
    want = p0_of(_raster_deletion(img, np.zeros((SIZE, SIZE)), 4, np.zeros_like(img)))
    np.testing.assert_allclose(rep.deletion_curve, want, rtol=1e-4, atol=1e-6)
    assert rep.random is None and rep.gain_over_random == {}


def test_all_steps_run_in_batched_passes(engine):
    before = engine.cache_info()["forward_passes"]
    deletion_insertion(engine, square_photo(), 0, saliency=indicator(), steps=32, batch_size=66, random_baseline=False)
    assert engine.cache_info()["forward_passes"] - before == 1  # 66 images, one pass
    before = engine.cache_info()["forward_passes"]
    deletion_insertion(engine, square_photo(), 0, saliency=indicator(), steps=32)  # 132 images in 64s
    assert engine.cache_info()["forward_passes"] - before == 3


def test_confidence_change_analytic(engine):
    img = square_photo(seed=2)
    keep = confidence_change(engine, img, 0, saliency=indicator())
    y = p0_of(img)[0]
    assert keep.score == pytest.approx(y, rel=1e-5)
    assert keep.masked_score == pytest.approx(y, rel=1e-5)  # the square survives E = L * I untouched
    assert keep.drop == pytest.approx(0.0, abs=1e-5) and not keep.increase
    gone = confidence_change(engine, img, 0, saliency=1.0 - indicator())
    o = 1 / (1 + np.exp(4.0))  # m = 0
    assert gone.masked_score == pytest.approx(o, rel=1e-4)
    assert gone.drop == pytest.approx((y - o) / y, rel=1e-4)
    # A half-bright map halves the square's brightness: m = 200/255/2 exactly (minmax keeps 1 at max).
    half = indicator() * 0.5
    half[0, 0] = 1.0  # the maximum sits outside the square, so the square is weighted 0.5
    mid = confidence_change(engine, img, 0, saliency=half, random_baseline=False)
    expected = np.clip(np.rint(img * 0.5), 0, 255)
    assert mid.masked_score == pytest.approx(p0_of(expected)[0], rel=1e-4)
    assert mid.random is None


def _dense_imputation(img, removed):
    """ROAD's linear system written densely from the paper: x_i = sum_j w_j x_j / sum_j w_j over the
    in-image 8-neighbourhood (w = 1/6 direct, 1/12 diagonal)."""
    h, w = removed.shape
    unknown = [(y, x) for y in range(h) for x in range(w) if removed[y, x]]
    index = {p: i for i, p in enumerate(unknown)}
    a = np.zeros((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), 3))
    f = img.astype(np.float64) / 255
    for i, (y, x) in enumerate(unknown):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dy, dx) == (0, 0) or not (0 <= y + dy < h and 0 <= x + dx < w):
                    continue
                wt = 1 / 12 if dy and dx else 1 / 6
                a[i, i] += wt
                j = index.get((y + dy, x + dx))
                if j is None:
                    b[i] += wt * f[y + dy, x + dx]
                else:
                    a[i, j] -= wt
    out = f.copy()
    sol = np.linalg.solve(a, b)
    for i, (y, x) in enumerate(unknown):
        out[y, x] = sol[i]
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def test_road_against_a_dense_solve_of_the_imputation(engine):
    img = square_photo(seed=4)
    pcts = [10, 50, 90]
    rep = road(engine, img, 0, saliency=indicator(), percentiles=pcts, noise=0.0)
    order = sorted(range(SIZE * SIZE), key=lambda i: (-indicator().ravel()[i], i))
    for curve, ranked in ((rep.morf, order), (rep.lerf, order[::-1])):
        want = []
        for p in pcts:
            removed = np.zeros(SIZE * SIZE, bool)
            removed[ranked[: round(SIZE * SIZE * p / 100)]] = True
            want.append(p0_of(_dense_imputation(img, removed.reshape(SIZE, SIZE)))[0])
        np.testing.assert_allclose(curve, want, rtol=1e-4, atol=1e-6)
    assert rep.score == pytest.approx(p0_of(img)[0], rel=1e-5)
    assert rep.morf_mean == pytest.approx(np.mean(rep.morf))
    assert rep.combined == pytest.approx(np.mean(np.subtract(rep.lerf, rep.morf)) / 2)
    # LeRF keeps the square until 86 % of the pixels are gone: the score stays the original's.
    assert rep.lerf[0] == pytest.approx(rep.score, rel=1e-5)
    assert rep.combined > rep.random.combined and rep.gain_over_random["morf"] > 0


def test_road_on_a_uniform_image_reveals_nothing():
    """ROAD's point: imputation of a flat image is flat, so no order can move the score (noise aside)."""
    eng = square_engine()
    img = np.full((SIZE, SIZE, 3), 200, np.uint8)
    rep = road(eng, img, 0, saliency=indicator(), noise=0.0, random_baseline=False)
    np.testing.assert_allclose(rep.morf, rep.score, rtol=1e-5)
    np.testing.assert_allclose(rep.lerf, rep.score, rtol=1e-5)


@pytest.mark.parametrize("steps", [1, 0, -3, 2.5, True, "8"])
def test_bad_steps(engine, steps):
    with pytest.raises(MetricInputError, match="steps must be an integer >= 2"):
        deletion_insertion(engine, square_photo(), 0, saliency=indicator(), steps=steps)


@pytest.mark.parametrize(
    "saliency, match",
    [
        (np.zeros((7, 7, 3)), "2-D array"),
        (np.zeros((8, 16)), "does not cover"),
        (np.zeros((64, 64)), "does not cover"),
        (np.zeros((0, 4)), "non-empty"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.array([["a"]]), "real numbers"),
    ],
)
def test_bad_saliency(engine, saliency, match):
    for fn in (deletion_insertion, confidence_change, road):
        with pytest.raises(MetricInputError, match=match):
            fn(engine, square_photo(), 0, saliency=saliency)


@pytest.mark.parametrize("cls", [-1, 2, 1.0, "square", None])
def test_class_out_of_range(engine, cls):
    for fn in (deletion_insertion, confidence_change, road):
        with pytest.raises(ClassIndexError):
            fn(engine, square_photo(), cls, saliency=indicator())


def test_bad_baselines_and_percentiles(engine):
    with pytest.raises(MetricInputError, match="Unknown baseline"):
        deletion_insertion(engine, square_photo(), 0, saliency=indicator(), deletion_baseline="black")
    with pytest.raises(MetricInputError, match=r"0\.\.255"):
        deletion_insertion(engine, square_photo(), 0, saliency=indicator(), insertion_baseline=300)
    with pytest.raises(MetricInputError, match="percentiles"):
        road(engine, square_photo(), 0, saliency=indicator(), percentiles=[0, 50])
    with pytest.raises(MetricInputError, match="percentiles"):
        road(engine, square_photo(), 0, saliency=indicator(), percentiles=[])
    with pytest.raises(MetricInputError, match="noise"):
        road(engine, square_photo(), 0, saliency=indicator(), noise=-1)


def test_map_from_the_engine_when_no_saliency_is_given(engine):
    """Without a saliency the engine's map is used (here Grad-CAM at the 1 x 1 conv output, which is
    constant: a defined result in raster order)."""
    rep = deletion_insertion(engine, square_photo(), 0, method="gradcam", steps=4, random_baseline=False)
    assert rep.settings["method"] == "gradcam" and len(rep.deletion_curve) == 5
    assert rep.to_dict()["deletion_auc"] == rep.deletion_auc
