"""Batch throughput: ``cam_widget.batch.run`` against the engine's own ``features_many``, in process and on Dask.

    .venv/bin/python -m bench.batch [--quick] [--out bench/results]    -> bench/results/batch.json

A photo set of JPEGs (the packaged sample photos, resized and flipped; labels and boxes from the packaged cases)
is written to a temporary folder.  Measured side by side in this one process run, after one warm-up each:

* ``features_many``: the engine's batched forward pass at the CAM layer over the same files (decode included,
  one thread) and over pre-decoded arrays (the model alone);
* ``run(job)`` in process: decode (reader thread), forward, CAM, peak/box/IoU/pointing, shard files, parquet;
* ``run(job, client)`` on a Dask cluster of 1 and of 2 single-threaded workers (real ``dask scheduler`` /
  ``dask worker`` processes on 127.0.0.1), engines already built (the start-up cost is reported separately).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_photo_set"]


def _flip_box(box: list[float], width: int) -> list[float]:
    x0, y0, x1, y1 = box
    return [width - x1, y0, width - x0, y1]


def write_photo_set(folder: str | Path, count: int = 40, quality: int = 90) -> Path:
    """Write ``count`` JPEG variants of the sample photos (scaled 1, 0.75, 0.5 and mirrored) to ``folder`` and a
    ``list.csv`` with ``path, label, x0, y0, x1, y1`` (labels and boxes of the packaged cases, scaled/mirrored
    with the image).  Returns the CSV's path."""
    import cv2

    from cam_widget.metrics.evaluate import default_cases_path
    from cam_widget.samples import sample_images

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases = {c["sample"]: c for c in json.loads(default_cases_path().read_text())["cases"] if "sample" in c}
    photos = sample_images()
    variants = [(s, f) for s in (1.0, 0.75, 0.5, 0.9, 0.6) for f in (False, True)]
    lines = ["path,label,x0,y0,x1,y1"]
    n = 0
    for scale, flip in variants:
        for name, rgb in photos.items():
            if n >= count:
                break
            h, w = rgb.shape[:2]
            size = (max(32, round(w * scale)), max(32, round(h * scale)))
            img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale != 1.0 else rgb
            img = img[:, ::-1] if flip else img
            file = f"{name}-{int(scale * 100)}{'-flip' if flip else ''}.jpg"
            ok, data = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
            assert ok
            (folder / file).write_bytes(data.tobytes())
            case = cases.get(name)
            if case is None:
                lines.append(f"{file},,,,,")
            else:
                box = [v * size[0] / w if i % 2 == 0 else v * size[1] / h for i, v in enumerate(case["box"])]
                box = _flip_box(box, size[0]) if flip else box
                lines.append(f"{file},{case['class']}," + ",".join(f"{v:.1f}" for v in box))
            n += 1
    csv = folder / "list.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def main(argv: list[str] | None = None) -> int:  # filled in below
    raise NotImplementedError


def _unused(_: Any) -> None:
    pass
