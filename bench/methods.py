"""Benchmark: the CAM method family (issue 11) on the default model at its CAM layer (7x7x1280), side by side.

* **method switch** for a cached (image, layer, class): ``engine.cam(img, c, method=m)`` cycling the five gradient
  methods, vs **today's class change** (``engine.cam(img, c')`` cycling the top-5 with exact CAM on cached
  features).  The FIRST switch per (class, method) after the panel's top-k request for one gradient method (the
  class change that made the gradient pass) is timed apart: that request cached every cheap method's map
  (``cam_widget.methods.companions``), so it must be a lookup too; the later switches are switches back.  Photos are read-only arrays, as the panel holds them (hashed once).  Engine-only and with the
  frame's ``render.to_index`` (upsample + normalise to 512 px, what the panel
  does per frame).  Target: switch <= 1.5x the class change; no forward or gradient pass (cache counters).
* **top-5 gradient pass**: cold cache, ``engine.cam([img] * 5, top5, method=m)`` for all five gradient methods
  (one gradient pass, the rest from cached gradients) vs today's Grad-CAM top-5 pass: the fused pass of the
  engine before issue 11 (maps computed inside the ``tf.function``), rebuilt here from the public
  ``keras_graph.trace_model`` / ``feature_model``.  Target: <= 1.3x.
* **Score-CAM** images/s vs tf-keras-vis 0.8.7 ``Scorecam`` (its Faster Score-CAM, ``max_N``) on the same model,
  layer and channel count (64), given the logits (``ReplaceToLinear``: 0.8.7 softmaxes the outputs itself), raw
  maps (``expand_cam=False``, no ReLU, ``normalize_cam=False``), with the Pearson r (ours also with
  ``align_corners=True``, the peer's mask upsampling)
  of each pair of maps.  Target: >= 3x, r > 0.99.  Also the panel's case, Score-CAM for an image's top-5 classes:
  the engine runs the 64 masked passes once for all five classes, tf-keras-vis once per class.

    .venv/bin/python -m bench.methods [--quick]
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import numpy as np

from . import common
from .common import log, now, stats

NAME = "methods"
GRADIENT = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam")
CHANNELS = 64


def _old_gradcam_pass(engine: Any, layer: str) -> Any:
    """The Grad-CAM pass of the engine before issue 11: one tf.function returning logits, features and maps."""
    import tensorflow as tf

    from cam_widget.keras_graph import feature_model, trace_model

    model = feature_model(trace_model(engine.model, engine.input_size), [layer])
    spec = tf.TensorSpec((None, *engine.input_size, 3), tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec((None,), tf.int32)])
    def compiled(x: Any, cls: Any) -> tuple:
        with tf.GradientTape() as tape:
            logits, feats = model(x, training=False)
            chosen = tf.gather(logits, cls, axis=1, batch_dims=1)
        grads = tape.gradient(chosen, feats)
        return logits, feats, tf.einsum("bhwk,bk->bhw", feats, tf.reduce_mean(grads, axis=[1, 2]))

    def run(rgb: np.ndarray, classes: list[int]) -> np.ndarray:
        x = np.stack([engine.model_input(rgb)] * len(classes))  # model_input of the same photo: as the old engine
        return np.asarray(compiled(x, np.asarray(classes, np.int32))[2])

    return run


def _switch(engine: Any, img: np.ndarray, top: list[int], reps: int) -> dict[str, Any]:
    from cam_widget import render

    engine.cam([img] * len(top), top, method="gradcam")  # the panel's top-k prefetch: one gradient pass
    before = engine.cache_info()
    # first switch: the first request of each (class, method) pair after the top-k request above
    first = []
    for c in top:
        for m in GRADIENT[1:]:
            t0 = now()
            engine.cam(img, c, method=m)
            first.append(now() - t0)
    display = (512, 512)

    def class_change(i: int) -> np.ndarray:
        return engine.cam(img, top[i % len(top)])

    def method_switch(i: int) -> np.ndarray:
        return engine.cam(img, top[0], method=GRADIENT[i % len(GRADIENT)])

    def with_render(fn: Any) -> Any:
        return lambda i: render.to_index(fn(i), display, normalize="minmax", relu=True)

    n = reps * 200
    out = {
        "method_switch_first": stats(first),
        "class_change": stats(common.time_calls(class_change, n, warmup=10)),
        "method_switch": stats(common.time_calls(method_switch, n, warmup=10)),
        "class_change_render": stats(common.time_calls(with_render(class_change), n // 4, warmup=5)),
        "method_switch_render": stats(common.time_calls(with_render(method_switch), n // 4, warmup=5)),
    }
    after = engine.cache_info()
    out["passes_during_switching"] = {
        k: after[k] - before[k] for k in ("forward_passes", "gradient_passes", "tail_passes", "misses")
    }
    out["ratio"] = common.ratio(out["method_switch"], out["class_change"])
    out["ratio_first"] = common.ratio(out["method_switch_first"], out["class_change"])
    out["ratio_render"] = common.ratio(out["method_switch_render"], out["class_change_render"])
    return out


def _top5(engine: Any, images: list[np.ndarray], reps: int) -> dict[str, Any]:
    layer = engine.cam_layer
    old = _old_gradcam_pass(engine, layer)
    tops = [[i for i, _, _ in engine.top_k(im, 5)] for im in images]
    old(images[0], tops[0])  # trace once
    engine.clear_cache()
    engine.cam([images[0]] * 5, tops[0], method="gradcam")  # trace once
    old_s, new_s, new_gradcam_s = [], [], []
    for _ in range(reps):  # interleaved
        for im, top in zip(images, tops, strict=True):
            t0 = now()
            old(im, top)
            old_s.append(now() - t0)
            engine.clear_cache()
            t0 = now()
            engine.cam([im] * 5, top, method="gradcam")
            new_gradcam_s.append(now() - t0)
            for m in GRADIENT[1:]:
                engine.cam([im] * 5, top, method=m)
            new_s.append(now() - t0)
    out = {
        "today_gradcam_top5": stats(old_s),
        "engine_gradcam_top5": stats(new_gradcam_s),
        "engine_all_five_methods_top5": stats(new_s),
    }
    out["ratio"] = common.ratio(out["engine_all_five_methods_top5"], out["today_gradcam_top5"])
    out["ratio_gradcam_only"] = common.ratio(out["engine_gradcam_top5"], out["today_gradcam_top5"])
    return out


def _peer_scorecam(engine: Any) -> tuple[Any, dict[str, Any]]:
    info: dict[str, Any] = {"package": "tf-keras-vis"}
    try:
        from importlib import metadata

        info["version"] = metadata.version("tf-keras-vis")
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

        # 0.8.7 softmaxes the model's outputs itself, so it is given the logits (its documented set-up)
        sc = Scorecam(engine.model, model_modifier=ReplaceToLinear(), clone=True)
        info["runs_on_keras3"] = True
        return sc, info
    except Exception as exc:
        info["runs_on_keras3"] = False
        info["error"] = f"{type(exc).__name__}: {exc}"
        info["traceback"] = traceback.format_exc()[-3000:]
        return None, info


def _scorecam(engine: Any, images: list[np.ndarray], reps: int) -> dict[str, Any]:
    layer = engine.cam_layer
    classes = [engine.top_k(im, 1)[0][0] for im in images]
    peer, info = _peer_scorecam(engine)
    ours_s: list[float] = []
    peer_s: list[float] = []
    rs: list[float] = []
    rs_aligned: list[float] = []

    def ours(im: np.ndarray, c: int) -> np.ndarray:
        return engine.cam(im, c, method="scorecam", max_channels=CHANNELS, batch_size=32)

    def theirs(im: np.ndarray, c: int) -> np.ndarray:
        from tf_keras_vis.utils.scores import CategoricalScore

        x = engine.model_input(im)[None]
        m = peer(CategoricalScore([c]), x, penultimate_layer=layer, seek_penultimate_conv_layer=False,
                 activation_modifier=None, batch_size=32, max_N=CHANNELS, expand_cam=False, normalize_cam=False)
        return np.asarray(m)[0]

    ours(images[0], classes[0])  # trace once
    engine.clear_cache()
    if peer is not None:
        try:
            theirs(images[0], classes[0])
        except Exception as exc:
            info["runs_on_keras3"] = False
            info["error"] = f"{type(exc).__name__}: {exc}"
            info["traceback"] = traceback.format_exc()[-3000:]
            peer = None
    for rep in range(reps):
        for im, c in zip(images, classes, strict=True):
            engine.clear_cache()  # cold: features and the 64 masked passes
            t0 = now()
            a = ours(im, c)
            ours_s.append(now() - t0)
            if peer is not None:
                t0 = now()
                b = theirs(im, c)
                peer_s.append(now() - t0)
                if rep == 0:
                    rs.append(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
                    # tf-keras-vis upsamples the masks corner-aligned (scipy zoom); the same option here
                    al = engine.cam(im, c, method="scorecam", max_channels=CHANNELS, align_corners=True)
                    rs_aligned.append(float(np.corrcoef(al.ravel(), b.ravel())[0, 1]))
    breakdown = _masked_breakdown(engine, images)
    top5: dict[str, Any] = {}
    if peer is not None:  # the panel's case: Score-CAM for each of an image's top-5 classes
        from tf_keras_vis.utils.scores import CategoricalScore

        im = images[0]
        top = [i for i, _, _ in engine.top_k(im, 5)]
        engine.clear_cache()
        t0 = now()
        engine.cam([im] * 5, top, method="scorecam", max_channels=CHANNELS, batch_size=32)
        top5["engine_s"] = round(now() - t0, 3)
        x = np.stack([engine.model_input(im)] * 5)
        t0 = now()
        peer(CategoricalScore(top), x, penultimate_layer=layer, seek_penultimate_conv_layer=False,
             activation_modifier=None, batch_size=32, max_N=CHANNELS, expand_cam=False, normalize_cam=False)
        top5["tf_keras_vis_s"] = round(now() - t0, 3)
        top5["ratio"] = round(top5["tf_keras_vis_s"] / top5["engine_s"], 2)
    n = len(images)
    out: dict[str, Any] = {
        "top5_classes_one_image": top5,
        "masked_pass_breakdown": breakdown,
        "layer": layer,
        "layer_shape": list(engine.layer(layer).shape),
        "channels": CHANNELS,
        "peer": info,
        "engine": {**stats(ours_s), "images_per_s": round(len(ours_s) / sum(ours_s), 3)},
        "images": n,
    }
    if peer_s:
        out["tf_keras_vis"] = {**stats(peer_s), "images_per_s": round(len(peer_s) / sum(peer_s), 3)}
        out["ratio"] = round(out["engine"]["images_per_s"] / out["tf_keras_vis"]["images_per_s"], 2)
        out["map_r"] = {"min": round(min(rs), 5), "median": round(float(np.median(rs)), 5), "all": [round(r, 5) for r in rs]}
        out["map_r_align_corners"] = {
            "min": round(min(rs_aligned), 5), "median": round(float(np.median(rs_aligned)), 5),
            "all": [round(r, 5) for r in rs_aligned],
        }
    return out


def _masked_breakdown(engine: Any, images: list[np.ndarray]) -> dict[str, Any]:
    """Where one image's Score-CAM time goes, side by side: the features pass (one image, cold) and the 64 masked
    inputs (2 batches of 32, masks built in the graph) with the weights frozen into the graph and the depthwise
    batch norms folded (what the engine runs) and kept as variables (the same graph unfrozen)."""
    from cam_widget.methods.perturbation import select_channels

    layer = engine.cam_layer
    frozen = engine._passes.masked(False, True)[0]
    unfrozen = engine._passes.masked(False, False)[0]
    feats_s: list[float] = []
    runs: dict[str, list[float]] = {"frozen": [], "unfrozen": []}
    inputs = [engine.model_input(im) for im in images]
    maps = []
    for im in images:
        f = engine.features(im, layer)
        maps.append(np.moveaxis(f[..., select_channels(f, CHANNELS)], -1, 0))
    for fn in (frozen, unfrozen):
        fn(maps[0][:32], inputs[0])  # traced once
    for im, x, m in zip(images, inputs, maps, strict=True):
        engine.clear_cache()
        t0 = now()
        engine.features(im, layer)
        feats_s.append(now() - t0)
        for name, fn in (("frozen", frozen), ("unfrozen", unfrozen)):
            t0 = now()
            for start in range(0, len(m), 32):
                fn(m[start : start + 32], x)
            runs[name].append(now() - t0)
    out = {"features_pass": stats(feats_s), **{f"masked_{k}": stats(v) for k, v in runs.items()}}
    out["frozen_vs_unfrozen"] = common.ratio(out["masked_frozen"], out["masked_unfrozen"])
    return out


def _frozen(rgb: np.ndarray) -> np.ndarray:
    """A read-only copy owning its pixels, as the panel holds its photos (ui/photos.py): hashed once."""
    out = np.array(rgb)
    out.setflags(write=False)
    return out


def run(quick: bool = False, repeats: int | None = None, engine: Any = None) -> dict[str, Any]:
    engine = engine or common.engine(224)
    reps = repeats or (1 if quick else 3)
    img = _frozen(common.photo())
    top = [i for i, _, _ in engine.top_k(img, 5)]
    log("[methods] method switch vs class change")
    switch = _switch(engine, img, top, reps)
    log("[methods] top-5 gradient pass")
    top5 = _top5(engine, [_frozen(v) for v in common.variants(2 if quick else 6)], reps)
    log("[methods] Score-CAM vs tf-keras-vis Scorecam")
    score = _scorecam(engine, common.variants(2 if quick else 6), 1 if quick else 2)
    targets = {
        "method_switch_vs_class_change": {"target": 1.5, "value": switch["ratio"],
                                          "met": switch["ratio"] is not None and switch["ratio"] <= 1.5},
        "top5_all_gradient_methods_vs_today_gradcam": {"target": 1.3, "value": top5["ratio"],
                                                       "met": top5["ratio"] is not None and top5["ratio"] <= 1.3},
        "scorecam_vs_tf_keras_vis": {"target": 3.0, "value": score.get("ratio"),
                                     "met": score.get("ratio") is not None and score["ratio"] >= 3.0
                                     and score["map_r_align_corners"]["min"] > 0.99},
    }
    return {"layer": engine.cam_layer, "switch": switch, "top5": top5, "scorecam": score, "targets": targets}


def main(argv: list[str] | None = None) -> int:
    body, path = common.run_cli(NAME, __doc__, run, argv)
    for k, v in body["targets"].items():
        print(f"{k:45s} {v['value']}  (target {v['target']}, met: {v['met']})")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def summary_rows(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Rows of BENCHMARKS.md's "Targets at a glance" table: (what, target, measured, met)."""
    t = r["targets"]
    sc = r["scorecam"]
    r_text = f", r >= {sc['map_r_align_corners']['min']:.4f}" if "map_r_align_corners" in sc else ""
    rows = [
        ("methods: switch back to a gradient method already shown for a cached class vs a class change (engine)",
         "<= 1.5x", f"{t['method_switch_vs_class_change']['value']}x", t["method_switch_vs_class_change"]["met"]),
        ("methods: top-5 gradient pass + all five gradient methods vs today's Grad-CAM top-5 pass", "<= 1.3x",
         f"{t['top5_all_gradient_methods_vs_today_gradcam']['value']}x",
         t["top5_all_gradient_methods_vs_today_gradcam"]["met"]),
        ("methods: Score-CAM images/s vs tf-keras-vis `Scorecam` (64 channels, one class)", ">= 3x, r > 0.99",
         f"{t['scorecam_vs_tf_keras_vis']['value']}x{r_text}", t["scorecam_vs_tf_keras_vis"]["met"]),
    ]
    if "method_switch_first" in r["switch"]:
        ratio = r["switch"].get("ratio_first")
        rows.insert(1, ("methods: FIRST switch to a gradient method for a cached class vs a class change (engine)",
                        "<= 1.5x", f"{ratio}x", ratio is not None and ratio <= 1.5))
    return rows


