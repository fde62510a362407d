"""Tests for cam_widget.metrics.evaluate and cam_widget.metrics.translation, with a fake engine whose maps are known."""

from __future__ import annotations

import importlib
import json
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from cam_widget.errors import CAMError
from cam_widget.metrics.evaluate import Case, CaseFileError, as_case, evaluate, load_cases, resolve_class
from cam_widget.metrics.localize import iou, point_box_distance
from cam_widget.metrics.translation import paste_positions, translation_cases

ev = importlib.import_module("cam_widget.metrics.evaluate")  # the package re-exports the function evaluate()


class ChannelEngine:
    """A fake engine: class c's map is channel c of the image itself (at image resolution, so
    no upsampling blurs it); probabilities are a softmax of the channel means."""

    class_names = ("red", "green", "blue")
    input_size = (224, 224)

    def __init__(self):
        self.calls = []

    def predict(self, image):
        means = np.asarray(image, np.float64).reshape(-1, 3).mean(0) / 255.0
        z = np.exp(10 * means)
        return (z / z.sum()).astype(np.float32)

    def cam(self, image, class_index, layer=None, method="cam"):
        self.calls.append((class_index, layer, method))
        return np.asarray(image)[..., class_index].astype(np.float32)


def _image(h=100, w=120, rects=()):
    img = np.zeros((h, w, 3), np.uint8)
    for x0, y0, x1, y1, rgb in rects:
        img[y0:y1, x0:x1] = rgb
    return img


RED = (255, 0, 0)


# --------------------------------------------------------------------------------------- evaluate


def test_exact_hit():
    img = _image(rects=[(30, 20, 60, 40, RED)])
    res = evaluate(ChannelEngine(), [(img, 0, (30, 20, 60, 40))])
    (r,) = res.records
    assert r.predicted_box == [30, 20, 60, 40]
    assert r.iou == 1.0 and r.localized and r.pointing
    assert r.peak == [30, 20] and r.peak_distance == 0.0
    assert r.class_name == "red" and r.top1 == 0 and r.correct and r.class_rank == 0
    assert r.map_shape == [100, 120] and r.note == ""
    assert res.summary["localization_accuracy"] == 1.0 and res.summary["pointing_accuracy"] == 1.0


def test_iou_half_is_a_hit_just_below_is_not():
    img = _image(rects=[(30, 20, 60, 40, RED)])  # predicted 30x20 = 600 px
    half = (30, 20, 90, 40)  # truth 1200 px containing it: IoU exactly 0.5
    below = (30, 20, 91, 40)  # 1220 px: IoU 600/1220
    res = evaluate(ChannelEngine(), [(img, 0, half, "half"), (img, 0, below, "below")])
    a, b = res.records
    assert a.iou == 0.5 and a.localized
    assert b.iou == pytest.approx(600 / 1220) and not b.localized
    assert res.localization_accuracy == 0.5
    assert res.mean_iou == pytest.approx((0.5 + 600 / 1220) / 2)


def test_pointing_tolerance_in_pixels():
    img = _image(rects=[(10, 10, 20, 20, RED)])  # peak at (10, 10): first maximum in row-major order
    near = (26, 10, 40, 40)  # 16 px right of the peak
    res15 = evaluate(ChannelEngine(), [(img, 0, near)], tolerance=15)
    res16 = evaluate(ChannelEngine(), [(img, 0, near)], tolerance=16)
    assert res15.records[0].peak_distance == 16.0
    assert not res15.records[0].pointing and res16.records[0].pointing
    assert res15.records[0].iou == 0.0 and not res15.records[0].localized
    for bad in (float("nan"), -1, "far"):  # refused up front, not scored as a miss on every case
        with pytest.raises(CAMError, match="tolerance"):
            evaluate(ChannelEngine(), [(img, 0, near)], tolerance=bad)
    with pytest.raises(CAMError, match="threshold"):
        evaluate(ChannelEngine(), [(img, 0, near)], threshold=1.5)


def test_threshold_is_passed_to_localize():
    img = _image(rects=[(0, 0, 60, 100, (100, 0, 0)), (60, 0, 120, 100, RED)])
    lo = evaluate(ChannelEngine(), [(img, 0, (0, 0, 120, 100))], threshold=0.2).records[0]
    hi = evaluate(ChannelEngine(), [(img, 0, (0, 0, 120, 100))], threshold=0.5).records[0]
    assert lo.predicted_box == [0, 0, 120, 100] and lo.iou == 1.0
    assert hi.predicted_box == [60, 0, 120, 100] and hi.iou == 0.5


