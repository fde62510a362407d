"""The paper's metrics over a results table: classification and localisation error, pointing.

From ``results.parquet`` (one row per image):

* ``top1_error`` / ``top5_error``: over labelled images that could be read;
* per method, over labelled images with a true box: ``top1_localization_error`` (Zhou et al.
  2016: wrong unless the top-1 class is right *and* the 20 %-threshold box of its map has
  IoU >= 0.5), ``localization_accuracy`` (IoU >= 0.5 of the top-1 map alone) and
  ``pointing_accuracy`` (Zhang et al. 2016);
* ``mean_deletion`` / ``mean_insertion`` AUC when those metrics were computed;
* the same per true class.

Missing metrics are ``None`` (never a fake 0).  Pure pandas; no TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["IOU_HIT", "Summary", "summarize"]

#: IoU at or above which a box counts as a correct localisation (the ILSVRC rule).
IOU_HIT = 0.5


def _rate(values: Any) -> float | None:
    n = len(values)
    return None if n == 0 else float(values.astype(float).mean())


def _error(values: Any) -> float | None:
    r = _rate(values)
    return None if r is None else 1.0 - r


def _stats(frame: Any, methods: Sequence[str]) -> dict[str, Any]:
    ok = frame[frame["error"].isna()]
    labelled = ok[ok["label"].notna()]
    out: dict[str, Any] = {
        "images": len(frame),
        "errors": int(frame["error"].notna().sum()),
        "labelled": len(labelled),
        "top1_error": _error(labelled["correct"].astype(bool)),
        "top5_error": _error(labelled["top5_correct"].astype(bool)),
    }
    for m in methods:
        scored = labelled[labelled[f"{m}_error"].isna()] if f"{m}_error" in labelled else labelled
        s: dict[str, Any] = {}
        if f"{m}_iou" in frame:
            boxed = scored[scored[f"{m}_iou"].notna()]
            hit = boxed[f"{m}_iou"].astype(float) >= IOU_HIT
            s["boxed"] = len(boxed)
            s["localization_accuracy"] = _rate(hit)
            s["top1_localization_error"] = _error(hit & boxed["correct"].astype(bool))
        if f"{m}_pointing" in frame:
            s["pointing_accuracy"] = _rate(scored[scored[f"{m}_pointing"].notna()][f"{m}_pointing"].astype(bool))
        for metric in ("deletion", "insertion"):
            col = f"{m}_{metric}"
            if col in frame:
                vals = ok[col].dropna().astype(float)
                s[f"mean_{metric}"] = None if vals.empty else float(vals.mean())
        s["map_errors"] = int(ok[f"{m}_error"].notna().sum()) if f"{m}_error" in ok else 0
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
    per_class: dict[str, dict[str, Any]] = {}
    labelled = frame[frame["label"].notna()]
    for label, group in labelled.groupby("label", sort=True):
        name = group["label_name"].dropna()
        key = str(name.iloc[0]) if len(name) else f"class {int(label)}"
        per_class[key] = {"label": int(label), **_stats(group, methods)}
    return Summary(_stats(frame, methods), per_class, tuple(methods))
