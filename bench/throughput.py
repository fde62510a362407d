"""Benchmark 3: batch throughput (images/s) on the default model, 64 photos, cold caches.

* engine CAM: ``engine.cam(images, classes)`` (one batched forward pass, then one matrix-vector product per map);
* engine Grad-CAM: ``engine.cam(images, classes, method="gradcam")`` (one batched forward + backward pass);
* peer: tf-keras-vis 0.8.7 ``Gradcam`` (with ``ReplaceToLinear``, so gradients of logits like ours), on the same
  photos, same classes, same layer (``seek_penultimate_conv_layer=False``: otherwise it walks back from the
  activation layer to the conv layer before it and maps a different layer); raw maps (``expand_cam=False``) and its default (upsampled to the input and
  normalised, ``expand_cam=True``);
* the keras.io Grad-CAM recipe, written here from its documented algorithm (a ``keras.Model`` returning the layer
  and the predictions with the last activation removed, a ``GradientTape`` per image, gradients averaged over
  space, maps summed over channels), one photo at a time as the recipe does.

Every path starts from the same RGB photos and includes the same resize + preprocessing.  Caches are cleared before
each timed repeat; repeats are interleaved.  Maps are checked against each other (same method -> same map).

    .venv/bin/python -m bench.throughput [--quick]
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import numpy as np

from . import common
from .common import log, now, stats

NAME = "throughput"


def _unit(maps: np.ndarray) -> np.ndarray:
    """ReLU + per-map max normalisation (how both peers display maps), for comparing maps."""
    m = np.maximum(np.asarray(maps, np.float64), 0.0)
    peak = m.reshape(len(m), -1).max(axis=1).reshape(-1, 1, 1)
    return m / np.where(peak > 0, peak, 1.0)


class KerasIORecipe:
    """The keras.io "Grad-CAM class activation visualization" algorithm, one image per call."""

    def __init__(self, engine: Any, layer: str) -> None:
        import keras

        model = engine.model
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        clone.layers[-1].activation = keras.activations.linear  # the recipe removes the last softmax
        self.grad_model = keras.Model(clone.inputs, [clone.get_layer(layer).output, clone.output])
        self.engine = engine

    def heatmap(self, rgb: np.ndarray, class_index: int) -> np.ndarray:
        import tensorflow as tf

        x = self.engine.model_input(rgb)[None]
        with tf.GradientTape() as tape:
            conv_out, preds = self.grad_model([x])
            score = preds[:, class_index]
        grads = tape.gradient(score, conv_out)
        pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
        heat = tf.squeeze(conv_out[0] @ pooled[..., tf.newaxis])
        heat = tf.maximum(heat, 0) / tf.math.reduce_max(heat)
        return heat.numpy()


def _peer(engine: Any) -> tuple[Any, dict[str, Any]]:
    """tf-keras-vis ``Gradcam`` on the engine's model, or ``None`` and the exact error."""
    info: dict[str, Any] = {"package": "tf-keras-vis"}
    try:
        from importlib import metadata

        info["version"] = metadata.version("tf-keras-vis")
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

        t0 = now()
        gc = Gradcam(engine.model, model_modifier=ReplaceToLinear(), clone=True)
        info["construct_ms"] = round((now() - t0) * 1e3, 1)
        info["runs_on_keras3"] = True
        return gc, info
    except Exception as exc:  # record exactly why it cannot run
        info["runs_on_keras3"] = False
        info["error"] = f"{type(exc).__name__}: {exc}"
        info["traceback"] = traceback.format_exc()[-3000:]
        return None, info


