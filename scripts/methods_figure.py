"""docs/methods.png: every registered CAM method on one sample photo, with the embedded default model.

    PYTHONPATH=. .venv/bin/python scripts/methods_figure.py [--photo chelsea] [--out docs/methods.png]

Each panel is ``engine.cam(photo, top-1 class, method=m)`` at the model's CAM layer (7x7), drawn with
``cam_widget.overlay`` (ReLU + min-max per map, as the panel shows it by default), titled with its family.
Methods are taken from ``cam_widget.methods()``, so a newly registered method appears without editing this.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", default="chelsea")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "methods.png")
    ap.add_argument("--size", type=int, default=150, help="panel size in pixels")
    args = ap.parse_args()

    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import cam_widget

    engine = cam_widget.default_engine()
    rgb = cam_widget.sample_images()[args.photo]
    c, name, p = engine.top_k(rgb, 1)[0]
    h, w = rgb.shape[:2]
    s = args.size / max(h, w)
    small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    panels = [(f"photo: {name} ({p:.2f})", small)]
    for m in cam_widget.methods():
        cam = engine.cam(rgb, c, method=m.name)
        panels.append((f"{m.label}\n{m.family}", cam_widget.overlay(small, np.asarray(cam), alpha=0.5)))
    cols = 5
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 1.75), dpi=100)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, img) in zip(axes.ravel(), panels, strict=False):
        ax.imshow(img)
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"cam_widget.methods() at {engine.cam_layer} ({engine.layer().shape[0]}x{engine.layer().shape[1]}), "
                 f"class '{name}'", fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"{args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
