"""Tests for cam_widget.metrics.localize: the paper's box, the pointing game, IoU, peaks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cam_widget.errors import CAMError
from cam_widget.metrics.localize import (
    MapError,
    UninformativeMapError,
    box_area,
    iou,
    localize,
    peak,
    peak_and_box,
    point_box_distance,
    pointing_game,
    threshold_mask,
)


def _rect_map(h, w, *rects, background=0.0):
    """A map at image resolution with (x0, y0, x1, y1, value) rectangles painted on it."""
    m = np.full((h, w), background, np.float32)
    for x0, y0, x1, y1, v in rects:
        m[y0:y1, x0:x1] = v
    return m


# ---------------------------------------------------------------------------------------- localize


def test_single_rectangle_gives_its_half_open_box():
    cam = _rect_map(100, 120, (30, 20, 60, 40, 1.0))
    assert localize(cam, (100, 120)) == (30, 20, 60, 40)


def test_box_in_image_coordinates_after_upsampling_a_low_resolution_map():
    # A 4x5 map whose hot cell (row 1, col 2) covers pixels x 40..59, y 30..59 of a 120x100 image.
    cam = np.zeros((4, 5), np.float32)
    cam[1, 2] = 1.0
    x0, y0, x1, y1 = localize(cam, (120, 100), threshold=0.2)
    # The region is centred on the cell centre (x 50, y 45) and lies around the cell.
    assert (x0 + x1) / 2 == pytest.approx(50, abs=1)
    assert (y0 + y1) / 2 == pytest.approx(45, abs=1)
    assert 30 <= x0 < 45 and 55 < x1 <= 70
    assert 15 <= y0 < 35 and 55 < y1 <= 75


def test_hand_computed_bilinear_box():
    # 10x10 map, one hot cell at (row 3, col 5), image 100x100 (scale 10).  OpenCV maps pixel x to
    # source u = (x + 0.5) / 10 - 0.5, value (1 - |u - 5|)(1 - |v - 3|).  The best row has factor
    # 0.95, so the extreme columns need 1 - |u - 5| >= 0.2 / 0.95: u in [4.2105, 5.7895], i.e.
    # x in [46.6, 62.4] -> columns 47..62.  Rows likewise around 3: y in [26.6, 42.4] -> 27..42.
    cam = np.zeros((10, 10), np.float32)
    cam[3, 5] = 1.0
    assert localize(cam, (100, 100), threshold=0.2) == (47, 27, 63, 43)


def test_two_blobs_the_larger_wins_even_if_weaker():
    strong_small = (5, 5, 15, 15, 1.0)  # 100 px at the maximum
    weak_large = (40, 30, 90, 70, 0.5)  # 2000 px at half the maximum
    cam = _rect_map(100, 100, strong_small, weak_large)
    assert localize(cam, (100, 100), threshold=0.2) == (40, 30, 90, 70)
    # Above 0.5 of the maximum only the strong blob survives.
    assert localize(cam, (100, 100), threshold=0.6) == (5, 5, 15, 15)


def test_threshold_is_inclusive_and_relative_to_the_maximum():
    cam = np.zeros((50, 50), np.float32)
    cam[10:20, 10:20] = 10.0  # the maximum
    cam[10:20, 20:30] = 2.0  # exactly 20 % of the maximum: kept at 0.2 ...
    cam[10:20, 30:40] = 1.9  # ... this is not
    assert localize(cam, (50, 50), threshold=0.2) == (10, 10, 30, 20)
    assert localize(cam, (50, 50), threshold=0.19) == (10, 10, 40, 20)
    assert localize(cam, (50, 50), threshold=0.21) == (10, 10, 20, 20)
    # threshold=1 keeps exactly the maximum; never empty.
    assert localize(cam, (50, 50), threshold=1.0) == (10, 10, 20, 20)
    # Scaling the map does not move the box.
    assert localize(cam * 1e-6, (50, 50), threshold=0.2) == (10, 10, 30, 20)


def test_threshold_zero_keeps_every_non_negative_pixel():
    cam = _rect_map(40, 40, (0, 0, 40, 40, -1.0), (10, 10, 30, 30, 0.0), (15, 15, 20, 20, 3.0))
    assert localize(cam, (40, 40), threshold=0.0) == (10, 10, 30, 30)


def test_negative_values_never_count_as_evidence():
    cam = _rect_map(60, 60, (0, 0, 60, 60, -5.0), (20, 25, 30, 35, 1.0))
    assert localize(cam, (60, 60)) == (20, 25, 30, 35)


def test_diagonal_neighbours_are_connected():
    cam = np.zeros((20, 20), np.float32)
    for i in range(5, 12):
        cam[i, i] = 1.0  # a diagonal line: one 8-connected component of 7 px
    cam[0:2, 15:18] = 1.0  # 6 px elsewhere
    assert localize(cam, (20, 20)) == (5, 5, 12, 12)


def test_matches_an_independent_labelling_on_random_maps():
    label = pytest.importorskip("skimage.measure").label
    rng = np.random.default_rng(0)
    for _ in range(20):
        cam = rng.normal(size=(30, 40)).astype(np.float32)
        mask = threshold_mask(cam, (30, 40), 0.5)
        np.testing.assert_array_equal(mask, cam >= np.float32(0.5 * cam.max()))
        labels = label(mask, connectivity=2)
        sizes = np.bincount(labels.ravel())[1:]
        ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
        assert localize(cam, (30, 40), 0.5) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_image_shape_forms():
    cam = _rect_map(10, 20, (2, 3, 5, 7, 1.0))
    image = np.zeros((10, 20, 3), np.uint8)
    assert localize(cam, (10, 20)) == localize(cam, (10, 20, 3)) == localize(cam, image) == (2, 3, 5, 7)
    assert localize(cam[..., None], [10, 20]) == (2, 3, 5, 7)


def test_box_covers_the_whole_image_at_most():
    cam = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    x0, y0, x1, y1 = localize(cam, (7, 9), threshold=0.0)
    assert (x0, y0, x1, y1) == (0, 0, 9, 7)
    assert all(isinstance(v, int) for v in (x0, y0, x1, y1))


@pytest.mark.parametrize(
    "cam, error",
    [
        (np.zeros((7, 7)), UninformativeMapError),  # constant zero
        (np.full((7, 7), 3.0), UninformativeMapError),  # constant positive
        (-np.arange(49.0).reshape(7, 7) - 1.0, UninformativeMapError),  # all negative
        (np.where(np.eye(7) > 0, np.nan, 1.0), MapError),
        (np.where(np.eye(7) > 0, np.inf, 1.0), MapError),
        (np.ones(7), MapError),
        (np.ones((2, 3, 4)), MapError),
        (np.zeros((0, 3)), MapError),
        (np.array([["a", "b"]]), MapError),
        (np.ones((3, 3), bool), MapError),
    ],
)
def test_degenerate_maps_raise_clear_errors(cam, error):
    with pytest.raises(error) as info:
        localize(cam, (70, 70))
    assert isinstance(info.value, CAMError) and isinstance(info.value, ValueError)
    assert str(info.value)


def test_uninformative_is_a_map_error():
    assert issubclass(UninformativeMapError, MapError) and issubclass(MapError, CAMError)


@pytest.mark.parametrize("shape", [(0, 10), (10,), (10, -1), "abc", None, (10.5, 10), (1, 2, 3, 4)])
def test_bad_image_shape(shape):
    with pytest.raises(CAMError, match="image_shape"):
        localize(np.eye(3), shape)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "x", None, float("nan")])
def test_bad_threshold(threshold):
    with pytest.raises(CAMError, match="threshold"):
        localize(np.eye(3), (9, 9), threshold=threshold)


# -------------------------------------------------------------------------------------------- peak


def test_peak_at_image_resolution():
    cam = np.zeros((40, 50), np.float32)
    cam[12, 33] = 5.0
    assert peak(cam, (40, 50)) == (33, 12)


def test_peak_of_an_upsampled_cell_lies_in_that_cell():
    cam = np.zeros((7, 7), np.float32)
    cam[2, 5] = 1.0
    x, y = peak(cam, (224, 224))  # 32 px per cell
    assert 5 * 32 <= x < 6 * 32 and 2 * 32 <= y < 3 * 32
    assert abs(x - (5 * 32 + 15.5)) <= 0.5 and abs(y - (2 * 32 + 15.5)) <= 0.5


def test_peak_of_all_negative_map_is_the_least_negative_place():
    cam = -np.ones((10, 10), np.float32)
    cam[7, 1] = -0.5
    assert peak(cam, (10, 10)) == (1, 7)


def test_peak_rejects_constant_and_nan_maps():
    with pytest.raises(UninformativeMapError):
        peak(np.ones((3, 3)), (9, 9))
    with pytest.raises(MapError):
        peak(np.full((3, 3), np.nan), (9, 9))


# ---------------------------------------------------------------------------------------- IoU etc.


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching half-open boxes share no pixel
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 10, 10), (2, 2, 4, 4), 4 / 100),  # contained
        ((0, 0, 4, 2), (1, 0, 3, 5), 4 / 14),  # a cross
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # two empty boxes
        ((0.5, 0, 1.5, 1), (0, 0, 1, 1), 0.5 / 1.5),
    ],
)
def test_iou_hand_examples(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)


def test_iou_at_the_half_threshold():
    # A 10x10 truth and a 10x20 prediction that contains it: exactly 0.5 (counts as a hit).
    assert iou((0, 0, 10, 10), (0, 0, 10, 20)) == 0.5


@pytest.mark.parametrize("box", [(0, 0, 10), (10, 0, 0, 10), (0, 10, 10, 0), "abcd", None, (0, 0, math.nan, 1)])
def test_iou_rejects_bad_boxes(box):
    with pytest.raises(CAMError, match="box"):
        iou(box, (0, 0, 1, 1))


def test_box_area():
    assert box_area((2, 3, 12, 8)) == 50


@pytest.mark.parametrize(
    "point, distance",
    [
        ((5, 5), math.hypot(5, 5)),  # off the top-left corner pixel (10, 10)
        ((10, 10), 0.0),  # first pixel of the box
        ((19, 19), 0.0),  # last pixel inside (half-open x1 = 20)
        ((20, 15), 1.0),  # first pixel outside on the right
        ((7, 15), 3.0),  # 3 px left of x0 = 10
        ((23, 24), math.hypot(4, 5)),  # off the bottom-right corner pixel (19, 19)
    ],
)
def test_point_box_distance(point, distance):
    assert point_box_distance(point, (10, 10, 20, 20)) == pytest.approx(distance)


def test_point_box_distance_to_an_empty_box_is_infinite():
    assert point_box_distance((0, 0), (3, 3, 3, 9)) == math.inf


# ---------------------------------------------------------------------------------- pointing game


def _point_map(h, w, x, y):
    cam = np.zeros((h, w), np.float32)
    cam[y, x] = 1.0
    return cam


def test_pointing_game_inside_outside_and_tolerance():
    box = (40, 40, 60, 60)
    assert pointing_game(_point_map(100, 100, 50, 50), (100, 100), box, tolerance=0)
    assert pointing_game(_point_map(100, 100, 59, 40), (100, 100), box, tolerance=0)  # last column in
    assert not pointing_game(_point_map(100, 100, 60, 50), (100, 100), box, tolerance=0)  # x1 is out
    # 15 px to the right of the last column: a hit with the default tolerance, a miss at 16 px.
    assert pointing_game(_point_map(100, 100, 59 + 15, 50), (100, 100), box)
    assert not pointing_game(_point_map(100, 100, 59 + 16, 50), (100, 100), box)
    # Diagonal: (9, 12) off the corner -> 15 px exactly.
    assert pointing_game(_point_map(100, 100, 59 + 9, 59 + 12), (100, 100), box, tolerance=15)
    assert not pointing_game(_point_map(100, 100, 59 + 9, 59 + 12), (100, 100), box, tolerance=14.9)


def test_pointing_game_uses_the_upsampled_peak():
    cam = np.zeros((7, 7), np.float32)
    cam[6, 0] = 1.0  # bottom-left cell of a 224 px image: x 0..31, y 192..223
    assert pointing_game(cam, (224, 224), (0, 192, 32, 224), tolerance=0)
    assert not pointing_game(cam, (224, 224), (192, 0, 224, 32), tolerance=15)


def test_pointing_game_bad_input():
    cam = _point_map(10, 10, 1, 1)
    with pytest.raises(CAMError, match="tolerance"):
        pointing_game(cam, (10, 10), (0, 0, 5, 5), tolerance=-1)
    with pytest.raises(CAMError, match="tolerance"):
        pointing_game(cam, (10, 10), (0, 0, 5, 5), tolerance="far")
    with pytest.raises(CAMError, match="box"):
        pointing_game(cam, (10, 10), (5, 5, 0, 0))
    with pytest.raises(UninformativeMapError):
        pointing_game(np.zeros((3, 3)), (10, 10), (0, 0, 5, 5))


@pytest.mark.parametrize("module", ["cam_widget.metrics.localize", "cam_widget.metrics.evaluate", "cam_widget.metrics.translation", "cam_widget.metrics.scoring", "cam_widget.metrics.faithfulness", "cam_widget.cli"])
def test_module_does_not_import_tensorflow(module):
    import subprocess
    import sys

    code = (
        f"import sys, {module}; "
        "print(any(m in sys.modules for m in ('tensorflow', 'keras', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5, 1.0])
def test_peak_and_box_equals_peak_and_localize(threshold):
    """The batch jobs' one-pass scorer gives exactly what the two public functions give on the same map."""
    from cam_widget.render import upsample

    rng = np.random.default_rng(11)
    for shape in [(7, 7), (300, 451), (427, 640), (33, 20)]:
        for _ in range(4):
            big = upsample(rng.normal(0.3, 1.0, (7, 7)).astype(np.float32), shape)
            assert peak_and_box(big, threshold) == (peak(big, shape), localize(big, shape, threshold))
    # two equal maxima far apart: the first in row-major order, as peak() and localize() pick
    tied = _rect_map(40, 60, (5, 5, 10, 10, 2.0), (40, 30, 50, 35, 2.0), background=0.1)
    assert peak_and_box(tied, 0.5) == (peak(tied, tied.shape), localize(tied, tied.shape, 0.5))


def test_peak_and_box_without_positive_evidence_has_a_peak_but_no_box():
    m = _rect_map(20, 30, (3, 4, 8, 9, -0.5), background=-2.0)
    with pytest.raises(UninformativeMapError):
        localize(m, m.shape)
    assert peak_and_box(m) == (peak(m, m.shape), None)
    with pytest.raises(CAMError, match="threshold"):
        peak_and_box(m, 1.5)
