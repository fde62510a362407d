"""All trust checks for one (image, class, layer, method), and their summary over many images.

:func:`trust_checks` runs the metrics the caller asks for (``deletion``, ``insertion``, ``road``,
``drop`` - which also gives the increase in confidence - and ``sanity``) and returns a
:class:`TrustResult` holding the full reports and one headline number per metric
(:attr:`TrustResult.scores`).  :func:`summarize` turns many results into a method x metric table of
means with 95 % bootstrap intervals, the ``random`` row being the same metrics for a seeded random
map (pass ``method="random"``).  The panel's Trust section, ``cam-widget evaluate --metrics`` and
``scripts/trust_table.py`` all go through here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CAMError
from .faithfulness import (
    ConfidenceReport,
    DeletionInsertionReport,
    ROADReport,
    check_class_index,
    confidence_change,
    deletion_insertion,
    road,
)
from .sanity import SanityReport, sanity_check
from .scoring import MetricInputError, bootstrap_ci, random_saliency

__all__ = [
    "COLUMNS",
    "METRICS",
    "RANDOM",
    "TrustResult",
    "available_methods",
    "best_per_column",
    "parse_metrics",
    "summarize",
    "summary_table",
    "trust_checks",
]

#: Metric names accepted by :func:`trust_checks` (and ``--metrics``), in display order.
METRICS: tuple[str, ...] = ("deletion", "insertion", "road", "drop", "sanity")

#: Headline columns: ``(key in TrustResult.scores, label, "lower"/"higher" is better, metric)``.
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("deletion_auc", "deletion AUC", "lower", "deletion"),
    ("insertion_auc", "insertion AUC", "higher", "insertion"),
    ("road_combined", "ROAD (LeRF-MoRF)/2", "higher", "road"),
    ("average_drop", "avg drop %", "lower", "drop"),
    ("increase_in_confidence", "increase %", "higher", "drop"),
    ("sanity_rank_corr", "sanity rho_abs", "lower", "sanity"),
)

#: The pseudo-method name of the seeded random map.
RANDOM = "random"


def parse_metrics(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"deletion,insertion"`` or a list -> a validated tuple in :data:`METRICS` order."""
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if str(t).strip()]
    unknown = [t for t in items if t not in METRICS]
    if unknown or not items:
        raise MetricInputError(
            f"Unknown metric(s) {', '.join(map(repr, unknown)) or '(none given)'}; choose from {','.join(METRICS)}."
        )
    return tuple(m for m in METRICS if m in items)


def available_methods(engine: Any, layer: str | None = None, include_expensive: bool = False) -> list[str]:
    """Map methods to compare at ``layer``: every method registered in :mod:`cam_widget.methods`, except
    the ``expensive`` ones unless ``include_expensive`` (Score-CAM and Ablation-CAM cost one forward pass
    per channel for EVERY map, and the checks need a map per randomised block and per image), and
    those that need a GAP head where the engine has none."""
    from ..methods import methods as registry

    resolved = layer if layer is not None else getattr(engine, "cam_layer", None)
    has_head = resolved is not None and engine.has_cam(resolved)
    return [
        m.name
        for m in registry()
        if (include_expensive or not m.expensive) and (has_head or not m.needs_head)
    ]


