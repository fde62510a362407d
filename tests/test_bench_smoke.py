"""Smoke test of the benchmark harness (bench/): the quick mode of every kernel-side benchmark runs, in one process
on one engine, and its results hold together; then the report is written from them.  Timings are not asserted
beyond "the cached path beats the naive one" (the machines are shared and noisy); bench/run_all.py measures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # bench/ is a top-level folder of the repository, not part of the package
    sys.path.insert(0, str(REPO))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings(
        "ignore::DeprecationWarning"
    ),  # tf-keras-vis imports scipy's deprecated namespace
]


@pytest.fixture(scope="module")
def engine():
    from bench import common

    return common.engine(224)


@pytest.fixture(scope="module")
def results(engine, tmp_path_factory) -> dict:
    from bench import kernel_latency, memory, refit, scaling, throughput

    out = {}
    for mod in (kernel_latency, throughput, memory, scaling, refit):
        out[mod.NAME] = mod.run(quick=True, repeats=2, engine=engine)
    return out


def test_kernel_latency_quick(results) -> None:
    r = results["kernel_latency"]
    assert [s["display"] for s in r["sizes"]] == [224, 1024]
    for s in r["sizes"]:
        c = s["cases"]
        for case in ("seed", "alpha", "colormap", "class_cached", "class_first", "floor", "layer_first"):
            assert c[case]["n"] >= 1 and c[case]["median_ms"] > 0, case
        # the cached paths must beat the seed's full forward pass + loop + matplotlib, even on a loaded machine
        assert c["alpha"]["median_ms"] < c["seed"]["median_ms"]
        assert c["class_cached"]["median_ms"] < c["seed"]["median_ms"]
        assert set(s["targets"]) == {"class_first", "class_cached", "alpha", "colormap"}


def test_throughput_quick(results) -> None:
    r = results["throughput"]
    assert r["paths"]["engine_cam"]["images_per_s"] > 0
    agree = r["agreement_after_relu_max_norm"]
    # CAM == Grad-CAM at a GAP head (up to scale), and the keras.io recipe computes the same Grad-CAM
    assert agree["engine_cam_vs_engine_gradcam_max_abs"] < 1e-3
    assert agree["keras_io_recipe_vs_engine_gradcam_max_abs"] < 1e-3
    if r["peer"]["runs_on_keras3"]:
        assert agree["tf_keras_vis_raw_vs_engine_gradcam_max_abs"] < 1e-3
    else:
        assert r["peer"]["error"]


def test_memory_quick(results) -> None:
    r = results["memory"]
    ci = r["cache_vs_images"]
    assert ci["measured_bytes_per_image"] == ci["expected_bytes_per_image"]
    for row in r["cache_vs_layers"]["rows"]:
        assert row["delta_bytes"] in (0, row["feature_bytes_expected"])
    assert r["cache_bound"]["respected"] and r["cache_bound"]["evicted_image_recomputed"]
    assert r["widget_map_cache_bound"]["respected"]
    assert r["rss"]["changes"] == 100


def test_scaling_quick(results) -> None:
    r = results["scaling"]
    assert [row["display"] for row in r["vs_display"]] == [224, 768]
    cyc = {row["images_cycled"]: row for row in r["vs_cached_images"]["engine_bound_16_images"]}
    assert cyc[8]["forward_passes"] == 0  # fits in the bound: all hits
    assert cyc[20]["forward_passes"] == cyc[20]["calls"]  # LRU thrash: every call a forward pass


def test_refit_quick(results) -> None:
    r = results["refit"]
    (row,) = r["layers"]
    assert row["layer"] == "block5c_add" and row["shape"] == [14, 14, 112] and row["seconds"]["n"] == 2
    assert 0.5 < row["top1_agreement"] <= 1 and 0 < row["model_self_agreement"] <= 1
    assert row["n_heldout"] == 8 * r["photos"]


def test_report_from_quick_results(results, tmp_path: Path) -> None:
    from bench import common, run_all

    for name, body in results.items():
        wrapped = {"benchmark": name, "command": common.command_for(name, True), "quick": True,
                   "machine": common.machine_info(chromium=False), **body}  # fmt: skip
        (tmp_path / f"{name}.json").write_text(json.dumps(wrapped, default=common._json_default))
    md = run_all.write_report(tmp_path, tmp_path / "BENCHMARKS.md", tmp_path / "plot.png")
    text = md.read_text()
    assert "python -m bench.kernel_latency" in text and "## 6. Refit heads" in text and (tmp_path / "plot.png").stat().st_size > 1000
