"""Packaged sample photos: present, RGB uint8, identical to the packages' own loaders, never fetched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cam_widget import samples
from cam_widget.errors import ImageError
from cam_widget.samples import SAMPLES, sample_image, sample_image_path, sample_images

NAMES = ["chelsea", "coffee", "astronaut", "rocket", "motorcycle", "grace_hopper", "china", "flower"]


def test_all_eight_photos_in_order_as_rgb_uint8():
    imgs = sample_images()
    assert list(imgs) == NAMES
    for name, img in imgs.items():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        assert img.flags.writeable and img.flags.c_contiguous
        assert min(img.shape[:2]) >= 200 and max(img.shape[:2]) <= 1024
        assert img.std() > 20, f"{name} looks blank"
    assert imgs["chelsea"].shape == (300, 451, 3)
    assert imgs["coffee"].shape == (400, 600, 3)
    assert imgs["grace_hopper"].shape == (600, 512, 3)


def test_channels_are_rgb_not_bgr():
    # The espresso crema and the saucer are red-orange; the china sky is blue.
    coffee = sample_image("coffee").astype(float)
    assert coffee[..., 0].mean() > coffee[..., 2].mean() + 30
    china = sample_image("china").astype(float)
    top = china[:60]
    assert top[..., 2].mean() > top[..., 0].mean()


def test_identical_to_the_packages_own_loaders():
    data = pytest.importorskip("skimage.data")
    np.testing.assert_array_equal(sample_image("chelsea"), data.chelsea())
    np.testing.assert_array_equal(sample_image("coffee"), data.coffee())
    np.testing.assert_array_equal(sample_image("motorcycle"), data.stereo_motorcycle()[0])
    datasets = pytest.importorskip("sklearn.datasets")
    np.testing.assert_array_equal(sample_image("flower"), datasets.load_sample_image("flower.jpg"))


def test_fresh_arrays_every_call():
    a = sample_image("chelsea")
    a[:] = 0
    assert sample_image("chelsea").any()
    assert sample_images()["chelsea"].any()


def test_missing_packages_are_skipped_not_downloaded(monkeypatch: pytest.MonkeyPatch):
    real = samples._package_dirs
    monkeypatch.setattr(samples, "_package_dirs", lambda pkg: [] if pkg == "sklearn" else real(pkg))
    assert list(sample_images()) == NAMES[:6]
    assert sample_image_path("china") is None
    with pytest.raises(ImageError, match="pip install scikit-learn"):
        sample_image("china")


def test_a_missing_file_in_an_installed_package_is_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    real = samples._package_dirs
    # scikit-image "installed" without its bundled data (as if only the downloadable files existed)
    monkeypatch.setattr(samples, "_package_dirs", lambda pkg: [tmp_path] if pkg == "skimage" else real(pkg))
    assert list(sample_images()) == ["grace_hopper", "china", "flower"]


def test_unknown_name_lists_the_choices():
    with pytest.raises(ImageError, match="chelsea"):
        sample_image("lena")


def test_sources_are_documented():
    assert [s.name for s in SAMPLES] == NAMES
    assert all(s.description and s.pip_name for s in SAMPLES)
