"""Rendering: colours, normalisation, BGR/RGB at the border, encoding."""

import cv2
import matplotlib
import numpy as np
import pytest

from cam_widget import load_image, overlay, render, shared_scale


def red_square_on_green(size: int = 64) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    img[...] = (0, 200, 0)
    img[16:48, 16:48] = (220, 0, 0)
    return img


def test_red_stays_red_through_encode_and_load():
    img = red_square_on_green()
    for fmt in ("png", "jpeg"):
        back = load_image(render.encode(img, fmt, quality=100))
        r, g, b = back[32, 32].astype(int)
        assert r > 200 and g < 30 and b < 30, (fmt, back[32, 32])
        r, g, b = back[2, 2].astype(int)
        assert g > 180 and r < 30 and b < 30


def test_encoded_png_is_bgr_on_disk_for_opencv():
    img = red_square_on_green()
    bgr = cv2.imdecode(np.frombuffer(render.encode(img, "png"), np.uint8), cv2.IMREAD_COLOR)
    assert tuple(bgr[32, 32]) == (0, 0, 220)  # OpenCV's own order: the file holds true red


def test_lut_matches_matplotlib_and_rejects_unknown_names():
    lut = render.colormap_lut("viridis")
    ref = np.round(matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(lut, ref)
    with pytest.raises(ValueError, match="Unknown colormap"):
        render.colormap_lut("not-a-map")
    assert render.colormap_names()[: len(render.CURATED_COLORMAPS)] == list(render.CURATED_COLORMAPS)


def test_overlay_alpha_extremes_and_hot_spot_colour():
    img = red_square_on_green()
    cam = np.zeros((4, 4), np.float32)
    cam[0, 0] = 1.0
    np.testing.assert_array_equal(overlay(img, cam, alpha=0.0), img)
    full = overlay(img, cam, alpha=1.0, colormap="jet", interpolation="nearest")
    jet = render.colormap_lut("jet")
    np.testing.assert_array_equal(full[0, 0], jet[255])
    np.testing.assert_array_equal(full[-1, -1], jet[0])
    with pytest.raises(ValueError, match="opacity"):
        overlay(img, cam, alpha=1.5)


def test_normalize_modes():
    cam = np.array([[-2.0, 0.0], [1.0, 3.0]], np.float32)
    np.testing.assert_allclose(render.normalize_cam(cam), [[0, 0], [1 / 3, 1]], atol=1e-6)
    np.testing.assert_allclose(render.normalize_cam(cam, relu=False), [[0, 0.4], [0.6, 1]], atol=1e-6)
    np.testing.assert_allclose(render.normalize_cam(cam, normalize=(0.0, 6.0)), [[0, 0], [1 / 6, 0.5]], atol=1e-6)
    np.testing.assert_allclose(render.normalize_cam(cam * 0.1, normalize="none"), [[0, 0], [0.1, 0.3]], atol=1e-6)
    with pytest.raises(ValueError, match="normalize"):
        render.normalize_cam(cam, normalize="zscore")


def test_constant_nan_and_inf_maps_do_not_divide_by_zero():
    for cam in (np.full((3, 3), 5.0), np.zeros((3, 3)), np.full((3, 3), np.nan), np.array([[np.inf, 1.0]])):
        out = render.normalize_cam(cam)
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert render.normalize_cam(np.full((2, 2), 5.0)).max() == 0.0


def test_shared_scale_makes_maps_comparable():
    a, b = np.array([[0.0, 1.0]]), np.array([[0.0, 4.0]])
    lo, hi = shared_scale([a, b])
    assert (lo, hi) == (0.0, 4.0)
    assert render.normalize_cam(a, normalize=(lo, hi)).max() == pytest.approx(0.25)
    assert shared_scale([np.full((2, 2), np.nan)]) == (0.0, 1.0)


def test_bad_maps_and_images_are_refused():
    img = red_square_on_green()
    with pytest.raises(ValueError, match="2-D"):
        overlay(img, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="RGB uint8"):
        overlay(img.astype(np.float32), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="interpolation"):
        render.upsample(np.zeros((2, 2)), (4, 4), interpolation="lanczos9")


def test_upsample_to_size_and_fit_within():
    up = render.upsample(np.arange(4, dtype=np.float32).reshape(2, 2), (10, 20))
    assert up.shape == (10, 20)
    assert render.fit_within((1000, 500), 768) == (768, 384)
    assert render.fit_within((100, 50), 768) == (100, 50)


def test_colorbar_runs_low_to_high():
    bar = render.colorbar("jet", width=256, height=4)
    lut = render.colormap_lut("jet")
    assert bar.shape == (4, 256, 3)
    np.testing.assert_array_equal(bar[0, 0], lut[0])
    np.testing.assert_array_equal(bar[0, -1], lut[255])


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_to_index_equals_the_straightforward_numpy_quantisation(interpolation):
    rng = np.random.default_rng(3)
    for _ in range(40):
        cam = rng.normal(size=(int(rng.integers(1, 30)), int(rng.integers(1, 30)))).astype(np.float32)
        size = (int(rng.integers(1, 300)), int(rng.integers(1, 300)))
        for kw in ({}, {"relu": False}, {"normalize": (0.0, 2.0)}, {"normalize": "none"}):
            unit = render.normalize_cam(cam, **kw)
            big = render.upsample(unit, size, interpolation=interpolation)
            want = np.clip(np.rint(big * 255.0), 0, 255).astype(np.uint8)
            got = render.to_index(cam, size, interpolation=interpolation, **kw)
            assert got.dtype == np.uint8 and got.shape == size
            np.testing.assert_array_equal(got, want)
    # exact halves round to even, like np.rint
    half = np.array([[0.5 / 255, 1.5 / 255], [2.5 / 255, 1.0]], np.float32)
    np.testing.assert_array_equal(
        render.to_index(half, (2, 2), normalize="none"), np.rint(half * 255).astype(np.uint8)
    )


def test_blend_equals_the_lookup_table_by_numpy():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    idx = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    for cmap in (*render.CURATED_COLORMAPS, "gray", "viridis_r"):
        lut = render.colormap_lut(cmap)
        np.testing.assert_array_equal(render.blend(img, idx, cmap, 1.0), lut[idx])
        for alpha in (0.0, 0.37, 0.5):
            want = cv2.addWeighted(lut[idx], alpha, img, 1.0 - alpha, 0.0)
            np.testing.assert_array_equal(render.blend(img, idx, cmap, alpha), want)
    # a non-contiguous index map (a view) is fine too
    big = rng.integers(0, 256, (37, 106), dtype=np.uint8)
    np.testing.assert_array_equal(render.blend(img, big[:, ::2], "jet", 1.0), render.colormap_lut("jet")[big[:, ::2]])


def test_encode_gives_the_bytes_of_the_plain_bgr_swap():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (41, 67, 3), dtype=np.uint8)
    for fmt, ext, params in (
        ("jpeg", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]),
        ("png", ".png", [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]),
    ):
        want = cv2.imencode(ext, np.ascontiguousarray(img[..., ::-1]), params)[1].tobytes()
        assert render.encode(img, fmt, 90) == want
        assert render.encode(img[:, ::-1], fmt, 90) == cv2.imencode(  # a non-contiguous input too
            ext, np.ascontiguousarray(img[:, ::-1, ::-1]), params
        )[1].tobytes()


@pytest.mark.parametrize("normalize", ["minmax", "none", (1.0, 3.0)])
@pytest.mark.parametrize("relu", [True, False])
def test_value_range_is_what_normalize_cam_maps_to_0_and_1(normalize, relu):
    cam = np.array([[np.nan, 2.0, -1.0], [3.0, 4.0, 0.5]], np.float32)
    lo, hi = render.value_range(cam, normalize, relu)
    clean = np.where(np.isfinite(cam), cam, 0.0)
    clean = np.maximum(clean, 0.0) if relu else clean
    np.testing.assert_allclose(render.normalize_cam(cam, normalize, relu), np.clip((clean - lo) / (hi - lo), 0, 1))
    if normalize == "minmax":  # the NaN counts as 0, as in the drawn map
        assert (lo, hi) == ((0.0, 4.0) if relu else (-1.0, 4.0))