def test_uninformative_map_is_a_miss_with_a_note():
    black = _image()
    res = evaluate(ChannelEngine(), [(black, 1, (0, 0, 10, 10), "flat")])
    (r,) = res.records
    assert r.predicted_box is None and r.peak is None and r.peak_distance is None
    assert r.iou == 0.0 and not r.localized and not r.pointing
    assert "constant" in r.note
    assert res.summary["uninformative"] == 1 and res.summary["mean_peak_distance"] is None


def test_no_positive_evidence_still_plays_the_pointing_game():
    class Negative(ChannelEngine):
        def cam(self, image, class_index, layer=None, method="cam"):
            m = -np.ones(np.asarray(image).shape[:2], np.float32)
            m[50, 60] = -0.5
            return m

    (r,) = evaluate(Negative(), [(_image(), 0, (55, 45, 70, 60))]).records
    assert r.predicted_box is None and "no positive value" in r.note
    assert r.peak == [60, 50] and r.pointing


def test_nan_map_propagates():
    class Broken(ChannelEngine):
        def cam(self, image, class_index, layer=None, method="cam"):
            return np.full((7, 7), np.nan, np.float32)

    with pytest.raises(CAMError, match="NaN"):
        evaluate(Broken(), [(_image(), 0, (0, 0, 5, 5))])


def test_summary_counts_and_top1():
    red = _image(rects=[(0, 0, 50, 50, RED)])
    green = _image(rects=[(0, 0, 120, 100, (0, 200, 0)), (70, 50, 120, 100, (255, 255, 0))])
    cases = [
        (red, 0, (0, 0, 50, 50), "red-hit"),
        (green, 0, (70, 50, 120, 100), "red-in-green"),  # class 0 is not the top-1 (green is)
        (green, 2, (0, 0, 10, 10), "blue-flat"),  # blue channel is all zero: uninformative
    ]
    res = evaluate(ChannelEngine(), cases)
    s = res.summary
    assert s["n"] == 3 == res.n
    assert s["localization_accuracy"] == pytest.approx(2 / 3)
    assert s["pointing_accuracy"] == pytest.approx(2 / 3)
    assert s["top1_accuracy"] == pytest.approx(1 / 3)
    assert s["top1_localization_accuracy"] == pytest.approx(1 / 3)
    assert s["uninformative"] == 1
    r = res.records[1]
    assert r.top1 == 1 and r.top1_name == "green" and not r.correct and r.class_rank == 1
    assert r.class_prob < r.top1_prob
    assert s["mean_iou"] == pytest.approx(2 / 3)


def test_layer_method_and_progress_are_forwarded():
    eng = ChannelEngine()
    img = _image(rects=[(0, 0, 5, 5, RED)])
    seen = []
    evaluate(eng, [(img, 0, (0, 0, 5, 5))] * 3, layer="block5", method="gradcam", progress=lambda d, n: seen.append((d, n)))
    assert eng.calls == [(0, "block5", "gradcam")] * 3
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_case_forms_are_equivalent():
    img = _image(rects=[(30, 20, 60, 40, RED)])
    box = (30, 20, 60, 40)
    forms = [
        (img, 0, box),
        [img, "red", list(box), "named"],
        {"image": img, "class_index": 0, "box": box},
        {"image": img, "class": "RED", "box": box, "name": "d"},
        SimpleNamespace(image=img, class_index=np.int64(0), box=np.array(box)),
        Case(img, 0, box, "c"),
    ]
    res = evaluate(ChannelEngine(), forms)
    assert [r.iou for r in res.records] == [1.0] * len(forms)
    assert res.records[1].name == "named" and res.records[0].name == "case0"


@pytest.mark.parametrize(
    "case, match",
    [
        ((np.zeros((10, 10), np.uint8), 0, (0, 0, 5, 5)), "RGB uint8"),
        ((np.zeros((10, 10, 3), np.float32), 0, (0, 0, 5, 5)), "RGB uint8"),
        ((_image(), 0, (0, 0, 121, 5)), "must satisfy"),
        ((_image(), 0, (5, 0, 5, 5)), "must satisfy"),
        ((_image(), 0, (0, -1, 5, 5)), "must satisfy"),
        ((_image(), 0, (0, 0, 5)), "four integers"),
        ((_image(), 0, (0, 0, 5.5, 5)), "four integers"),
        ((_image(), 0, "box!"), "box must be"),
        ((_image(), -1, (0, 0, 5, 5)), ">= 0"),
        ((_image(), 1.5, (0, 0, 5, 5)), "index or a name"),
        ((_image(), True, (0, 0, 5, 5)), "index or a name"),
        ((_image(), 0), "tuple case"),
        ({"image": _image(), "box": (0, 0, 5, 5)}, "missing field"),
        (42, "expected"),
    ],
)
def test_bad_cases_raise_clear_errors(case, match):
    with pytest.raises(CaseFileError, match=match):
        as_case(case, 7)


