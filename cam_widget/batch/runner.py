"""``run(job, scheduler=None)``: plan the shards, compute the missing ones, write the results.

1. Check everything that can be wrong with the job itself, before any image is touched: the
   item list (missing folder, unknown class, bad box), the model (built once here, so
   an unreadable file, an unknown layer or method fails now, with one clear message) and the
   output folder (it must not hold a different job).
2. Split the items into shards of ``shard_size`` in a fixed order and skip the shards whose file
   is already committed (resume).
3. Compute the others: in this process (``scheduler=None``, no Dask import) or on Dask
   (:mod:`cam_widget.batch.dask_backend`).
4. Rebuild ``results.parquet``, ``summary.json`` and ``job.json`` from all shard files.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CAMError
from . import store
from .engines import class_names_for, engine_for
from .items import Item, collect_items
from .job import BatchJob, BatchJobError
from .shard import columns, process_shards
from .summary import Summary, summarize

__all__ = ["BatchResult", "plan", "run"]

Progress = Callable[[int, int], None]


@dataclass
class BatchResult:
    """What :func:`run` did: the results table, its summary and which shards it computed."""

    out: Path
    results: Any  # pandas.DataFrame
    summary: Summary
    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        """Rows whose image could not be used."""
        return int(self.results["error"].notna().sum())

    def __repr__(self) -> str:
        return (
            f"BatchResult(out={str(self.out)!r}, images={len(self.results)}, errors={self.errors}, "
            f"computed={len(self.computed)} shards, skipped={len(self.skipped)}, seconds={self.seconds:.1f})"
        )


def _check_engine(job: BatchJob, engine: Any, items: Sequence[Item]) -> str:
    """Validate layer, methods and labels against the engine (no forward pass); returns the layer's name."""
    from ..methods import method as lookup_method

    layer = engine.layer(job.layer).name
    for m in job.methods:
        try:
            record = lookup_method(m)
        except CAMError as err:
            raise BatchJobError(f"method {m!r}: {' '.join(str(err).split())}") from None
        if record.name != m:
            raise BatchJobError(f"method {m!r}: write it as {record.name!r} (its column prefix in results.parquet).")
        if record.needs_head and not engine.has_cam(layer):
            raise BatchJobError(
                f"method {m!r} needs a GAP -> Dense head at layer {layer!r}, which has none; use another method "
                "(e.g. gradcam) or the model's CAM layer."
            )
    for n, item in enumerate(items):
        if item.label is not None and not 0 <= item.label < engine.num_classes:
            raise BatchJobError(
                f"item {n} ({item.path}): label {item.label} is out of range; the model has {engine.num_classes} classes."
            )
    return layer


def plan(job: BatchJob) -> tuple[list[Item], list[tuple[int, list[Item]]]]:
    """The job's items and its shards ``[(number, items), ...]`` (no model needed)."""
    names = class_names_for(job)
    items = collect_items(job.items, names, len(names) if names else None)
    size = job.shard_size
    return items, [(k, items[i : i + size]) for k, i in enumerate(range(0, len(items), size))]


def _versions(extra: Sequence[str] = ()) -> dict[str, str]:
    from .. import __version__

    out = {"cam_widget": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for name in ("keras", "tensorflow", "pandas", "pyarrow", "dask", "distributed", *extra):
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "__version__"):
            out[name] = str(mod.__version__)
    return out


def _prepare_out(job: BatchJob, fingerprint: str, shards: int) -> dict[str, Any]:
    out = Path(job.out)
    if out.exists() and not out.is_dir():
        raise BatchJobError(f"out {str(out)!r} exists and is not a folder.")
    previous = store.read_json(out / store.JOB_FILE) if out.is_dir() else None
    if previous is not None and previous.get("fingerprint") != fingerprint:
        raise BatchJobError(
            f"{str(out)!r} holds the results of a different job (other images or settings); resume only "
            "works for the same job. Use another --out folder, or delete this one."
        )
    (out / store.MAPS_DIR).mkdir(parents=True, exist_ok=True)
    info = {"fingerprint": fingerprint, "job": job.to_dict(), "shards": shards, "runs": []}
    if previous is not None:
        info["runs"] = previous.get("runs", [])
    return info


