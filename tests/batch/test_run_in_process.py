"""``run(job)`` in this process with the real default model: rows and maps checked against the engine and
against independent computations; bad files become rows; resume recomputes exactly the missing shards."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

import cam_widget
from cam_widget.batch import BatchJob, BatchJobError, load_maps, read_results, run
from cam_widget.batch.engines import engine_for
from cam_widget.batch.store import shard_path
from cam_widget.render import upsample


def _iou(a, b):  # written out from the definition, not cam_widget.iou
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _box_20(cam, shape):
    """The paper's box from scratch: bilinear upsampling, >= 20 % of the max, largest 8-connected blob."""
    from scipy import ndimage

    big = upsample(cam, shape, interpolation="bilinear")
    labels, n = ndimage.label(big >= np.float32(0.2 * big.max()), structure=np.ones((3, 3)))
    sizes = ndimage.sum(np.ones_like(big), labels, range(1, n + 1))
    ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@pytest.fixture(scope="module")
def done(photo_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    job = BatchJob(items=str(photo_csv), out=out, methods=("cam", "gradcam"), shard_size=5, batch_size=4)
    return job, run(job)


def test_rows_match_the_engine_and_independent_scores(done, photo_csv):
    job, result = done
    frame = read_results(job.out)
    assert len(frame) == 12 and frame["error"].isna().all()
    pd.testing.assert_frame_equal(frame, result.results)
    engine = engine_for(job)
    listed = pd.read_csv(photo_csv)
    for row, (_, want) in zip(frame.itertuples(), listed.iterrows(), strict=True):
        assert row.path == str(photo_csv.parent / want["path"])
        image = cam_widget.load_image(row.path)
        assert (row.height, row.width) == image.shape[:2]
        top = engine.top_k(image, 5)
        assert list(row.top_classes) == [c for c, _, _ in top]
        np.testing.assert_allclose(row.top_probs, [p for _, _, p in top], rtol=1e-4, atol=1e-6)
        assert row.predicted == top[0][0] and row.predicted_name == top[0][1]
        assert row.label == want["label"] and row.correct == (row.predicted == want["label"])
        assert row.top5_correct == (want["label"] in row.top_classes)
        for method in ("cam", "gradcam"):
            cam = load_maps(job.out, row.shard, method)[row.index]
            np.testing.assert_allclose(cam, engine.cam(image, row.predicted, method=method), rtol=1e-4, atol=1e-4)
            box = tuple(getattr(row, f"{method}_box_{k}") for k in ("x0", "y0", "x1", "y1"))
            assert box == _box_20(cam, image.shape[:2])
            truth = (want["x0"], want["y0"], want["x1"], want["y1"])
            assert getattr(row, f"{method}_iou") == pytest.approx(_iou(box, truth))
            big = upsample(cam, image.shape[:2], interpolation="bilinear")
            py, px = np.unravel_index(np.argmax(big), big.shape)
            assert (getattr(row, f"{method}_peak_x"), getattr(row, f"{method}_peak_y")) == (px, py)
            dx = max(truth[0] - px, 0, px - (truth[2] - 1))
            dy = max(truth[1] - py, 0, py - (truth[3] - 1))
            assert getattr(row, f"{method}_pointing") == (np.hypot(dx, dy) <= 15)


def test_summary_is_the_paper_arithmetic_over_the_rows(done):
    _, result = done
    f = result.results
    s = json.loads((result.out / "summary.json").read_text())["overall"]
    assert s["images"] == 12 and s["errors"] == 0
    assert s["top1_error"] == pytest.approx(1 - f["correct"].astype(bool).mean())
    assert s["top5_error"] == pytest.approx(1 - f["top5_correct"].astype(bool).mean())
    hit = (f["cam_iou"] >= 0.5) & f["correct"].astype(bool)
    assert s["cam"]["top1_localization_error"] == pytest.approx(1 - hit.mean())
    assert s["cam"]["pointing_accuracy"] == pytest.approx(f["cam_pointing"].astype(bool).mean())
    assert "tabby" not in result.summary.per_class and "Egyptian cat" in result.summary.per_class
    assert result.summary.per_class["Egyptian cat"]["images"] == (f["label"] == 285).sum()
    assert "Egyptian cat" in result.summary.table()


def test_job_json_and_maps_files_are_readable_without_pickle(done):
    job, result = done
    info = json.loads((result.out / "job.json").read_text())
    assert info["layer"] == "top_activation" and info["shards"] == 3
    assert info["job"]["methods"] == ["cam", "gradcam"] and "keras" in info["versions"]
    assert info["runs"][-1]["computed"] == [0, 1, 2]
    with np.load(shard_path(job.out, 2), allow_pickle=False) as z:
        assert z["map_cam"].shape == (2, 7, 7) and z["map_cam"].dtype == np.float32
    assert len((result.out / "shards.log").read_text().splitlines()) == 3
    assert not list(result.out.rglob("*.tmp"))


def test_resume_recomputes_only_the_missing_shard(done, tmp_path):
    job, first = done
    out = tmp_path / "copy"
    shutil.copytree(job.out, out)
    shard_path(out, 1).unlink()
    again = run(BatchJob(**{**job.__dict__, "out": str(out)}))
    assert again.computed == [1] and again.skipped == [0, 2]
    pd.testing.assert_frame_equal(again.results, first.results, check_exact=False, rtol=1e-5)
    np.testing.assert_allclose(load_maps(out, 1, "cam"), load_maps(job.out, 1, "cam"), rtol=1e-5, atol=1e-6)
    with pytest.raises(BatchJobError, match="holds the results of a different job"):
        run(BatchJob(**{**job.__dict__, "out": str(out), "shard_size": 4}))


def test_bad_files_become_rows_and_the_rest_goes_on(bad_folder, tmp_path):
    job = BatchJob(items=bad_folder, out=tmp_path / "out", shard_size=3, max_pixels=1_000_000)
    result = run(job)
    f = result.results.set_index(result.results["path"].str.rsplit("/", n=1).str[-1])
    assert len(f) == 7 and result.errors == 3
    assert "could not be decoded" in f.loc["corrupt.jpg", "error"]
    assert "empty (0 bytes)" in f.loc["empty.png", "error"]
    assert "1.4 MP, above the cap of 1 MP" in f.loc["huge.png", "error"]
    assert f.loc["empty.png", "bytes"] == 0 and f.loc["huge.png", "hash"] is not None
    good = f[f["error"].isna()]
    assert len(good) == 4 and good["predicted"].notna().all() and good["cam_peak_x"].notna().all()
    maps = np.concatenate([load_maps(job.out, k, "cam") for k in range(3)])
    assert np.isnan(maps).all(axis=(1, 2)).sum() == 3 and np.isfinite(maps).all(axis=(1, 2)).sum() == 4
    assert result.summary.overall["errors"] == 3


def test_deletion_and_insertion_are_rise_aucs_of_the_stored_map(photo_csv, tmp_path):
    items = [str(photo_csv.parent / "chelsea-100.jpg"), str(photo_csv.parent / "coffee-100-flip.jpg")]
    job = BatchJob(items=items, out=tmp_path / "o", metrics=("deletion", "insertion"), methods=("gradcam",))
    result = run(job)
    engine = engine_for(job)
    for row in result.results.itertuples():
        cam = load_maps(job.out, 0, "gradcam")[row.index]
        rep = cam_widget.deletion_insertion(
            engine, cam_widget.load_image(row.path), row.predicted, saliency=cam, random_baseline=False
        )
        assert row.gradcam_deletion == pytest.approx(rep.deletion_auc, abs=1e-5)
        assert row.gradcam_insertion == pytest.approx(rep.insertion_auc, abs=1e-5)
        assert 0 <= row.gradcam_deletion < row.gradcam_insertion <= 1
    assert "gradcam_iou" not in result.results  # not asked for
    overall = result.summary.overall["gradcam"]
    assert overall["mean_insertion"] == pytest.approx(result.results["gradcam_insertion"].mean())


def test_unknown_layer_and_method_fail_before_any_work(photo_csv, tmp_path):
    with pytest.raises(cam_widget.LayerError, match="No spatial layer named 'nope'"):
        run(BatchJob(items=str(photo_csv), out=tmp_path / "a", layer="nope"))
    with pytest.raises(BatchJobError, match="method 'magic': Unknown method 'magic'; available: cam, gradcam"):
        run(BatchJob(items=str(photo_csv), out=tmp_path / "b", methods=("magic",)))
    with pytest.raises(BatchJobError, match="needs a GAP -> Dense head at layer 'block5c_add'"):
        run(BatchJob(items=str(photo_csv), out=tmp_path / "c", methods=("cam",), layer="block5c_add"))
    assert not any((tmp_path / d).exists() for d in "abc")


def test_in_process_run_never_imports_dask(photo_csv, tmp_path):
    import subprocess

    code = (
        "import sys\nfrom cam_widget.batch import BatchJob, run\n"
        f"run(BatchJob(items={str(photo_csv)!r}, out={str(tmp_path / 'o')!r}, shard_size=20))\n"
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules, 'dask imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("nested", [False, True])
def test_a_user_model_file_flat_or_nested(tmp_path, photo_csv, nested):
    import keras

    inputs = keras.Input((64, 64, 3))
    if nested:
        inner_in = keras.Input((64, 64, 3))
        inner = keras.Model(inner_in, keras.layers.Conv2D(8, 3, strides=4, activation="relu", name="conv")(inner_in), name="backbone")
        x = inner(inputs)
    else:
        x = keras.layers.Conv2D(8, 3, strides=4, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))
    path = tmp_path / "m.keras"
    model.save(path)
    photos = [str(photo_csv.parent / n) for n in ("chelsea-100.jpg", "coffee-100.jpg", "rocket-100.jpg")]
    items = [(p, i % 3) for i, p in enumerate(photos)]
    job = BatchJob(items=items, out=tmp_path / "o", model=path, class_names=("a", "b", "c"), preprocess="mobilenet")
    result = run(job)
    reference = cam_widget.CAMEngine(
        cam_widget.load_model(path), keras.applications.mobilenet.preprocess_input, class_names=["a", "b", "c"]
    )
    assert reference.cam_layer == ("backbone/conv" if nested else "conv")
    for row in result.results.itertuples():
        image = cam_widget.load_image(row.path)
        p = reference.predict(image)
        assert row.predicted == int(np.argmax(p)) and row.predicted_name == "abc"[row.predicted]
        np.testing.assert_allclose(row.top_probs, np.sort(p)[::-1][:3], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(load_maps(job.out, 0, "cam")[row.index], reference.cam(image, row.predicted), atol=1e-4)
    assert result.summary.per_class.keys() == {"a", "b", "c"}


def test_a_constant_map_is_the_rows_error_and_the_rest_goes_on(tmp_path, photo_csv):
    """A model whose CAM layer is all zeros gives a constant map: no peak, no box, the map's own error in the
    row (the same text localize() raises), and the other method (Grad-CAM, also constant here) likewise."""
    import keras

    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(4, 3, strides=4, activation="relu", name="conv")
    x = keras.layers.GlobalAveragePooling2D()(conv(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(x))
    conv.set_weights([np.zeros((3, 3, 3, 4), np.float32), np.zeros(4, np.float32)])  # features all 0
    path = tmp_path / "zero.keras"
    model.save(path)
    photos = [str(photo_csv.parent / n) for n in ("chelsea-100.jpg", "coffee-100.jpg")]
    result = run(BatchJob(items=[(p, 0, (1, 1, 20, 20)) for p in photos], out=tmp_path / "o", model=path,
                          class_names=("a", "b"), methods=("cam", "gradcam")))  # fmt: skip
    frame = result.results
    assert len(frame) == 2 and frame["error"].isna().all()  # the images themselves are fine
    for m in ("cam", "gradcam"):
        assert frame[f"{m}_error"].str.contains("constant").all(), frame[f"{m}_error"].tolist()
        assert frame[f"{m}_peak_x"].isna().all() and frame[f"{m}_iou"].isna().all()
    from cam_widget.metrics.localize import UninformativeMapError, localize

    with pytest.raises(UninformativeMapError) as err:
        localize(load_maps(result.out, 0, "cam")[0], (10, 10))
    assert " ".join(str(err.value).split()) in frame["cam_error"].iloc[0]
