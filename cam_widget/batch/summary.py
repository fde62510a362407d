"""The paper's metrics over a results table: classification and localisation error, pointing.

From ``results.parquet`` (one row per image):

* ``top1_error`` / ``top5_error``: over labelled images that could be read;
* per method, over labelled images with a true box: ``top1_localization_error`` (Zhou et al.
  2016: wrong unless the top-1 class is right *and* the 20 %-threshold box of its map has
  IoU >= 0.5), ``localization_accuracy`` (IoU >= 0.5 of the top-1 map alone) and
  ``pointing_accuracy`` (Zhang et al. 2016);
* ``mean_deletion`` / ``mean_insertion`` AUC when those metrics were computed;
* the same per true class.

Missing metrics are ``None`` (never a fake 0).  Pure pandas + numpy; no TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["IOU_HIT", "Summary", "summarize"]

#: IoU at or above which a box counts as a correct localisation (the ILSVRC rule).
IOU_HIT = 0.5


def _rate(values: Any) -> float | None:
    n = len(values)
    return None if n == 0 else float(values.astype(float).mean())


def _error(values: Any) -> float | None:
    r = _rate(values)
    return None if r is None else 1.0 - r


def _columns(frame: Any, methods: Sequence[str]) -> dict[str, np.ndarray]:
    """The columns the metrics read, as numpy arrays converted once for the whole table (filtering a
    wide DataFrame per class and per metric costs milliseconds each; these masks cost microseconds).
    Conversions of missing values (``None`` -> False) only touch rows the metrics never read."""
    c = {
        "ok": frame["error"].isna().to_numpy(),
        "labelled": frame["label"].notna().to_numpy(),
        "correct": frame["correct"].astype(bool).to_numpy(),
        "top5_correct": frame["top5_correct"].astype(bool).to_numpy(),
    }
    for m in methods:
        for name, kind in (("error", None), ("iou", float), ("pointing", bool), ("deletion", float), ("insertion", float)):
            col = f"{m}_{name}"
            if col in frame:
                c[f"{col}?"] = frame[col].notna().to_numpy()
                if kind is not None:
                    c[col] = frame[col].astype(kind).to_numpy()
    return c


def _stats(c: dict[str, np.ndarray], methods: Sequence[str]) -> dict[str, Any]:
    ok = c["ok"]
    labelled = ok & c["labelled"]
    out: dict[str, Any] = {
        "images": len(ok),
        "errors": int((~ok).sum()),
        "labelled": int(labelled.sum()),
        "top1_error": _error(c["correct"][labelled]),
        "top5_error": _error(c["top5_correct"][labelled]),
    }
    for m in methods:
        failed = c.get(f"{m}_error?")
        scored = labelled & ~failed if failed is not None else labelled
        s: dict[str, Any] = {}
        if f"{m}_iou" in c:
            boxed = scored & c[f"{m}_iou?"]
            hit = c[f"{m}_iou"][boxed] >= IOU_HIT
            s["boxed"] = int(boxed.sum())
            s["localization_accuracy"] = _rate(hit)
            s["top1_localization_error"] = _error(hit & c["correct"][boxed])
        if f"{m}_pointing" in c:
            s["pointing_accuracy"] = _rate(c[f"{m}_pointing"][scored & c[f"{m}_pointing?"]])
        for metric in ("deletion", "insertion"):
            col = f"{m}_{metric}"
            if col in c:
                vals = c[col][ok & c[f"{col}?"]]
                s[f"mean_{metric}"] = None if vals.size == 0 else float(vals.mean())
        s["map_errors"] = int((ok & failed).sum()) if failed is not None else 0
        out[m] = s
    return out


@dataclass
class Summary:
    """Metrics over the whole set (``overall``) and per true class (``per_class``, by label)."""

    overall: dict[str, Any]
    per_class: dict[str, dict[str, Any]]
    methods: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"overall": ..., "per_class": {label_name: ...}}``."""
        return {"overall": self.overall, "per_class": self.per_class}

    def to_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2)

    def table(self, max_classes: int = 20) -> str:
        """A plain-text table: the set first, then the classes with the most images."""

        def pct(v: Any) -> str:
            return "    -" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:5.1f}"

        head = f"{'':<28} {'images':>7} {'top1err':>7} {'top5err':>7}"
        for m in self.methods:
            head += f" {m[:10] + ' loc':>14} {'point':>6}"
        lines = [head]

        def line(name: str, s: dict[str, Any]) -> str:
            text = f"{name[:28]:<28} {s['images']:>7} {pct(s['top1_error']):>7} {pct(s['top5_error']):>7}"
            for m in self.methods:
                ms = s.get(m, {})
                text += f" {pct(ms.get('top1_localization_error')):>14} {pct(ms.get('pointing_accuracy')):>6}"
            return text

        lines.append(line("all", self.overall))
        ranked = sorted(self.per_class.items(), key=lambda kv: -kv[1]["images"])
        for name, s in ranked[:max_classes]:
            lines.append(line(name, s))
        if len(ranked) > max_classes:
            lines.append(f"... {len(ranked) - max_classes} more classes in summary.json")
        lines.append(
            f"errors (%): top-1/top-5 classification, top-1 localisation (IoU >= {IOU_HIT}); pointing accuracy (%). "
            f"{self.overall['errors']} of {self.overall['images']} images unreadable."
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def summarize(frame: Any, methods: Sequence[str] | None = None) -> Summary:
    """The :class:`Summary` of a results DataFrame (methods default to those with columns)."""
    if methods is None:
        methods = [c[: -len("_peak_x")] for c in frame.columns if c.endswith("_peak_x")]
    cols = _columns(frame, methods)
    names = frame["label_name"].to_numpy()
    per_class: dict[str, dict[str, Any]] = {}
    for label, rows in sorted(frame.groupby("label", sort=True).indices.items()):
        named = [n for n in names[rows] if n is not None and n == n]  # n == n: not NaN
        key = str(named[0]) if named else f"class {int(label)}"
        per_class[key] = {"label": int(label), **_stats({k: v[rows] for k, v in cols.items()}, methods)}
    return Summary(_stats(cols, methods), per_class, tuple(methods))