def run(quick: bool = False, repeats: int | None = None, engine: Any = None) -> dict[str, Any]:
    engine = engine or common.engine(224)
    n = 8 if quick else 64
    n_recipe = 4 if quick else 16
    reps = repeats or (1 if quick else 5)
    layer = engine.cam_layer
    images = common.variants(n)
    classes = [int(np.argmax(p)) for p in engine.predict(images)]  # each photo's top-1 class
    engine.clear_cache()
    peer, peer_info = _peer(engine)
    recipe = KerasIORecipe(engine, layer)

    def prep() -> np.ndarray:
        return np.stack([engine.model_input(im) for im in images])

    def engine_cam() -> np.ndarray:
        engine.clear_cache()
        return engine.cam(images, classes)

    def engine_gradcam() -> np.ndarray:
        engine.clear_cache()
        return engine.cam(images, classes, method="gradcam")

    def engine_cam_224() -> list[np.ndarray]:
        from cam_widget import render

        engine.clear_cache()
        return [render.to_index(m, (224, 224)) for m in engine.cam(images, classes)]

    paths: dict[str, Any] = {
        "engine_cam": engine_cam,
        "engine_gradcam": engine_gradcam,
        "engine_cam_upsampled_224": engine_cam_224,
    }
    if peer is not None:
        from tf_keras_vis.utils.scores import CategoricalScore

        score = CategoricalScore(classes)
        paths["tf_keras_vis_gradcam_raw"] = lambda: peer(
            score,
            prep(),
            penultimate_layer=layer,
            seek_penultimate_conv_layer=False,
            expand_cam=False,
            normalize_cam=False,
        )
        paths["tf_keras_vis_gradcam_default"] = lambda: peer(
            score, prep(), penultimate_layer=layer, seek_penultimate_conv_layer=False
        )

    def recipe_run() -> list[np.ndarray]:
        return [recipe.heatmap(im, c) for im, c in zip(images[:n_recipe], classes[:n_recipe], strict=True)]

    paths["keras_io_recipe"] = recipe_run
    counts = {k: (n_recipe if k == "keras_io_recipe" else n) for k in paths}

    # warm-up: traces every graph once (not timed), and keeps the maps for the agreement check
    maps: dict[str, Any] = {}
    for k, fn in paths.items():
        t0 = now()
        maps[k] = fn()
        log(f"[throughput] warm-up {k}: {now() - t0:.2f} s")
    times: dict[str, list[float]] = {k: [] for k in paths}
    order = list(paths)
    for r in range(reps):
        for k in order if r % 2 == 0 else order[::-1]:
            common.quiet_gc()
            t0 = now()
            paths[k]()
            times[k].append(now() - t0)
        log(f"[throughput] repeat {r + 1}/{reps}: " + ", ".join(f"{k} {times[k][-1]:.2f}s" for k in order))

    res: dict[str, Any] = {}
    for k, ts in times.items():
        st = stats(ts)
        st["images"] = counts[k]
        st["images_per_s"] = round(counts[k] / (st["median_ms"] / 1e3), 2)
        res[k] = st

    # agreement: the same method must give the same maps
    agree: dict[str, Any] = {}
    g = _unit(maps["engine_gradcam"])
    c = _unit(maps["engine_cam"])
    agree["engine_cam_vs_engine_gradcam_max_abs"] = round(float(np.abs(g - c).max()), 5)
    if "tf_keras_vis_gradcam_raw" in maps:
        agree["tf_keras_vis_raw_vs_engine_gradcam_max_abs"] = round(
            float(np.abs(_unit(maps["tf_keras_vis_gradcam_raw"]) - g).max()), 5
        )
    agree["keras_io_recipe_vs_engine_gradcam_max_abs"] = round(
        float(np.abs(np.stack(maps["keras_io_recipe"]) - g[:n_recipe]).max()), 5
    )

    peer_key = "tf_keras_vis_gradcam_raw" if "tf_keras_vis_gradcam_raw" in res else "keras_io_recipe"
    cam_vs_peer = round(res["engine_cam"]["images_per_s"] / res[peer_key]["images_per_s"], 2)
    return {
        "images": n,
        "recipe_images": n_recipe,
        "repeats": reps,
        "layer": layer,
        "input_size": list(engine.input_size),
        "peer": peer_info,
        "paths": res,
        "agreement_after_relu_max_norm": agree,
        "ratios": {
            "engine_cam_vs_peer_gradcam": cam_vs_peer,
            "peer": peer_key,
            "engine_cam_vs_tf_keras_vis_default": (
                round(
                    res["engine_cam"]["images_per_s"] / res["tf_keras_vis_gradcam_default"]["images_per_s"], 2
                )
                if "tf_keras_vis_gradcam_default" in res
                else None
            ),
            "engine_gradcam_vs_peer_gradcam": round(
                res["engine_gradcam"]["images_per_s"] / res[peer_key]["images_per_s"], 2
            ),
            "engine_cam_vs_keras_io_recipe": round(
                res["engine_cam"]["images_per_s"] / res["keras_io_recipe"]["images_per_s"], 2
            ),
        },
        "target": {"engine_cam_vs_peer_gradcam": 2.0, "met": cam_vs_peer >= 2.0},
    }


def main(argv: list[str] | None = None) -> int:
    body, path = common.run_cli(NAME, __doc__, run, argv)
    for k, v in body["paths"].items():
        print(
            f"{k:32s} {v['images_per_s']:8.1f} images/s  (median {v['median_ms']:.0f} ms for {v['images']})"
        )
    print("ratios:", body["ratios"])
    print("agreement:", body["agreement_after_relu_max_norm"])
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
