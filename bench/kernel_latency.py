"""Benchmark 1: interaction latency in the kernel.

Time from a control change to the new overlay bytes being ready in ``CAMExplorer.image_widget.value`` (the widget
renders synchronously outside a kernel, so the assignment returns when the frame is encoded), for class, alpha,
colormap and layer changes, first time and cached, at 224 px and 1024 px display; versus the seed's naive path
(:mod:`bench.seed`: forward pass + per-channel Python loop + matplotlib PNG) for the same photo and size, and
versus the floor of any overlay (one LUT blend + one JPEG encode, :mod:`cam_widget.render` called directly),
all measured in the same run, interleaved round by round so that machine noise hits every path alike.

    .venv/bin/python -m bench.kernel_latency [--quick]
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from . import common
from .common import log, now, ratio, stats
from .profiling import profile_calls

NAME = "kernel_latency"
#: Cases whose target is ">= 100x faster than the seed" (aim 500x).
TARGET_CASES = ("class_first", "class_cached", "alpha", "colormap")


def _explorer(engine: Any, src: Any, display: int, **kw: Any) -> Any:
    import cam_widget

    return cam_widget.CAMExplorer(engine, {"photo": src}, display_size=display, threaded=False, **kw)


def _setter(ex: Any, control: Any, values: list[Any]) -> Any:
    """``fn(i)``: set ``control`` to ``values[i % n]`` (the widget renders synchronously) and check a new frame
    was published."""

    def fn(i: int) -> None:
        value = values[i % len(values)]
        if value == control.value:  # never a no-op change
            value = values[(i + 1) % len(values)]
        before = ex.image_widget.value
        control.value = value
        if ex.image_widget.value is before:
            raise RuntimeError(f"no new frame after setting {control.description} to {value!r}")

    return fn


def measure_size(
    engine: Any,
    display: int,
    rounds: int,
    per_round: int,
    layer_reps: int,
    profile: bool,
    layer_offset: int = 0,
) -> dict:
    import numpy as np

    from cam_widget import render

    from .seed import SeedPath

    src = common.at_longest(common.photo(), display)
    ex = _explorer(engine, src, display)
    fmt = ex.image_widget.format
    h, w = src.shape[:2]
    top = [i for i, *_ in engine.top_k(src, 5)]
    log(f"[kernel] {display} px: frame {w}x{h} {fmt}, top-5 {top}")

    # ---- the controls ------------------------------------------------------------------------------------
    alphas = [round(0.2 + 0.01 * k, 2) for k in range(60)]
    curated = list(render.CURATED_COLORMAPS)
    fresh_cmaps = [c for c in render.colormap_names() if c not in curated and not c.endswith("_r")]
    fresh_cmaps += [c for c in render.colormap_names() if c.endswith("_r") and c[:-2] not in curated]
    fresh_classes = [c for c in range(3, 1000, 7) if c not in top]
    seed = SeedPath(engine)

    # The "before" of the fixes that landed is measured by bench/before_after.py (an exported older cam_widget).
    idx = render.to_index(engine.cam(src, top[0]), (h, w))

    # warm every cached path once
    for c in [*top, top[0]]:
        ex.class_control.value = c
    for cm in [*curated, "jet"]:
        ex.colormap_control.value = cm
    ex.alpha_control.value = 0.5
    seed.frame(src, src, top[0])
    render.encode(render.blend(src, idx), "jpeg")

    names = ("alpha", "colormap", "colormap_first", "class_cached", "class_first")
    cases: dict[str, list[float]] = {
        k: [] for k in ("seed", *names, "floor")
    }
    seed_parts: dict[str, list[float]] = {"forward": [], "loop": [], "figure": []}
    widget_parts: dict[str, dict[str, list[float]]] = {}
    counters = dict.fromkeys(cases, 0)

    def setters(e: Any) -> dict[str, Any]:
        return {
            "alpha": _setter(e, e.alpha_control, alphas),
            "colormap": _setter(e, e.colormap_control, curated[1:] + curated[:1]),
            "colormap_first": _setter(e, e.colormap_control, fresh_cmaps),
            "class_cached": _setter(e, e.class_control, top[1:] + top[:1]),
            "class_first": _setter(e, e.class_control, fresh_classes),
        }

    before = setters(ex)

    def timed(case: str) -> None:
        fn = before[case]
        i = counters[case]
        counters[case] += 1
        t0 = now()
        fn(i)
        cases[case].append(now() - t0)
        parts = widget_parts.setdefault(case, {})
        for k, v in ex.last_timings.items():
            parts.setdefault(k, []).append(v)

    def floor(i: int) -> None:
        render.encode(render.blend(src, idx, "jet", alphas[i % len(alphas)]), "jpeg", 90)

    for r in range(rounds):
        _png, parts = seed.frame(src, src, top[r % len(top)], 0.5, "jet")
        cases["seed"].append(parts["total"])
        for k in seed_parts:
            seed_parts[k].append(parts[k])
        for _ in range(per_round):
            for case in ("alpha", "colormap", "class_cached"):
                timed(case)
            t0 = now()
            floor(r)
            cases["floor"].append(now() - t0)
        # first-time cases: a colormap never shown, a class never shown (engine features are cached)
        for case in ("colormap_first", "class_first"):
            timed(case)
        ex.class_control.value = top[0]  # back to a cached class for the next round
        ex.colormap_control.value = "jet"
    set_alpha, set_class_first = before["alpha"], before["class_first"]

    # ---- layer changes (Grad-CAM: only the model's own layer has an exact-CAM head) -------------------------
    spatial = [li for li in engine.layers() if li.name != engine.cam_layer]
    # a spread of resolutions: 14x14, 28x28 and 56x56 blocks, last layers of their stage
    picks: list[Any] = []
    for k in (1, 2):  # the last, then the second-to-last activation of each stage
        for res in (14, 28, 56, 7):
            cands = [li for li in spatial if li.shape[0] == res and "activation" in li.name]
            if len(cands) >= k:
                picks.append(cands[-k])
    # each display size starts at other layers, so "first ever" really is the first use of that layer's graph
    picks = picks[layer_offset:] + picks[:layer_offset]
    ex.method_control.value = "gradcam"  # gradient pass at the CAM layer (traces the Grad-CAM graph there)
    layer_cold, layer_traced, layer_cached = [], [], []
    for li in picks[:layer_reps]:
        t0 = now()
        ex.layer_control.value = li.name  # first ever at this layer: traces the Grad-CAM graph, then runs it
        layer_cold.append(now() - t0)
    names = [li.name for li in picks[:layer_reps]] or [engine.cam_layer]
    for k in range(rounds):
        name = names[k % len(names)]
        ex.layer_control.value = engine.cam_layer
        ex.clear_cache()
        engine.clear_cache()
        engine.logits(src)  # the image's logits are back; the layer's features and map are not
        t0 = now()
        ex.layer_control.value = name  # first time for this image: one gradient pass (batched over the top-k)
        layer_traced.append(now() - t0)
        ex.layer_control.value = engine.cam_layer  # not timed: its maps went with the cleared caches
        t0 = now()
        ex.layer_control.value = name  # cached map
        layer_cached.append(now() - t0)
        t0 = now()
        ex.layer_control.value = engine.cam_layer  # cached map
        layer_cached.append(now() - t0)
    ex.layer_control.value = engine.cam_layer
    ex.method_control.value = "cam"

    out: dict[str, Any] = {
        "display": display,
        "frame": {"width": w, "height": h, "format": fmt, "bytes": len(ex.image_widget.value)},
        "top5": top,
        "cases": {k: stats(v) for k, v in cases.items()},
        "seed_breakdown": {k: stats(v) for k, v in seed_parts.items()},
        "widget_breakdown": {
            case: {k: stats(v)["median_ms"] for k, v in parts.items()} for case, parts in widget_parts.items()
        },
        "layer": {
            "layers": [f"{li.name} ({li.shape[0]}x{li.shape[1]}x{li.shape[2]})" for li in picks[:layer_reps]],
            "first_with_trace": stats(layer_cold),
            "first_traced": stats(layer_traced),
            "cached": stats(layer_cached),
        },
    }
    out["cases"]["layer_first_with_trace"] = out["layer"]["first_with_trace"]
    out["cases"]["layer_first"] = out["layer"]["first_traced"]
    out["cases"]["layer_cached"] = out["layer"]["cached"]
    seed_med = out["cases"]["seed"]
    out["speedup_vs_seed"] = {k: ratio(seed_med, v) for k, v in out["cases"].items() if k != "seed"}
    out["seed_without_forward_ms"] = round(
        float(np.median([a + b for a, b in zip(seed_parts["loop"], seed_parts["figure"], strict=True)]))
        * 1e3,
        3,
    )
    out["targets"] = {
        k: {
            "speedup": out["speedup_vs_seed"][k],
            "target": 100,
            "aim": 500,
            "met": bool(out["speedup_vs_seed"][k] and out["speedup_vs_seed"][k] >= 100),
        }
        for k in TARGET_CASES
    }
    if profile:
        n = 30
        out["profile"] = {
            "alpha": profile_calls(set_alpha, n),
            "class_first": profile_calls(set_class_first, n),
        }
        ex.class_control.value = top[0]
    ex.close()
    return out


def run(quick: bool = False, repeats: int | None = None, engine: Any = None) -> dict[str, Any]:
    engine = engine or common.engine(224)
    sizes = (224, 1024)
    rounds = repeats or (3 if quick else 15)
    per_round = 2 if quick else 4
    layer_reps = 1 if quick else 2
    results = [
        measure_size(engine, d, rounds, per_round, layer_reps, profile=not quick, layer_offset=j * layer_reps)
        for j, d in enumerate(sizes)
    ]
    return {
        "photo": common.PHOTO,
        "method": (
            "CAMExplorer(engine, {photo}, display_size=D, threaded=False): each case times `control.value = v` "
            "until the new frame's bytes are in image_widget.value. Seed: bench/seed.py. Floor: render.blend + "
            "render.encode(JPEG q90) on the same display-size photo. Rounds interleave seed, widget and floor."
        ),
        "rounds": rounds,
        "sizes": results,
    }


def main(argv: list[str] | None = None) -> int:
    body, path = common.run_cli(NAME, __doc__, run, argv)
    for s in body["sizes"]:
        c = s["cases"]
        print(f"{s['display']} px ({s['frame']['width']}x{s['frame']['height']} {s['frame']['format']}):")
        for k in c:
            sp = s["speedup_vs_seed"].get(k)
            print(
                f"  {k:24s} {common.fmt_ms(c[k]['median_ms']):>12s}" + (f"  {sp:8.1f}x vs seed" if sp else "")
            )
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
