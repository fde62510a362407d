"""Reproduce docs/CONV_CUTOFF.md: the paper's resolution argument on the embedded model.

    .venv/bin/python scripts/conv_cutoff_table.py

Compares, on the packaged case set (cam_widget/data/cases.json: hand-drawn boxes on the sample
photos plus pasted-object translation cases), top-layer CAM at 224 and 448 px input, Grad-CAM at a
14x14 block, and refitted CAM heads at a 14x14 and a 28x28 block (with their fit fidelity); then
how faithful refit heads are, layer by layer, against how stable the model itself is (~9 min on two
cores).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import cam_widget as cw
from cam_widget.metrics.evaluate import load_cases

FIDELITY_LAYERS = (  # (layer, refit_head options)
    ("block4c_add", {}),
    ("block5c_add", {}),
    ("block5c_add", {"min_window": 1.0}),
    ("block6a_expand_activation", {}),
    ("block3b_add", {}),
    ("top_activation", {}),
)
SEEDS = range(4)
HELDOUT = 32  # per photo: 256 held-out crops (and their shifted twins) per fit
CURVE = (8, 16, 32, 64, 128)  # crops per photo


def fidelity_rows(engine, photos) -> list[str]:
    """Refit fidelity per layer: 4 seeds, 256 held-out crops each; fit time with the default settings."""
    rows = []
    for layer, options in FIDELITY_LAYERS:
        default = engine.refit_head(layer, photos, register=False, **options)
        reps = [
            engine.refit_head(layer, photos, heldout_per_image=HELDOUT, seed=s, register=False, **options) for s in SEEDS
        ]

        def cell(key: str, reps=reps) -> str:
            v = np.array([getattr(r, key) for r in reps])
            return f"{v.mean():.0%} ({v.min():.0%}-{v.max():.0%})"

        shape = engine.layer(layer).shape
        label = layer + "".join(f", `{k}={v}`" for k, v in options.items())
        rows.append(
            f"| {label} | {shape[0]}x{shape[1]}x{shape[2]} | {cell('top1_agreement')} | {cell('top1_agreement_stable')} "
            f"| {cell('model_self_agreement')} | {cell('fit_top1_agreement')} | {cell('top5_overlap')} | {default.seconds:.1f} s |"
        )
        print(rows[-1], flush=True)
    return rows


def photo_rows(engine, photos, layer: str = "block5c_add") -> list[str]:
    """Per distillation photo: the model's top-1 on the whole photo, and the head's held-out agreement on its
    crops (4 seeds x 32 crops)."""
    reps = [engine.refit_head(layer, photos, heldout_per_image=HELDOUT, seed=s, register=False) for s in SEEDS]
    per_photo = np.mean([r.image_agreement for r in reps], axis=0)
    rows = []
    for (name, image), agree in zip(photos.items(), per_photo, strict=True):
        (_, top, p), *_ = engine.top_k(image, 1)
        rows.append(f"| {name} | {top} ({p:.0%}) | {agree:.0%} |")
        print(rows[-1], flush=True)
    return rows


def curve_rows(engine, photos, layer: str = "block5c_add") -> list[str]:
    """More crops per photo: agreement on the fitting samples and on 256 held-out crops (seed 0)."""
    rows = []
    for n in CURVE:
        r = engine.refit_head(layer, photos, crops_per_image=n, heldout_per_image=HELDOUT, register=False)
        rows.append(
            f"| {n} | {r.n_samples} | {r.fit_top1_agreement:.0%} | {r.top1_agreement:.0%} | {r.top1_agreement_stable:.0%} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    cases = load_cases()
    photos = cw.sample_images()
    e224, e448 = cw.default_engine(224), cw.default_engine(448)
    rows = []

    def run(label: str, engine, layer=None, method="cam", fit=None) -> None:
        t = time.perf_counter()
        res = cw.evaluate(engine, cases, layer=layer, method=method)
        groups = res.groups()
        cells = []
        for g in ("samples", "translation"):
            s = groups.get(g, res.summary)
            cells.append(f"{s['localization_accuracy']:.0%} / {s['pointing_accuracy']:.0%} / {s['mean_iou']:.2f}")
        shape = engine.layer(layer).shape
        if method == "gradcam":
            fid = "n/a (gradient map, no head)"
        else:
            fid = "exact (model's head)" if fit is None else (
                f"{fit.top1_agreement:.0%} top-1 ({fit.top1_agreement_stable:.0%} stable), "
                f"{fit.top5_overlap:.0%} top-5 ({fit.seconds:.1f} s fit)"
            )
        rows.append(f"| {label} | {shape[0]}x{shape[1]} | {cells[0]} | {cells[1]} | {fid} |")
        print(rows[-1], f"({time.perf_counter() - t:.0f} s)", flush=True)

    run("CAM, top layer, 224 px input", e224)
    run("CAM, top layer, 448 px input", e448)
    run("Grad-CAM, block5c_add, 224 px", e224, "block5c_add", "gradcam")
    fit14 = e224.refit_head("block5c_add", photos)
    run("refit CAM, block5c_add, 224 px", e224, "block5c_add", "cam", fit14)
    fit14w = e224.refit_head("block6a_expand_activation", photos)
    run("refit CAM, block6a_expand_activation, 224 px", e224, "block6a_expand_activation", "cam", fit14w)
    fit28 = e224.refit_head("block3b_add", photos)
    run("refit CAM, block3b_add, 224 px", e224, "block3b_add", "cam", fit28)
    crops_only = e224.refit_head("block5c_add", photos, min_window=1.0)
    run("refit CAM, block5c_add, whole crops only (`min_window=1`)", e224, "block5c_add", "cam", crops_only)
    head = (
        "# Conv cutoff: which layer localizes best?\n\n"
        "Reproduce with `.venv/bin/python scripts/conv_cutoff_table.py` "
        f"(machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores).\n\n"
        "Cells: localization accuracy (IoU >= 0.5 with the paper's 20%-threshold box) / pointing game "
        "(15 px tolerance) / mean IoU. *samples*: hand-drawn boxes on the 8 packaged photos (9 cases); "
        "*translation*: an object pasted at 9 known positions on gray (27 cases). Fidelity of a refit "
        "head (default settings): top-1 agreement with the model on 64 held-out crops and flips of the 8 photos, "
        "in brackets on those where the model's own top-1 survives a 2% shift (the heads are distilled, "
        "without labels or boxes, from those same 8 photos, so the *samples* column flatters them; the "
        "*translation* cases are unseen). With 64 held-out crops the agreement is known to about +-5 points; "
        "the next section measures it on 256 crops and 4 seeds.\n\n"
        "| map | resolution | samples | translation | fidelity |\n|---|---|---|---|---|\n"
    )
    fid = fidelity_rows(e224, photos)
    per_photo = photo_rows(e224, photos)
    curve = curve_rows(e224, photos)
    fidelity = (
        "\n\n## How faithful is a refit head?\n\n"
        f"`engine.refit_head(layer, sample_images(), heldout_per_image={HELDOUT}, seed=s)` for seeds "
        f"{SEEDS.start}-{SEEDS.stop - 1}: mean (min-max) over the seeds, each on {HELDOUT * len(photos)} held-out "
        "crops and flips of the 8 photos. *top-1*: the head's top class is the model's. *stable*: the same, on the "
        "crops where the model keeps its own top-1 when the crop moves by 2% of its size. *model vs itself*: how "
        "often it does. *on fitting samples*: top-1 agreement on the whole photos and crops the head was fitted on. "
        "The fit time is one refit with the default settings (32 crops per photo plus feature windows, 8 held-out "
        "crops per photo); the first refit at a layer also traces a forward function (about 0.8 s, BENCHMARKS.md "
        "section 6).\n\n"
        "| layer | features | top-1 | stable | model vs itself | on fitting samples | top-5 overlap | fit time |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(fid) + "\n\n"
        f"Per photo, `block5c_add` (`report.image_agreement`, mean over the same seeds, {HELDOUT * len(SEEDS)} "
        "held-out crops per photo):\n\n"
        "| photo | the model's top-1 on the whole photo | the head agrees on its crops |\n|---|---|---|\n"
        + "\n".join(per_photo)
        + "\n\n"
        "More crops per photo, `block5c_add`, seed 0 (held-out as above):\n\n"
        "| crops per photo | fitting samples (views x windows) | top-1 on fitting samples | top-1 held out | stable |\n"
        "|---|---|---|---|---|\n" + "\n".join(curve) + "\n\n"
        "Reading. The issue aimed for top-1 agreement of 0.9 at a 14x14 block. The refit heads reach about 0.8 "
        "on all held-out crops and a little under 0.9 on the crops where the model's own top-1 is stable: the aim "
        "is not met. What the tables say about why:\n\n"
        "* The model itself keeps its top-1 under a 2% shift on only about 82% of these crops: the astronaut, "
        "Grace Hopper and the palace have no single ImageNet class, and near-tied classes such as *suit* / "
        "*military uniform* or *bell cote* / *monastery* swap places. A head that agrees with the model about 80% "
        "of the time agrees with it about as often as the model agrees with a shifted copy of its input. Per "
        "photo (third table) the head agrees on most crops of the photos with a clear class (cat, espresso, "
        "moped, rocket) and on barely more than half of the three without one.\n"
        "* More crops of the same photos do not help: agreement on the fitting samples falls to the held-out value "
        "as crops are added (fourth table), so the limit is what a GAP -> linear head on that layer can express, "
        "not the amount of data. The widest 14x14 layer (`block6a_expand_activation`, 672 channels) fits its "
        "samples better and agrees a few points more.\n"
        "* The fitting itself is sound: at the layer of the model's own head (`top_activation`) the same procedure "
        "recovers the model's head almost exactly.\n"
        "* Fitting on whole crops only (`min_window=1`) agrees a little more (second table) but localizes worse "
        "(first table): the feature windows teach the head where the model's evidence lies, so they are the "
        "default.\n"
    )
    Path("docs").mkdir(exist_ok=True)
    Path("docs/CONV_CUTOFF.md").write_text(head + "\n".join(rows) + fidelity)


if __name__ == "__main__":
    main()