def test_bad_classes_fail_before_any_computation():
    eng = ChannelEngine()
    good = (_image(), 0, (0, 0, 5, 5))
    with pytest.raises(CaseFileError, match=r"case 1 .*out of range"):
        evaluate(eng, [good, (_image(), 3, (0, 0, 5, 5))])
    with pytest.raises(CaseFileError, match="No class is named 'purple'"):
        evaluate(eng, [good, (_image(), "purple", (0, 0, 5, 5))])
    assert eng.calls == []


def test_resolve_class():
    names = ["tabby", "tiger cat", "crane", "Egyptian_cat", "crane"]
    assert resolve_class(1, names) == 1
    assert resolve_class("3", names) == 3
    assert resolve_class("Tiger Cat", names) == 1
    assert resolve_class("egyptian cat", names) == 3
    with pytest.raises(CaseFileError, match="ambiguous"):
        resolve_class("crane", names)
    with pytest.raises(CaseFileError, match="Similar: 1 'tiger cat'"):
        resolve_class("tiger", names)
    with pytest.raises(CaseFileError, match="out of range"):
        resolve_class(5, names)
    with pytest.raises(CaseFileError, match="no class names"):
        resolve_class("tabby", None)
    assert resolve_class(10**6, None) == 10**6
    synonyms = ["tabby, tabby cat", "tiger cat"]
    assert resolve_class("tabby cat", synonyms) == 0


def test_result_serialises_to_json_and_prints_a_table(tmp_path):
    img = _image(rects=[(30, 20, 60, 40, RED)])
    res = evaluate(ChannelEngine(), [(img, 0, (30, 20, 60, 40), "cat"), (_image(), 1, (0, 0, 5, 5), "flat")])
    out = tmp_path / "r.json"
    text = res.to_json(out)
    doc = json.loads(out.read_text())
    assert doc == json.loads(text) == json.loads(json.dumps(res.to_dict()))
    assert doc["summary"]["n"] == 2 and doc["cases"][0]["predicted_box"] == [30, 20, 60, 40]
    assert doc["settings"]["method"] == "cam" and doc["settings"]["threshold"] == 0.2
    assert doc["settings"]["input_size"] == [224, 224]
    table = res.table()
    assert str(res) == table
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["case", "class"]
    assert any(line.startswith("cat ") and "hit" in line for line in lines)
    assert any(line.startswith("flat ") and "(none)" in line for line in lines)
    assert "localization (IoU>=0.5) 50.0%" in table and "pointing 50.0%" in table


def test_empty_evaluation():
    res = evaluate(ChannelEngine(), [])
    assert res.summary == {"n": 0} and math.isnan(res.localization_accuracy)
    assert "no cases" in res.table()


# ------------------------------------------------------------------------------------ translation


def test_paste_positions():
    assert paste_positions((100, 200), (20, 40), grid=3) == [
        (0, 0), (80, 0), (160, 0), (0, 40), (80, 40), (160, 40), (0, 80), (80, 80), (160, 80),
    ]  # fmt: skip
    assert paste_positions((100, 100), (20, 20), grid=1) == [(40, 40)]
    with pytest.raises(CAMError, match="does not fit"):
        paste_positions((10, 10), (11, 5))
    with pytest.raises(CAMError, match="grid"):
        paste_positions((10, 10), (5, 5), grid=0)


def test_translation_cases_move_the_box_with_the_object():
    src = _image(200, 300, rects=[(100, 50, 200, 150, (200, 30, 40))])
    cases = translation_cases(src, (100, 50, 200, 150), 0, grid=3, canvas=(240, 320), object_fraction=0.25)
    assert len(cases) == 9
    side = round(0.25 * 240)
    crop = cv2.resize(src[50:150, 100:200], (side, side), interpolation=cv2.INTER_AREA)
    for c in cases:
        x0, y0, x1, y1 = c.box
        assert (x1 - x0, y1 - y0) == (side, side)
        assert c.image.shape == (240, 320, 3) and c.group == "translation"
        np.testing.assert_array_equal(c.image[y0:y1, x0:x1], crop)
        outside = c.image.copy()
        outside[y0:y1, x0:x1] = 128
        assert (outside == 128).all()
        assert c.name == f"object@{x0},{y0}"
    assert {c.box[:2] for c in cases} == set(paste_positions((240, 320), (side, side), 3))
    # The fake engine's map is the image itself, so the peak follows the object everywhere (the
    # gray background is 128/200 of the object's red: above the 0.2 threshold, below 0.7).
    res = evaluate(ChannelEngine(), cases, tolerance=0, threshold=0.7)
    assert res.pointing_accuracy == 1.0 and res.localization_accuracy == 1.0


