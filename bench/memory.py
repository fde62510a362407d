"""Benchmark 4: memory.

* engine cache bytes as images grow (one forward pass each at the CAM layer) and as layers grow (one image, one
  feature map per layer), against the arithmetic (``h * w * c * 4`` bytes per feature map + 4 bytes per logit);
* the cache bound: an engine with a 2 MiB cache fed 32 photos one by one and then a batch of 16; bytes after
  every call never exceed ``max_bytes``; the widget's own index-map cache (``map_cache_bytes``) likewise;
* RSS growth over 1,000 control changes of a ``CAMExplorer`` on the 8 sample photos (a user browsing: alpha,
  colormap, class among the top 5, image), after a warm-up that fills the caches; target < 20 MB (no leak);
  and (full run) the worst case, 1,000 never-seen classes, where growth must stop at the caches' bounds.

    .venv/bin/python -m bench.memory [--quick]
"""

from __future__ import annotations

import random
import sys
from typing import Any

from . import common
from .common import log, now, rss_bytes

NAME = "memory"
MIB = 2**20


def cache_vs_images(n: int) -> dict[str, Any]:
    import numpy as np

    eng = common.engine(224, cache_bytes=256 * MIB)
    imgs = common.variants(n)
    rows = []
    for k, img in enumerate(imgs, 1):
        eng.cam(img, 281)
        info = eng.cache_info()
        rows.append({"images": k, "bytes": info["bytes"], "entries": info["entries"]})
    h, w, c = eng.layer(eng.cam_layer).shape
    per_image = h * w * c * 4 + eng.num_classes * 4
    return {
        "layer": eng.cam_layer,
        "rows": rows,
        "expected_bytes_per_image": per_image,
        "measured_bytes_per_image": round(float(np.median(np.diff([0, *(r["bytes"] for r in rows)]))), 1),
        "forward_passes": eng.cache_info()["forward_passes"],
    }


