"""Gallery: thumbnails with overlays, filters, sorting, paging (50,000 rows), click -> CAMExplorer, mean CAM.

Driven in the kernel through the controls' values and the widget tree (no browser)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

import cam_widget
from bench.batch import write_photo_set
from cam_widget import render
from cam_widget.batch import BatchJob, load_maps, run
from cam_widget.batch.engines import engine_for
from cam_widget.imaging import load_image, resize_to


@pytest.fixture(scope="module")
def job_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gallery")
    csv = write_photo_set(folder / "photos", count=16)
    job = BatchJob(items=str(csv), out=folder / "out", methods=("cam", "gradcam++"), shard_size=6)
    run(job)
    return job


def _decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_grid_shows_the_page_with_overlays_of_the_stored_maps(job_out):
    g = cam_widget.Gallery(job_out.out, page_size=6, thumb_size=96, boxes=False)
    assert isinstance(g, cam_widget.ui.gallery.Gallery) and g.methods == ["cam", "gradcam++"]
    assert len(g.grid.children) == 6 and g.pages == 3 and "<b>16</b> of 16 images" in g.status.value
    assert g.thumbnails_drawn == 6
    row = g.visible.iloc[0]
    photo = load_image(row["path"])
    small = resize_to(photo, render.fit_within(photo.shape, 96))
    want = render.overlay(small, load_maps(job_out.out, int(row["shard"]), "cam")[int(row["index"])], alpha=0.5)
    shown = _decode(g.grid.children[0].children[0].value)
    assert shown.shape == want.shape and np.abs(shown.astype(int) - want).mean() < 4  # JPEG noise only
    g.method_control.value = "gradcam++"  # another method (a column name that is no identifier): new overlays for the same page
    assert g.thumbnails_drawn == 12
    row = g.visible.iloc[0]
    assert f"IoU {row['gradcam++_iou']:.2f}" in g.grid.children[0].children[1].value
    g.go(3)
    assert len(g.grid.children) == 4 and g.page_paths() == list(g.frame["path"].iloc[12:])


def test_filters_sorts_and_pairs_select_the_right_rows(job_out):
    g = cam_widget.Gallery(job_out.out, page_size=50)
    f = g.frame
    g.select("wrong")
    assert set(g.selection.index) == set(f.index[f["label"] != f["predicted"]])
    assert all("→" in tile.children[1].value for tile in g.grid.children)  # true → predicted, in red
    g.select("class", 285)
    assert set(g.selection.index) == set(f.index[f["label"] == 285]) and len(g.selection) > 0
    g.select("predicted", int(f["predicted"].iloc[0]))
    assert (g.selection["predicted"] == f["predicted"].iloc[0]).all()
    pair = g.pair_control.options[0][1]
    g.select("pair", pair)
    assert ((g.selection["label"] == pair[0]) & (g.selection["predicted"] == pair[1])).all()
    g.select("all", sort="iou")
    ious = g.selection["cam_iou"].to_numpy()
    assert np.array_equal(ious, np.sort(f["cam_iou"].to_numpy()))
    assert [k for _, k in g.sort_control.options] == ["order", "iou", "confidence", "confidence-desc"]
    with pytest.raises(cam_widget.CAMError, match="filter must be one of"):
        g.select("blurry")


def test_click_opens_the_image_in_an_explorer_on_the_jobs_model(job_out):
    g = cam_widget.Gallery(job_out.out, page_size=4)
    tile = g.grid.children[2]
    tile.children[2].click()  # the tile's button
    ex = g.explorer
    assert isinstance(ex, cam_widget.CAMExplorer) and g.detail.children == (ex,)
    assert ex.engine is engine_for(job_out)  # the same model, built once per process
    row = g.visible.iloc[2]
    assert ex.wait() and ex.state["image"] == g.opened["name"] == row["path"].rsplit("/", 1)[-1]
    assert ex.state["class_index"] == row["predicted"] and ex.state["layer"] == "top_activation"
    g.grid.children[3].children[2].click()
    assert g.explorer is ex and ex.wait() and ex.state["image"] == g.visible.iloc[3]["path"].rsplit("/", 1)[-1]


def test_mean_cam_of_a_class_is_the_average_of_its_normalised_maps(job_out):
    g = cam_widget.Gallery(job_out.out)
    f = g.frame
    rows = f[f["label"] == 285]
    maps = []
    for r in rows.itertuples():
        m = load_maps(job_out.out, r.shard, "cam")[r.index]
        m = np.maximum(m, 0)
        maps.append((m - m.min()) / (m.max() - m.min()))
    mean, count = g.mean_cam(285)
    assert count == len(rows) == len(maps) and mean.shape == (7, 7)
    np.testing.assert_allclose(mean, np.mean(maps, axis=0), atol=1e-5)
    g.select("class", 285)
    picture = g.show_mean_cam()
    assert picture.shape == (224, 224, 3) and g.mean_view["maps"] == count and g.mean_view["photos"] == count
    assert "Egyptian cat" in g.detail.children[1].value


def test_fifty_thousand_rows_page_from_the_table_and_draw_only_the_visible_page(tmp_path):
    n = 50_000
    rng = np.random.default_rng(0)
    label = rng.integers(0, 1000, n)
    predicted = np.where(rng.random(n) < 0.7, label, rng.integers(0, 1000, n))
    frame = pd.DataFrame({
        "shard": np.arange(n) // 64, "index": np.arange(n) % 64, "path": [f"/nowhere/{i:05d}.jpg" for i in range(n)],
        "label": label, "predicted": predicted, "probability": rng.random(n), "error": [None] * n,
        "cam_peak_x": 0, "cam_iou": rng.random(n), "cam_insertion": rng.random(n),
    })  # fmt: skip
    g = cam_widget.Gallery(frame, page_size=24)
    assert g.pages == -(-n // 24) and len(g.grid.children) == 24 and g.thumbnails_drawn == 24
    tiles = g.grid.children
    g.select("wrong", sort="iou")
    wrong = frame[frame["label"] != frame["predicted"]]
    assert len(g.selection) == len(wrong) and g.pages == -(-len(wrong) // 24)
    assert list(g.visible["cam_iou"]) == sorted(wrong["cam_iou"])[:24]
    g.go(g.pages)
    last = len(g.grid.children)
    assert last == len(wrong) - 24 * (g.pages - 1)
    assert g.thumbnails_drawn == 24 + 24 + last  # only the visible pages were ever drawn
    g.go(1)
    assert g.thumbnails_drawn == 24 + 24 + last  # page 1 again: from the cache
    assert g.grid.children == tiles  # the same 24 tile widgets, refilled: nothing piles up in the kernel
    g.select("class", int(label[0]), sort="insertion")
    chosen = frame[frame["label"] == label[0]]
    assert list(g.visible["cam_insertion"]) == sorted(chosen["cam_insertion"])[:24]
    assert _decode(g.grid.children[0].children[0].value).shape == (144, 144, 3)  # missing file: placeholder


def test_bad_input_names_the_problem(tmp_path):
    with pytest.raises(cam_widget.CAMError, match="does not exist: run the job first"):
        cam_widget.Gallery(tmp_path)
    with pytest.raises(cam_widget.CAMError, match="not a batch results table"):
        cam_widget.Gallery(pd.DataFrame({"a": [1]}))