def test_translation_rejects_bad_options():
    src = _image()
    with pytest.raises(CAMError, match="not inside"):
        translation_cases(src, (0, 0, 500, 10), 0)
    with pytest.raises(CAMError, match="object_fraction"):
        translation_cases(src, (0, 0, 10, 10), 0, object_fraction=0)
    with pytest.raises(CAMError, match="canvas"):
        translation_cases(src, (0, 0, 10, 10), 0, canvas=(0, 10))
    with pytest.raises(CAMError, match="background"):
        translation_cases(src, (0, 0, 10, 10), 0, background=300)


# ------------------------------------------------------------------------------------- load_cases


@pytest.fixture
def fake_samples(monkeypatch):
    samples = {"boxes": _image(100, 120, rects=[(30, 20, 60, 40, RED)]), "flat": _image(50, 50)}
    monkeypatch.setattr(ev, "_sample_images", lambda: samples)
    return samples


def _write(tmp_path, doc, name="cases.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_load_cases_from_samples_and_relative_paths(tmp_path, fake_samples):
    (tmp_path / "photos").mkdir()
    photo = _image(60, 80, rects=[(10, 10, 30, 40, (0, 0, 255))])
    cv2.imwrite(str(tmp_path / "photos" / "blue.png"), photo[..., ::-1])
    path = _write(
        tmp_path,
        {
            "cases": [
                {"name": "s", "sample": "boxes", "class": 0, "box": [30, 20, 60, 40], "note": "a red box"},
                {"image": "photos/blue.png", "class": "blue", "box": [10, 10, 30, 40], "group": "files"},
            ]
        },
    )
    cases = load_cases(path)
    assert [c.name for c in cases] == ["s", "blue"]
    np.testing.assert_array_equal(cases[1].image, photo)  # RGB, not BGR
    assert cases[1].class_index == "blue" and cases[1].group == "files"
    res = evaluate(ChannelEngine(), cases)
    assert [r.iou for r in res.records] == [1.0, 1.0]
    assert list(res.groups()) == ["files"]
    assert load_cases(str(path))[0].box == (30, 20, 60, 40)


def test_bare_list_and_image_shape_rescaling(tmp_path, fake_samples):
    # Box drawn on a 200x240 version of the 100x120 sample: halved on load.
    path = _write(tmp_path, [{"sample": "boxes", "class": 0, "box": [60, 40, 120, 80], "image_shape": [200, 240]}])
    (case,) = load_cases(path)
    assert case.box == (30, 20, 60, 40) and case.name == "boxes"


def test_translate_entries_expand(tmp_path, fake_samples):
    path = _write(
        tmp_path,
        {"cases": [{"name": "red", "sample": "boxes", "class": 0, "box": [30, 20, 60, 40],
                    "translate": {"grid": 2, "canvas": [200, 200], "object_fraction": 0.3}}]},
    )  # fmt: skip
    cases = load_cases(path)
    assert len(cases) == 4 and all(c.group == "translation" for c in cases)
    assert cases[0].name == "red@0,0" and cases[-1].box == (140, 160, 200, 200)  # the 30x20 box scaled x2


@pytest.mark.parametrize(
    "doc, match",
    [
        ([], "non-empty list"),
        ({"cases": "x"}, "non-empty list"),
        (["x"], "must be an object"),
        ([{"sample": "boxes", "box": [0, 0, 5, 5]}], "missing \"class\""),
        ([{"sample": "boxes", "class": 0}], "missing \"box\""),
        ([{"class": 0, "box": [0, 0, 5, 5]}], "exactly one of"),
        ([{"sample": "boxes", "image": "a.png", "class": 0, "box": [0, 0, 5, 5]}], "exactly one of"),
        ([{"sample": "nope", "class": 0, "box": [0, 0, 5, 5]}], "unknown sample 'nope'.*boxes, flat"),
        ([{"image": "missing.png", "class": 0, "box": [0, 0, 5, 5]}], "image file not found"),
        ([{"image": 3, "class": 0, "box": [0, 0, 5, 5]}], "path string"),
        ([{"sample": "boxes", "class": 0, "box": [0, 0, 500, 5]}], r"cases.json: case 0 \('boxes'\): box .*120x100"),
        ([{"name": "n", "sample": "boxes", "class": 0, "box": [0, 0, 5]}], r"case 0 \('n'\): box must be four"),
        ([{"sample": "boxes", "class": 0, "box": [0, 0, 5, 5], "colour": 1}], "unknown field.*colour"),
        ([{"sample": "boxes", "class": 0, "box": [0, 0, 5, 5], "image_shape": "big"}], "image_shape"),
        ([{"sample": "boxes", "class": 0, "box": [0, 0, 5, 5], "translate": {"zoom": 2}}], "translate option"),
        ([{"sample": "boxes", "class": 0, "box": [0, 0, 5, 5], "translate": 3}], "translate"),
        ([{"sample": "boxes", "class": [0], "box": [0, 0, 5, 5]}], "index or a name"),
    ],
)
def test_load_cases_validation(tmp_path, fake_samples, doc, match):
    with pytest.raises(CaseFileError, match=match):
        load_cases(_write(tmp_path, doc))


def test_load_cases_file_errors(tmp_path):
    with pytest.raises(CaseFileError, match="not found"):
        load_cases(tmp_path / "nothing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CaseFileError, match="not valid JSON"):
        load_cases(bad)
    with pytest.raises(CaseFileError, match="Cannot read"):
        load_cases(tmp_path)  # a directory
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png")
    with pytest.raises(CaseFileError, match=r"garbage\.png"):
        load_cases(_write(tmp_path, [{"image": "garbage.png", "class": 0, "box": [0, 0, 1, 1]}]))


def test_packaged_case_file_is_well_formed():
    path = ev.default_cases_path()
    assert path.is_file()
    doc = json.loads(path.read_text())
    entries = doc["cases"]
    assert len(entries) >= 8
    for e in entries:
        assert set(e) >= {"name", "sample", "class", "box", "image_shape"}
        h, w = e["image_shape"]
        x0, y0, x1, y1 = e["box"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert isinstance(e["class"], int) and 0 <= e["class"] < 1000


def test_packaged_cases_load_with_the_sample_photos():
    pytest.importorskip("cam_widget.samples", reason="cam_widget.samples (sample photos) is not available yet")
    cases = load_cases()
    assert len(cases) >= 8
    assert any(c.group == "translation" for c in cases)


# ------------------------------------------------------------------- with the embedded default model


def _default_engine(size):
    import importlib.util

    if importlib.util.find_spec("cam_widget.defaults") is None:
        pytest.skip("cam_widget.defaults (the embedded default model) is not available yet")
    from cam_widget.defaults import default_engine

    return default_engine(size)


@pytest.fixture(scope="module")
def engine224():
    return _default_engine(224)


@pytest.fixture(scope="module")
def packaged_cases():
    return load_cases()


@pytest.fixture(scope="module")
def result224(engine224, packaged_cases):
    return evaluate(engine224, packaged_cases)


@pytest.mark.slow
def test_packaged_case_classes_are_in_the_default_models_top5(result224):
    samples = [r for r in result224.records if r.group == "samples"]
    assert len(samples) >= 8
    assert all(r.class_rank < 5 for r in samples), [(r.name, r.class_rank) for r in samples]


@pytest.mark.slow
def test_default_model_cam_points_at_the_objects(result224):
    groups = result224.groups()
    assert groups["samples"]["pointing_accuracy"] >= 0.75
    # Translation test: wherever the object is pasted, the map's peak follows it.
    assert groups["translation"]["pointing_accuracy"] == 1.0
    assert groups["translation"]["mean_peak_distance"] < 10
    assert result224.summary["localization_accuracy"] > 0.2


@pytest.mark.slow
def test_gradcam_at_the_cam_layer_gives_the_same_boxes(engine224, packaged_cases, result224):
    # Grad-CAM = CAM / (h * w) at a GAP head's layer, and localize is scale-invariant.
    grad = evaluate(engine224, packaged_cases[:12], method="gradcam")
    for a, b in zip(result224.records[:12], grad.records, strict=True):
        assert iou(a.predicted_box, b.predicted_box) > 0.98, a.name
        assert point_box_distance(a.peak, (*b.peak, b.peak[0] + 1, b.peak[1] + 1)) <= 1.5, a.name


@pytest.mark.slow
def test_finer_maps_localise_the_moved_objects_better(result224, packaged_cases):
    moved = [c for c in packaged_cases if c.group == "translation"]
    fine = evaluate(_default_engine(448), moved)  # 14 x 14 maps instead of 7 x 7
    coarse = result224.groups()["translation"]
    assert fine.localization_accuracy >= 0.6
    assert fine.localization_accuracy > coarse["localization_accuracy"]
    assert fine.mean_iou > coarse["mean_iou"]