def cache_vs_layers(n_layers: int) -> dict[str, Any]:
    eng = common.engine(224, cache_bytes=256 * MIB)
    img = common.photo()
    layers = eng.layers()
    step = max(1, len(layers) // n_layers)
    picks = [*layers[::step][: n_layers - 1], eng.layer(eng.cam_layer)]
    rows = []
    eng.logits(img)
    before = eng.cache_info()["bytes"]
    for li in picks:
        t0 = now()
        eng.features(img, li.name)
        dt = now() - t0
        info = eng.cache_info()
        h, w, c = li.shape
        rows.append(
            {
                "layer": li.name,
                "shape": [h, w, c],
                "feature_bytes_expected": h * w * c * 4,
                "cache_bytes": info["bytes"],
                "delta_bytes": info["bytes"] - before,
                "first_call_s": round(dt, 2),
            }
        )
        before = info["bytes"]
    return {"rows": rows, "spatial_layers": len(layers), "all_layers_bytes_one_image": sum(
        li.shape[0] * li.shape[1] * li.shape[2] * 4 for li in layers)}  # fmt: skip


def cache_bound(n: int) -> dict[str, Any]:
    eng = common.engine(224, cache_bytes=2 * MIB)
    imgs = common.variants(n + 16)
    peak = 0
    trace = []
    for img in imgs[:n]:
        eng.cam(img, 281)
        info = eng.cache_info()
        peak = max(peak, info["bytes"])
        trace.append(info["bytes"])
    eng.cam(imgs[n:], 281)  # a batch of 16 in one call
    info = eng.cache_info()
    peak = max(peak, info["bytes"])
    # the first photo was evicted long ago: asking again costs a forward pass (a miss), as it should
    misses = info["misses"]
    eng.cam(imgs[0], 281)
    refetch_missed = eng.cache_info()["misses"] == misses + 1
    return {
        "max_bytes": info["max_bytes"],
        "peak_bytes": peak,
        "bytes_after_each_call": trace,
        "final": eng.cache_info(),
        "respected": peak <= info["max_bytes"],
        "evicted_image_recomputed": refetch_missed,
    }


def _explorer(engine: Any, **kw: Any) -> Any:
    import cam_widget

    return cam_widget.CAMExplorer(engine, cam_widget.sample_images(), threaded=False, **kw)


def _browse_step(ex: Any, rng: random.Random, names: list[str], cmaps: list[str]) -> str:
    r = rng.random()
    if r < 0.40:
        v = round(rng.uniform(0.0, 1.0), 2)
        if v == ex.alpha_control.value:
            v = round(1.0 - v, 2) if v != 0.5 else 0.51
        ex.alpha_control.value = v
        return "alpha"
    if r < 0.60:
        ex.colormap_control.value = rng.choice([c for c in cmaps if c != ex.colormap_control.value])
        return "colormap"
    if r < 0.85:
        top = [v for _, v in ex.class_control.options[:5]]
        ex.class_control.value = rng.choice([c for c in top if c != ex.class_control.value])
        return "class"
    ex.image_control.value = rng.choice([n for n in names if n != ex.image_control.value])
    return "image"


def rss_over_changes(engine: Any, changes: int, warmup: int, worst_case: bool) -> dict[str, Any]:
    import gc

    from cam_widget import render

    gc.collect()
    rss_start = rss_bytes()
    ex = _explorer(engine)
    names = list(ex.image_names)
    cmaps = list(render.CURATED_COLORMAPS)
    rng = random.Random(0)
    kinds: dict[str, int] = {}
    t0 = now()
    for _ in range(warmup):
        _browse_step(ex, rng, names, cmaps)
    gc.collect()
    rss0 = rss_bytes()
    samples = [(0, rss0)]
    for i in range(1, changes + 1):
        if worst_case:
            ex.class_control.value = (i * 7) % engine.num_classes or 1
            if i % 25 == 0:
                ex.image_control.value = names[(i // 25) % len(names)]
            kind = "class (never seen)"
        else:
            kind = _browse_step(ex, rng, names, cmaps)
        kinds[kind] = kinds.get(kind, 0) + 1
        if i % 50 == 0:
            samples.append((i, rss_bytes()))
    gc.collect()
    rss1 = rss_bytes()
    elapsed = now() - t0
    maps = getattr(ex, "_maps", None)  # the widget's index-map cache (internal; read only)
    out = {
        "scenario": "worst case: a never-seen class every change" if worst_case else "browsing",
        "changes": changes,
        "warmup_changes": warmup,
        "kinds": kinds,
        "rss_before_widget_mib": round(rss_start / MIB, 1),
        "rss_after_warmup_mib": round(rss0 / MIB, 1),
        "rss_end_mib": round(rss1 / MIB, 1),
        "growth_mib": round((rss1 - rss0) / MIB, 2),
        "growth_incl_warmup_mib": round((rss1 - rss_start) / MIB, 2),
        "samples_mib": [(i, round(b / MIB, 2)) for i, b in samples],
        "engine_cache": engine.cache_info(),
        "widget_map_cache": maps.info() if maps is not None and hasattr(maps, "info") else None,
        "seconds": round(elapsed, 1),
    }
    ex.close()
    return out


def run(quick: bool = False, repeats: int | None = None, engine: Any = None) -> dict[str, Any]:
    engine = engine or common.engine(224)
    res: dict[str, Any] = {}
    log("[memory] cache vs images")
    res["cache_vs_images"] = cache_vs_images(8 if quick else 32)
    log("[memory] cache vs layers")
    res["cache_vs_layers"] = cache_vs_layers(3 if quick else 8)
    log("[memory] cache bound")
    res["cache_bound"] = cache_bound(8 if quick else 32)
    log("[memory] widget map-cache bound")
    # the widget's index-map cache under a 1 MiB bound
    small = _explorer(engine, map_cache_bytes=1 * MIB)
    peak = 0
    for c in range(10, 10 + (20 if quick else 60)):
        small.class_control.value = c
        peak = max(peak, small._maps.info()["bytes"])
    res["widget_map_cache_bound"] = {"max_bytes": 1 * MIB, "peak_bytes": peak, "respected": peak <= 1 * MIB}
    small.close()
    log("[memory] RSS over control changes")
    changes = 100 if quick else 1000
    res["rss"] = rss_over_changes(engine, changes, warmup=50 if quick else 300, worst_case=False)
    if not quick:
        log("[memory] RSS, worst case")
        res["rss_worst_case"] = rss_over_changes(engine, changes, warmup=50, worst_case=True)
    res["target"] = {
        "rss_growth_mib_max": 20,
        "rss_growth_mib": res["rss"]["growth_mib"],
        "met": res["rss"]["growth_mib"] < 20,
        "scaled_to_1000_changes": changes != 1000,
    }
    return res


def main(argv: list[str] | None = None) -> int:
    body, path = common.run_cli(NAME, __doc__, run, argv)
    ci = body["cache_vs_images"]
    print(
        f"cache per image: {ci['measured_bytes_per_image']} bytes (expected {ci['expected_bytes_per_image']})"
    )
    for r in body["cache_vs_layers"]["rows"]:
        print(
            f"  layer {r['layer']:28s} {r['shape']} +{r['delta_bytes']} bytes (expected {r['feature_bytes_expected']})"
        )
    cb = body["cache_bound"]
    print(f"bound: peak {cb['peak_bytes']} <= {cb['max_bytes']}: {cb['respected']}; final {cb['final']}")
    print("widget map cache bound:", body["widget_map_cache_bound"])
    for k in ("rss", "rss_worst_case"):
        if k in body:
            r = body[k]
            print(f"{r['scenario']}: RSS {r['rss_after_warmup_mib']} -> {r['rss_end_mib']} MiB "
                  f"(+{r['growth_mib']} MiB over {r['changes']} changes, {r['kinds']})")  # fmt: skip
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
