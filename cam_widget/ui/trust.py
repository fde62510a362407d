"""The panel's "Trust" section: should I believe this map?

:class:`TrustSection` is a self-contained ipywidgets view over :func:`cam_widget.metrics.trust.trust_checks`:
an Accordion, collapsed by default.  Opening it (or a state change while it is open) runs the checks
for the current (image, class, layer, method) in a background worker with a progress bar, while the
rest of the panel stays live; it then shows

* the deletion and insertion curves (a small matplotlib PNG, the random map's dashed),
* the AUCs next to the random baseline, ROAD, Average Drop / Increase in Confidence,
* the sanity check's verdict;

and a "compare methods" button fills a method x metric table (best per column in bold).  Results are
cached per (image, layer, class, method), so flipping back costs nothing.  The section computes
nothing itself: the numbers come from :mod:`cam_widget.metrics`.
"""

from __future__ import annotations

import contextlib
import html
import io
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..errors import CAMError
from ..metrics.sanity import clone_engine
from ..metrics.trust import (
    COLUMNS,
    METRICS,
    RANDOM,
    TrustResult,
    available_methods,
    best_per_column,
    summarize,
    trust_checks,
)

__all__ = ["TrustSection", "TrustTarget", "curves_png"]


@dataclass(frozen=True)
class TrustTarget:
    """What the panel currently shows: the photo (RGB uint8), class, layer and method."""

    image: np.ndarray
    class_index: int
    layer: str | None
    method: str


