"""Benchmark 5: scaling.

* time per interaction vs display size (224 -> 2048 px longest side; the photo is resized to that size first, so
  the widget shows it 1:1): alpha change and first-time class change, end to end through ``CAMExplorer``, with the
  widget's own breakdown, plus each rendering step alone (``to_index``, ``blend``, JPEG and PNG ``encode``) and,
  for comparison, a LUT colouring with ``cv2.applyColorMap`` (a candidate fix for ``blend``);
* vs source resolution at a fixed 768 px display: what a first-time class change pays for a big photo
  (``engine.cam`` hashes the full-resolution photo to find its cached features);
* vs number of cached images: a widget holding N photos (alpha, class and image changes stay flat), and the
  engine's cache when N photos cycle through a bound that holds 16 of them (LRU thrash: every call a forward pass).

    .venv/bin/python -m bench.scaling [--quick]
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from . import common
from .common import log, stats, time_calls

NAME = "scaling"


def _med(fn: Any, repeats: int, warmup: int = 1) -> float:
    return stats(time_calls(fn, repeats, warmup))["median_ms"]


def _alphas() -> list[float]:
    return [round(0.2 + 0.01 * k, 2) for k in range(60)]


def _widget(engine: Any, images: Any, display: int) -> Any:
    import cam_widget

    return cam_widget.CAMExplorer(engine, images, display_size=display, threaded=False)


def _display_row(engine: Any, d: int, repeats: int) -> dict[str, Any]:
    import cv2

    from cam_widget import render

    alphas = _alphas()
    src = common.at_longest(common.photo(), d)
    h, w = src.shape[:2]
    ex = _widget(engine, {"p": src}, d)
    top = [i for i, *_ in engine.top_k(src, 5)]
    fresh = [c for c in range(5, 1000, 11) if c not in top]
    parts: dict[str, list[float]] = {}

    def alpha(i: int) -> None:
        v = alphas[i % len(alphas)]
        ex.alpha_control.value = v if v != ex.alpha_control.value else 0.99

    def klass(i: int) -> None:
        ex.class_control.value = fresh[i % len(fresh)]

    def collect(fn: Any, tag: str) -> Any:
        def inner(i: int) -> None:
            fn(i)
            for k, v in ex.last_timings.items():
                parts.setdefault(f"{tag}.{k}", []).append(v)

        return inner

    a = _med(collect(alpha, "alpha"), repeats, warmup=2)
    c = _med(collect(klass, "class_first"), repeats, warmup=1)
    cam = engine.cam(src, top[0])
    idx = render.to_index(cam, (h, w))
    lut = render.colormap_lut("jet")
    lut3 = np.ascontiguousarray(lut.reshape(256, 1, 3))
    heat = lut[idx]
    assert (cv2.applyColorMap(idx, lut3) == heat).all()  # the candidate fix for blend is exact

    def to_index_candidate(i: int) -> Any:  # same rounding (half to even) and saturation in one OpenCV pass
        unit = render.normalize_cam(cam)
        return cv2.convertScaleAbs(cv2.resize(unit, (w, h), interpolation=cv2.INTER_LINEAR), alpha=255.0)

    assert (to_index_candidate(0) == idx).all()
    row = {
        "display": d,
        "width": w,
        "height": h,
        "megapixels": round(h * w / 1e6, 4),
        "widget_format": ex.image_widget.format,
        "alpha_change_ms": a,
        "class_first_ms": c,
        "widget_breakdown_ms": {k: round(float(np.median(v)) * 1e3, 3) for k, v in parts.items()},
        "engine_cam_ms": _med(lambda i: engine.cam(src, top[i % 5]), repeats),
        "engine_prepare_hash_ms": _med(lambda i: engine.prepare(src), repeats),
        "to_index_ms": _med(lambda i: render.to_index(cam, (h, w)), repeats),
        "to_index_convertscaleabs_ms": _med(to_index_candidate, repeats),
        "lut_fancy_index_ms": _med(lambda i: lut[idx], repeats),
        "lut_cv2_applycolormap_ms": _med(lambda i: cv2.applyColorMap(idx, lut3), repeats),
        "add_weighted_ms": _med(lambda i: cv2.addWeighted(heat, 0.5, src, 0.5, 0.0), repeats),
        "blend_ms": _med(lambda i: render.blend(src, idx, "jet", 0.5), repeats),
        "encode_jpeg90_ms": _med(lambda i: render.encode(src, "jpeg", 90), repeats),
        "encode_png_ms": _med(lambda i: render.encode(src, "png"), max(3, repeats // 3)),
    }
    log(f"[scaling] display {d}: alpha {a:.2f} ms, class first {c:.2f} ms")
    ex.close()
    return row


def vs_display(engine: Any, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    return [_display_row(engine, d, repeats) for d in sizes]


def _source_row(engine: Any, s: int, repeats: int) -> dict[str, Any]:
    src = common.at_longest(common.photo(), s)
    ex = _widget(engine, {"p": src}, 768)
    top = [i for i, *_ in engine.top_k(src, 5)]
    fresh = [c for c in range(6, 1000, 13) if c not in top]
    alphas = _alphas()

    def klass(i: int) -> None:
        ex.class_control.value = fresh[i % len(fresh)]

    def alpha(i: int) -> None:
        ex.alpha_control.value = alphas[i % len(alphas)]

    row = {
        "source_longest": s,
        "source_megapixels": round(src.shape[0] * src.shape[1] / 1e6, 3),
        "display": list(ex.overlay_rgb.shape[:2]),
        "class_first_ms": _med(klass, repeats),
        "alpha_change_ms": _med(alpha, repeats, warmup=2),
        "engine_prepare_hash_ms": _med(lambda i: engine.prepare(src), repeats),
    }
    log(f"[scaling] source {s}: {row}")
    ex.close()
    return row


def vs_source(engine: Any, sources: list[int], repeats: int) -> list[dict[str, Any]]:
    return [_source_row(engine, s, repeats) for s in sources]


def vs_cached_images(engine: Any, counts: list[int], cycles: list[int], repeats: int) -> dict[str, Any]:
    imgs_all = common.variants(max(*counts, *cycles), longest=512)  # all the same size: only the count varies
    # fill the engine's cache in batches (one forward pass per 32 photos)
    for k in range(0, len(imgs_all), 32):
        engine.cam(imgs_all[k : k + 32], 281)
    widget_rows = []
    alphas = _alphas()
    for n in counts:
        imgs = {f"img{i}": im for i, im in enumerate(imgs_all[:n])}
        ex = _widget(engine, imgs, 768)
        names = list(imgs)
        for name in names:  # visit every photo once: the widget caches its display copy and map
            ex.image_control.value = name
        last = names[-1]
        ex.image_control.value = last

        def alpha(i: int, ex: Any = ex) -> None:
            ex.alpha_control.value = alphas[i % len(alphas)]

        def revisit(i: int, ex: Any = ex, names: list[str] = names) -> None:
            # back and forth between two already-seen photos (n == 1: a class change instead)
            if len(names) > 1:
                ex.image_control.value = names[(i % 2) * (len(names) // 2)]
            else:
                ex.class_control.value = [v for _, v in ex.class_control.options[:5]][1 + i % 4]

        widget_rows.append(
            {
                "images": n,
                "alpha_change_ms": _med(alpha, repeats, warmup=2),
                "image_revisit_ms": _med(revisit, repeats, warmup=2),
                "engine_cache_bytes": engine.cache_info()["bytes"],
            }
        )
        log(f"[scaling] {n} images: {widget_rows[-1]}")
        ex.close()

    # the engine under a bound of 16 photos' worth of features, N photos cycling through it
    per_image = 254_880
    bounded = common.engine(224, cache_bytes=16 * per_image + 1024)
    engine_rows = []
    for n in cycles:
        bounded.clear_cache()
        bounded.cam(imgs_all[:n], 281)  # fill (one pass)
        before = bounded.cache_info()
        ts = time_calls(lambda i, n=n: bounded.cam(imgs_all[i % n], 281), max(n, repeats))
        after = bounded.cache_info()
        engine_rows.append(
            {
                "images_cycled": n,
                "fits_in_cache": n <= 16,
                "per_call_ms": stats(ts)["median_ms"],
                "forward_passes": after["forward_passes"] - before["forward_passes"],
                "calls": len(ts),
            }
        )
        log(f"[scaling] bounded engine, {n} photos cycling: {engine_rows[-1]}")
    return {"widget": widget_rows, "engine_bound_16_images": engine_rows}


def run(quick: bool = False, repeats: int | None = None, engine: Any = None) -> dict[str, Any]:
    engine = engine or common.engine(224)
    reps = repeats or (3 if quick else 15)
    sizes = [224, 768] if quick else [224, 384, 512, 768, 1024, 1536, 2048]
    sources = [768, 2048] if quick else [768, 1536, 3072, 4096]
    counts = [1, 8] if quick else [1, 8, 64, 256]
    res: dict[str, Any] = {"repeats": reps, "photo": common.PHOTO}
    res["vs_display"] = vs_display(engine, sizes, reps)
    res["vs_source"] = vs_source(engine, sources, reps)
    cycles = [8, 20] if quick else [4, 8, 16, 20, 32, 64]
    res["vs_cached_images"] = vs_cached_images(engine, counts, cycles, reps)
    # linear fits (ms per megapixel) of the pixel-bound steps
    rows = res["vs_display"]
    mp = np.array([r["megapixels"] for r in rows])
    fits = {}
    for key in ("alpha_change_ms", "class_first_ms", "to_index_ms", "blend_ms", "lut_fancy_index_ms",
                "lut_cv2_applycolormap_ms", "encode_jpeg90_ms", "encode_png_ms"):  # fmt: skip
        y = np.array([r[key] for r in rows])
        if len(mp) >= 2:
            slope, icpt = np.polyfit(mp, y, 1)
            fits[key] = {"ms_per_megapixel": round(float(slope), 2), "intercept_ms": round(float(icpt), 3)}
    res["fits"] = fits
    return res


def main(argv: list[str] | None = None) -> int:
    body, path = common.run_cli(NAME, __doc__, run, argv)
    for r in body["vs_display"]:
        print(f"{r['display']:5d} px {r['width']}x{r['height']} {r['widget_format']}: alpha {r['alpha_change_ms']:.2f} ms, "
              f"class {r['class_first_ms']:.2f} ms | to_index {r['to_index_ms']:.2f} blend {r['blend_ms']:.2f} "
              f"(LUT {r['lut_fancy_index_ms']:.2f}, applyColorMap {r['lut_cv2_applycolormap_ms']:.2f}) "
              f"jpeg {r['encode_jpeg90_ms']:.2f} png {r['encode_png_ms']:.2f}")  # fmt: skip
    for r in body["vs_source"]:
        print("source", r)
    for r in body["vs_cached_images"]["widget"]:
        print("widget", r)
    for r in body["vs_cached_images"]["engine_bound_16_images"]:
        print("engine", r)
    print("fits", body["fits"])
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