def _progress(progress: bool | Progress | None, total: int) -> tuple[Progress | None, Callable[[], None]]:
    if callable(progress):
        return progress, lambda: None
    if not progress or total == 0:
        return None, lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None, lambda: None
    bar = tqdm(total=total, desc="shards", unit="shard")
    return (lambda done, _total: bar.update(done - bar.n)), bar.close


def run(job: BatchJob, scheduler: Any = None, *, progress: bool | Progress | None = None) -> BatchResult:
    """Run ``job``; returns a :class:`BatchResult` (the table is also in ``job.out``).

    ``scheduler``: ``None`` computes in this process (Dask is not imported), ``"local"`` starts a
    ``LocalCluster`` with one single-threaded worker per core, ``"tcp://host:port"`` connects to
    a running scheduler, and a ``distributed.Client`` is used as it is.  ``progress``: ``True``
    shows a tqdm bar (Dask's own progress bar in Jupyter), or pass ``progress(done, total)``.

    Re-running the same job with the same ``out`` computes only the shards whose file is missing.
    """
    t0 = time.perf_counter()
    items, shards = plan(job)
    engine = engine_for(job)
    layer = _check_engine(job, engine, items)
    fingerprint = job.fingerprint(items)
    info = _prepare_out(job, fingerprint, len(shards))
    info["layer"] = layer
    store.write_json(Path(job.out) / store.JOB_FILE, info)  # before any shard: marks the folder as this job's
    done = store.done_shards(job.out)
    todo = [(k, its) for k, its in shards if k not in done]
    skipped = sorted(k for k, _ in shards if k in done)
    report, close = _progress(progress, len(todo))
    reports: list[dict[str, Any]] = []
    t_work = time.perf_counter()
    try:
        if scheduler is None:
            stream = process_shards(job, todo)  # one pipeline over all shards
        else:
            from .dask_backend import run_shards

            stream = run_shards(job, todo, scheduler, show_progress=bool(progress) and not callable(progress))
        for rep in stream:
            reports.append(rep)
            if report is not None:
                report(len(reports), len(todo))
    finally:
        close()
    work_seconds = time.perf_counter() - t_work
    skipped += [r["shard"] for r in reports if r["status"] != "computed"]
    computed = sorted(r["shard"] for r in reports if r["status"] == "computed")
    missing = [k for k, _ in shards if not store.shard_path(job.out, k).is_file()]
    if missing:  # the workers reported them done, but this process cannot see their files
        raise BatchJobError(
            f"{len(missing)} shard file(s) reported done are not in {str(Path(job.out) / store.MAPS_DIR)!r} here "
            f"(e.g. shard {missing[0]}): the output folder must be storage shared by every worker and this process."
        )
    rows = [row for k, _ in shards for row in store.read_shard_rows(job.out, k)]
    frame = store.write_parquet(Path(job.out) / store.RESULTS, rows, columns(job))
    summary = summarize(frame, job.methods)
    store.write_json(Path(job.out) / store.SUMMARY, summary.to_dict())
    seconds = time.perf_counter() - t0
    info["versions"] = _versions()
    info["runs"].append({
        "scheduler": None if scheduler is None else str(scheduler if isinstance(scheduler, str) else "client"),
        "computed": computed, "skipped": sorted(skipped), "seconds": seconds, "work_seconds": work_seconds,
        "images_computed": sum(r["images"] for r in reports if r["status"] == "computed"),
        "shard_seconds": {str(r["shard"]): r["seconds"] for r in reports if r["status"] == "computed"},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })  # fmt: skip
    store.write_json(Path(job.out) / store.JOB_FILE, info)
    return BatchResult(Path(job.out), frame, summary, computed, sorted(set(skipped)), seconds)