def report_lines(r: dict[str, Any]) -> list[str]:
    """The BENCHMARKS.md section (bench/report.py calls this)."""
    from .common import fmt_ms

    def yes(t: dict[str, Any]) -> str:
        return "yes" if t["met"] else "**no**"

    sw, t5, sc, tg = r["switch"], r["top5"], r["scorecam"], r["targets"]
    lines = [
        f"## CAM methods (issue 11), default model at `{r['layer']}`",
        "",
        f"Reproduce: `{r.get('command', '.venv/bin/python -m bench.methods')}`"
        + (" (quick run: too few repeats to quote)" if r.get("quick") else "") + ". Machine shared and loaded: "
        f"load averages {r.get('load_before', {}).get('loadavg', 'n/a')} before the run.",
        "",
        "| target | wanted | measured | met |",
        "|---|---|---|---|",
        f"| switch back to a gradient method (5 methods, cached class and map) vs class change (exact CAM), engine "
        f"only | <= 1.5x | "
        f"{sw['ratio']}x ({fmt_ms(sw['method_switch']['median_ms'])} vs {fmt_ms(sw['class_change']['median_ms'])}) | "
        f"{yes(tg['method_switch_vs_class_change'])} |",
        f"| top-5 gradient pass + all five gradient methods vs today's Grad-CAM top-5 pass | <= 1.3x | {t5['ratio']}x "
        f"({fmt_ms(t5['engine_all_five_methods_top5']['median_ms'])} vs {fmt_ms(t5['today_gradcam_top5']['median_ms'])}) | "
        f"{yes(tg['top5_all_gradient_methods_vs_today_gradcam'])} |",
    ]
    if "tf_keras_vis" in sc:
        lines.append(
            f"| Score-CAM images/s vs tf-keras-vis {sc['peer'].get('version', '')} `Scorecam`, {sc['channels']} of "
            f"{sc['layer_shape'][2]} channels, one class per image | >= 3x, r > 0.99 | {sc['ratio']}x "
            f"({sc['engine']['images_per_s']:.3f} vs {sc['tf_keras_vis']['images_per_s']:.3f} images/s), "
            f"r >= {sc['map_r_align_corners']['min']:.4f} with the peer's mask upsampling | "
            f"{yes(tg['scorecam_vs_tf_keras_vis'])} |"
        )
    else:
        lines.append(f"| Score-CAM vs tf-keras-vis | >= 3x | peer did not run: {sc['peer'].get('error')} | **no** |")
    lines += [
        "",
        f"- Switching: no network at all while switching (passes during the switching loop: "
        f"{sw['passes_during_switching']}). With the frame's render (upsample + normalise to 512 px) the switch is "
        f"{sw['ratio_render']}x the class change ({fmt_ms(sw['method_switch_render']['median_ms'])} vs "
        f"{fmt_ms(sw['class_change_render']['median_ms'])}).",
        "- The switch in the table is a switch back to a method already shown for that class: every map but exact CAM "
        "is cached in the engine's LRU, so it is a lookup. The FIRST switch to a method for a class is a lookup too: "
        "the top-k request that made the gradient pass also computed, with numpy on the gradients and features just "
        "fetched, every cheap method's map (the registry's `companions`: the five gradient methods and Eigen-CAM) "
        "for each class of that pass: "
        + (f"{fmt_ms(sw['method_switch_first']['median_ms'])} median over the top-5 x 4 other methods, "
           f"{sw.get('ratio_first')}x the class change (one cached matrix-vector product on read-only photos). "
           if "method_switch_first" in sw else "")
        + "Neither runs the network.",
        f"- Top-5 pass: the engine's Grad-CAM top-5 request is {t5['ratio_gradcam_only']}x today's fused pass; it "
        "returns the gradients and computes every cheap companion map with them, so the other four gradient methods "
        "of the row above are lookups.",
    ]
    top5 = sc.get("top5_classes_one_image") or {}
    if top5:
        lines.append(
            f"- Score-CAM for one image's top-5 classes (the panel's case): engine {top5['engine_s']:.1f} s, tf-keras-vis "
            f"{top5['tf_keras_vis_s']:.1f} s ({top5['ratio']}x): the engine runs the masked passes once for all classes."
        )
    if "map_r" in sc:
        lines.append(
            f"- Score-CAM maps: with `align_corners=True` (corner-aligned linear mask upsampling, what tf-keras-vis' "
            f"`scipy.ndimage.zoom` does) r = {sc['map_r_align_corners']['min']:.4f} .. "
            f"{max(sc['map_r_align_corners']['all']):.4f} over {sc['images']} photos; with the default pixel-centre "
            f"alignment (the authors' PyTorch `align_corners=False`) r = {sc['map_r']['min']:.3f} .. "
            f"{max(sc['map_r']['all']):.4f}: the half-cell shift of 7x7 masks at 224 px changes some maps."
        )
    bd = sc.get("masked_pass_breakdown") or {}
    if bd:
        lines.append(
            f"- Where one Score-CAM image's time goes (engine, side by side): features pass "
            f"{fmt_ms(bd['features_pass']['median_ms'])}; the 64 masked inputs (masks built inside the graph) "
            f"{fmt_ms(bd['masked_frozen']['median_ms'])} with the weights frozen into the graph (Grappler then folds "
            f"the batch normalisations into the convolutions; the engine folds those after the 16 depthwise convolutions, "
            f"which Grappler leaves, itself) vs {fmt_ms(bd['masked_unfrozen']['median_ms'])} with "
            f"them as variables ({bd['frozen_vs_unfrozen']}x). Tried and dropped: XLA `jit_compile=True` (35-90 s per 64 "
            "inputs on this CPU, measured once on the loaded machine), batches of 16 or 64 instead of 32 (within noise), oneDNN's "
            "`TF_ONEDNN_ASSUME_FROZEN_WEIGHTS` (within noise)."
        )
    lines.append(
        "- Both Score-CAMs run the same number of forward passes of the same network; ours runs them frozen with the "
        "masks made in the graph, tf-keras-vis through `model.predict` with scipy-zoomed masks and tiled inputs."
    )
    return [*lines, ""]