@dataclass
class TrustResult:
    """The reports of one :func:`trust_checks` call; ``errors`` names the checks that failed and why."""

    method: str
    layer: str | None
    class_index: int
    deletion: DeletionInsertionReport | None = None
    confidence: ConfidenceReport | None = None
    road: ROADReport | None = None
    sanity: SanityReport | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, float]:
        """One number per computed metric, keyed as in :data:`COLUMNS` (NaN where a check failed)."""
        out: dict[str, float] = {}
        if self.deletion is not None:
            out["deletion_auc"] = self.deletion.deletion_auc
            out["insertion_auc"] = self.deletion.insertion_auc
        if self.road is not None:
            out["road_combined"] = self.road.combined
        if self.confidence is not None:
            out["average_drop"] = 100.0 * self.confidence.drop
            out["increase_in_confidence"] = 100.0 * float(self.confidence.increase)
        if self.sanity is not None:
            final = self.sanity.stages[-1].spearman_abs if self.sanity.stages else math.nan
            out["sanity_rank_corr"] = float(final) if np.isfinite(final) else 0.0
        return out

    @property
    def random_scores(self) -> dict[str, float]:
        """The same numbers for the seeded random map (where the reports carry one)."""
        out: dict[str, float] = {}
        if self.deletion is not None and self.deletion.random is not None:
            out["deletion_auc"] = self.deletion.random.deletion_auc
            out["insertion_auc"] = self.deletion.random.insertion_auc
        if self.road is not None and self.road.random is not None:
            out["road_combined"] = self.road.random.combined
        if self.confidence is not None and self.confidence.random is not None:
            out["average_drop"] = 100.0 * self.confidence.random.drop
            out["increase_in_confidence"] = 100.0 * float(self.confidence.random.increase)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: headline scores, random scores, errors and the full reports."""
        reports = {
            name: getattr(self, name).to_dict()
            for name in ("deletion", "confidence", "road", "sanity")
            if getattr(self, name) is not None
        }
        return {
            "method": self.method, "layer": self.layer, "class_index": self.class_index,
            "scores": self.scores, "random_scores": self.random_scores, "errors": dict(self.errors),
            "reports": reports,
        }  # fmt: skip


def trust_checks(
    engine: Any,
    image: Any,
    class_index: int,
    layer: str | None = None,
    method: str = "cam",
    metrics: str | Sequence[str] = METRICS,
    *,
    steps: int = 32,
    sanity_blocks: int | None = 5,
    random_baseline: bool = True,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    method_options: Mapping[str, Any] | None = None,
    clone: Any = None,
) -> TrustResult:
    """Run ``metrics`` for one map; ``method="random"`` scores a seeded random map at ``layer``'s
    resolution instead (sanity is not defined for it and is skipped).

    The map is computed once and shared by every metric.  A metric that fails on this input (e.g. a
    model that cannot be cloned for the sanity check) is recorded in ``errors`` and the others still
    run; bad arguments (class, steps, metric names) raise at once.  ``progress(done, total)`` is
    called after each metric.  ``clone`` (from :func:`cam_widget.metrics.sanity.clone_engine`) is reused by
    the sanity check instead of cloning the model again.
    """
    chosen = parse_metrics(metrics)
    cls = check_class_index(engine, class_index)
    _, rgb = engine.prepare(image)
    if method == RANDOM:
        saliency: Any = random_saliency(tuple(engine.layer(layer).shape[:2]), seed)
        chosen = tuple(m for m in chosen if m != "sanity")
        random_baseline = False
    else:
        saliency = np.asarray(engine.cam(rgb, cls, layer=layer, method=method, **dict(method_options or {})))
    result = TrustResult(method, layer, cls)
    common = {"saliency": saliency, "random_baseline": random_baseline, "seed": seed}
    jobs: list[tuple[str, Callable[[], Any]]] = []
    if "deletion" in chosen or "insertion" in chosen:
        jobs.append(("deletion", lambda: deletion_insertion(engine, rgb, cls, steps=steps, **common)))
    if "drop" in chosen:
        jobs.append(("confidence", lambda: confidence_change(engine, rgb, cls, **common)))
    if "road" in chosen:
        jobs.append(("road", lambda: road(engine, rgb, cls, **common)))
    if "sanity" in chosen:
        jobs.append((
            "sanity",
            lambda: sanity_check(
                engine, rgb, cls, layer=layer, method=method, blocks=sanity_blocks, seed=seed,
                method_options=method_options, clone=clone,
            ),
        ))  # fmt: skip
    for i, (name, job) in enumerate(jobs):
        try:
            setattr(result, name, job())
        except MetricInputError:
            raise
        except CAMError as err:
            result.errors[name] = str(err)
        if progress is not None:
            progress(i + 1, len(jobs))
    return result


# ------------------------------------------------------------------------------------ summary


def summarize(
    results: Iterable[TrustResult], confidence: float = 0.95, seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {score key: {"mean", "low", "high", "n"}}}``: means over images with percentile
    bootstrap intervals (:func:`cam_widget.metrics.scoring.bootstrap_ci`)."""
    values: dict[str, dict[str, list[float]]] = {}
    for r in results:
        for key, v in r.scores.items():
            values.setdefault(r.method, {}).setdefault(key, []).append(v)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for method, per in values.items():
        out[method] = {}
        for key, vs in per.items():
            mean, low, high = bootstrap_ci(vs, confidence=confidence, seed=seed)
            out[method][key] = {"mean": mean, "low": low, "high": high, "n": len(vs)}
    return out


def best_per_column(summary: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, set[str]]:
    """``{score key: {methods}}`` with the best mean per column (ties all marked; the random row excluded)."""
    best: dict[str, set[str]] = {}
    for key, _label, better, _metric in COLUMNS:
        cands = {m: s[key]["mean"] for m, s in summary.items() if m != RANDOM and key in s and np.isfinite(s[key]["mean"])}
        if cands:
            top = min(cands.values()) if better == "lower" else max(cands.values())
            best[key] = {m for m, v in cands.items() if abs(v - top) <= 1e-9 * max(1.0, abs(top))}
    return best


def summary_table(summary: Mapping[str, Mapping[str, Mapping[str, float]]], markdown: bool = False) -> str:
    """The method x metric table: ``mean [low, high]`` per cell, ``*`` marks the best method per column
    (the ``random`` row is the baseline, never marked)."""
    keys = [c for c in COLUMNS if any(c[0] in s for s in summary.values())]
    best = best_per_column(summary)
    head = ["method"] + [f"{label} ({'↓' if better == 'lower' else '↑'})" for _k, label, better, _m in keys]
    rows = []
    order = [m for m in summary if m != RANDOM] + ([RANDOM] if RANDOM in summary else [])
    for method in order:
        row = [method]
        for key, _label, _better, _m in keys:
            cell = summary[method].get(key)
            if cell is None:
                row.append("-")
                continue
            digits = 1 if key in ("average_drop", "increase_in_confidence") else 3
            text = f"{cell['mean']:.{digits}f} [{cell['low']:.{digits}f}, {cell['high']:.{digits}f}]"
            row.append(text + (" *" if method in best.get(key, ()) else ""))
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