def curves_png(result: TrustResult, width: float = 4.2, height: float = 2.3, dpi: int = 80) -> bytes:
    """The deletion and insertion curves of ``result`` (random map dashed) as PNG bytes (matplotlib Agg,
    no pyplot state touched, so it is safe from a worker thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rep = result.deletion
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if rep is not None:
        x = rep.fractions
        ax.plot(x, rep.deletion_curve, color="tab:red", label=f"deletion {rep.deletion_auc:.3f}")
        ax.plot(x, rep.insertion_curve, color="tab:blue", label=f"insertion {rep.insertion_auc:.3f}")
        if rep.random is not None:
            ax.plot(x, rep.random.deletion_curve, color="tab:red", ls="--", lw=1, alpha=0.6, label="random")
            ax.plot(x, rep.random.insertion_curve, color="tab:blue", ls="--", lw=1, alpha=0.6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("fraction of pixels changed", fontsize=8)
    ax.set_ylabel("class probability", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="best", frameon=False)
    fig.tight_layout(pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _report_html(result: TrustResult) -> str:
    """The numbers of one result: each metric, the random baseline, which is better."""
    s, r = result.scores, result.random_scores
    rows = []
    for key, label, better, _metric in COLUMNS:
        if key not in s or key == "sanity_rank_corr":
            continue
        digits = 1 if key in ("average_drop", "increase_in_confidence") else 3
        mine, rnd = s[key], r.get(key)
        verdict = ""
        if rnd is not None and np.isfinite(rnd):
            good = mine < rnd if better == "lower" else mine > rnd
            verdict = "better than random" if good else ("same as random" if mine == rnd else "worse than random")
        arrow = "↓" if better == "lower" else "↑"
        rows.append(
            f"<tr><td>{html.escape(label)} {arrow}</td><td><b>{_fmt(mine, digits)}</b></td>"
            f"<td>{_fmt(rnd, digits)}</td><td>{verdict}</td></tr>"
        )
    table = (
        "<table class='cam-trust-table'><tr><th>metric</th><th>this map</th><th>random map</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )
    if result.sanity is not None:
        table += f"<div class='cam-trust-sanity'><b>Sanity check:</b> {html.escape(result.sanity.summary())}</div>"
    for name, msg in result.errors.items():
        table += f"<div class='cam-trust-error'>{html.escape(name)} not computed: {html.escape(msg)}</div>"
    return table


def _compare_html(results: Sequence[TrustResult]) -> str:
    summary = summarize(results)
    best = best_per_column(summary)
    keys = [c for c in COLUMNS if any(c[0] in m for m in summary.values())]
    head = "".join(f"<th>{html.escape(label)} {'↓' if b == 'lower' else '↑'}</th>" for _k, label, b, _m in keys)
    body = []
    for method, per in summary.items():
        cells = []
        for key, _label, _b, _m in keys:
            v = per.get(key, {}).get("mean")
            digits = 1 if key in ("average_drop", "increase_in_confidence") else 3
            text = _fmt(v, digits)
            cells.append(f"<td><b>{text}</b></td>" if method in best.get(key, ()) else f"<td>{text}</td>")
        body.append(f"<tr><td>{html.escape(method)}</td>{''.join(cells)}</tr>")
    return (
        f"<table class='cam-trust-compare'><tr><th>method</th>{head}</tr>{''.join(body)}</table>"
        "<div>bold: best per column (the random map is the baseline, never marked).</div>"
    )


class TrustSection:
    """The "Trust" Accordion of the panel (see the module docstring).

    Args:
        engine: the panel's :class:`cam_widget.CAMEngine`.
        target: returns the panel's current :class:`TrustTarget` (``None`` while nothing is shown).
        metrics: which checks to run (default all: deletion, insertion, road, drop, sanity).
        methods: methods for "compare methods" (default :func:`cam_widget.metrics.trust.available_methods`).
        threaded: run checks in a background worker (the panel stays live); ``False`` runs them inline.

    Call :meth:`notify` whenever the panel's image, class, layer or method changes.
    """

    def __init__(
        self,
        engine: Any,
        target: Callable[[], TrustTarget | None],
        metrics: Sequence[str] = METRICS,
        methods: Sequence[str] | None = None,
        threaded: bool = True,
        **check_options: Any,
    ) -> None:
        self.engine = engine
        self._target = target
        self._metrics = tuple(metrics)
        self._methods = list(methods) if methods is not None else None
        self._options = check_options
        self._cache: dict[tuple[str, str | None, int, str], TrustResult] = {}
        self._clone: Any = None  # one clone of the model for every sanity check (cloning + tracing cost seconds)
        self._lock = threading.Lock()
        self._generation = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cam-trust") if threaded else None
        self.last_job: Future | None = None

        self.progress = widgets.IntProgress(value=0, min=0, max=len(self._metrics), description="checking",
                                            layout=widgets.Layout(visibility="hidden"))  # fmt: skip
        self.status = widgets.HTML(value="")
        self.plot = widgets.Image(format="png", layout=widgets.Layout(width="336px"))
        self.numbers = widgets.HTML(value="")
        self.compare_button = widgets.Button(description="compare methods", icon="table",
                                             tooltip="every method x metric for the current image")  # fmt: skip
        self.compare_table = widgets.HTML(value="")
        self.compare_button.on_click(self._on_compare)
        body = widgets.VBox([
            widgets.HBox([self.progress, self.status]),
            widgets.HBox([self.plot, self.numbers]),
            widgets.HBox([self.compare_button]),
            self.compare_table,
        ])  # fmt: skip
        self.widget = widgets.Accordion(children=[body], selected_index=None)
        self.widget.set_title(0, "Trust: how far to believe this map")
        self.widget.add_class("cam-trust")
        self.widget.observe(self._on_toggle, "selected_index")

    # ------------------------------------------------------------------------------ state
    @property
    def is_open(self) -> bool:
        return self.widget.selected_index == 0

    def _key(self, t: TrustTarget, method: str) -> tuple[str, str | None, int, str]:
        image_key, _ = self.engine.prepare(t.image)
        return (image_key, t.layer, int(t.class_index), method)

    def notify(self) -> None:
        """The panel's state changed: refresh now if the section is open (cached results show at once)."""
        if self.is_open:
            self.refresh()

    def _on_toggle(self, change: dict) -> None:
        if change["new"] == 0:
            self.refresh()

    def refresh(self) -> Future | None:
        """Show the checks for the current target, computing them in the worker unless cached."""
        t = self._target()
        with self._lock:
            self._generation += 1
            gen = self._generation
        self.compare_table.value = ""
        if t is None:
            self.status.value = "No image yet."
            return None
        key = self._key(t, t.method)
        cached = self._cache.get(key)
        if cached is not None:
            self._show(cached)
            self.status.value = "cached"
            return None
        self.plot.value = b""
        self.numbers.value = ""
        self.status.value = f"checking {html.escape(t.method)}..."
        return self._submit(lambda: self._run_one(t, key, gen))

    def _submit(self, job: Callable[[], None]) -> Future | None:
        if self._executor is None:
            job()
            return None
        self.last_job = self._executor.submit(job)
        return self.last_job

    def _stale(self, gen: int) -> bool:
        return gen != self._generation

    def _progress(self, gen: int, label: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            if not self._stale(gen):
                self.progress.max = max(1, total)
                self.progress.value = done
                self.status.value = f"{html.escape(label)}: {done}/{total} checks"

        return update

    def _compute(self, t: TrustTarget, method: str, gen: int, label: str) -> TrustResult:
        key = self._key(t, method)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if "sanity" in self._metrics and method != RANDOM and self._clone is None:
            with contextlib.suppress(CAMError):  # if it fails, trust_checks records why in the result's errors
                self._clone = clone_engine(self.engine)
        result = trust_checks(
            self.engine, t.image, t.class_index, layer=t.layer, method=method,
            metrics=self._metrics if method != RANDOM else tuple(m for m in self._metrics if m != "sanity"),
            random_baseline=method != RANDOM, progress=self._progress(gen, label), clone=self._clone,
            **self._options,
        )  # fmt: skip
        self._cache[key] = result
        return result

    def _run_one(self, t: TrustTarget, key: tuple, gen: int) -> None:
        if self._stale(gen):
            return
        self.progress.layout.visibility = "visible"
        try:
            result = self._compute(t, t.method, gen, t.method)
        except Exception as err:  # the panel keeps working; the message names the problem
            if not self._stale(gen):
                self.status.value = f"<span class='cam-trust-error'>{html.escape(str(err))}</span>"
            return
        finally:
            if not self._stale(gen):
                self.progress.layout.visibility = "hidden"
        if not self._stale(gen):
            self._show(result)
            self.status.value = "done"

    def _show(self, result: TrustResult) -> None:
        self.plot.value = curves_png(result) if result.deletion is not None else b""
        self.numbers.value = _report_html(result)

    # ------------------------------------------------------------------------------ compare
    def method_names(self) -> list[str]:
        """The methods "compare methods" covers (plus the random map as the baseline row)."""
        t = self._target()
        names = self._methods if self._methods is not None else available_methods(self.engine, t.layer if t else None)
        return [*names, RANDOM]

    def _on_compare(self, _button: Any = None) -> Future | None:
        t = self._target()
        if t is None:
            self.status.value = "No image yet."
            return None
        with self._lock:
            self._generation += 1
            gen = self._generation
        names = self.method_names()
        self.compare_table.value = "<i>comparing...</i>"
        return self._submit(lambda: self._run_compare(t, names, gen))

    compare = _on_compare

    def _run_compare(self, t: TrustTarget, names: list[str], gen: int) -> None:
        results = []
        self.progress.layout.visibility = "visible"
        try:
            for i, name in enumerate(names):
                if self._stale(gen):
                    return
                try:
                    results.append(self._compute(t, name, gen, f"{name} ({i + 1}/{len(names)})"))
                except Exception as err:  # one method failing (e.g. cam without a head) keeps the others
                    self.status.value = f"{html.escape(name)}: {html.escape(str(err))}"
        finally:
            if not self._stale(gen):
                self.progress.layout.visibility = "hidden"
        if not self._stale(gen):
            self.compare_table.value = _compare_html(results)
            self.status.value = "done"

    def wait(self, timeout: float | None = 300) -> None:
        """Block until the last submitted job is done (for tests and scripts)."""
        if self.last_job is not None:
            self.last_job.result(timeout=timeout)

    def close(self) -> None:
        """Stop the worker (pending jobs are dropped) and close the widgets."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.widget.close()
