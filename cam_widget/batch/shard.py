"""One shard of a job: read its images, run the model in batches, score the maps, commit the file.

:func:`process_shard` is the unit of work every backend runs (in this process or on a Dask
worker).  Three stages overlap: a reader thread decodes and hashes the next images, this thread
runs the model on the current batch (one forward pass, then each method's maps), and a scoring
thread upsamples the previous batch's maps to find peaks, boxes and scores (OpenCV, file reads and
TensorFlow release the GIL).  An image that cannot be used (missing, empty,
corrupt, too large) becomes a row with its ``error`` and the shard goes on; so does a map that
fails for one method (``<method>_error``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import CAMError
from ..imaging import MAX_BYTES
from ..imaging import _decode as decode_bytes
from ..metrics.faithfulness import deletion_insertion
from ..metrics.localize import UninformativeMapError, iou, localize, peak, point_box_distance
from .engines import engine_for
from .items import Item
from .job import BatchJob
from .store import commit_shard, shard_path

__all__ = ["columns", "process_shard"]

_BASE_COLUMNS = [
    "shard", "index", "path", "hash", "bytes", "width", "height", "label", "label_name",
    "box_x0", "box_y0", "box_x1", "box_y1", "top_classes", "top_probs", "predicted", "predicted_name",
    "probability", "correct", "top5_correct", "error",
]  # fmt: skip
_METHOD_FIELDS = ["peak_x", "peak_y", "box_x0", "box_y0", "box_x1", "box_y1"]


def columns(job: BatchJob) -> list[str]:
    """The columns of ``results.parquet`` for ``job``, in order."""
    cols = list(_BASE_COLUMNS)
    for m in job.methods:
        cols += [f"{m}_{f}" for f in _METHOD_FIELDS]
        cols += [f"{m}_{metric}" for metric in job.metrics]
        cols.append(f"{m}_error")
    return cols


class _Decoded(NamedTuple):
    index: int
    item: Item
    rgb: np.ndarray | None
    facts: dict[str, Any]
    error: str | None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _read(index: int, item: Item, max_pixels: int) -> _Decoded:
    facts: dict[str, Any] = {"hash": None, "bytes": None, "width": None, "height": None}
    try:
        path = Path(item.path)
        size = path.stat().st_size
        facts["bytes"] = int(size)
        if size > MAX_BYTES:
            raise CAMError(f"the file is {size / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB.")
        data = path.read_bytes()
        facts["hash"] = hashlib.sha256(data).hexdigest()
        rgb = decode_bytes(data, "this file", max_pixels)  # imaging's decoder, on the bytes hashed above
        if rgb.base is not None:
            rgb = rgb.copy()
        rgb.setflags(write=False)  # frozen: the engine remembers its hash across calls
        facts["height"], facts["width"] = int(rgb.shape[0]), int(rgb.shape[1])
        return _Decoded(index, item, rgb, facts, None)
    except FileNotFoundError:
        return _Decoded(index, item, None, facts, "file not found")
    except (CAMError, OSError) as err:
        return _Decoded(index, item, None, facts, _one_line(err))


def _read_ahead(items: Sequence[Item], max_pixels: int, depth: int) -> Iterator[_Decoded]:
    """Decode ``items`` in order in a background thread, at most ``depth`` ahead of the consumer."""
    q: queue.Queue[_Decoded | None] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def work() -> None:
        try:
            for i, item in enumerate(items):
                if stop.is_set():
                    return
                q.put(_read(i, item, max_pixels))
        finally:
            q.put(None)

    thread = threading.Thread(target=work, name="cam-widget-reader", daemon=True)
    thread.start()
    try:
        while (rec := q.get()) is not None:
            yield rec
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)


class _Shard:
    """The rows and maps of one shard as they are filled in."""

    def __init__(self, job: BatchJob, engine: Any, shard: int, items: Sequence[Item]) -> None:
        self.job, self.engine, self.shard = job, engine, shard
        info = engine.layer(job.layer)
        self.layer = info.name
        h, w = int(info.shape[0]), int(info.shape[1])
        self.maps = {m: np.full((len(items), h, w), np.nan, np.float32) for m in job.methods}
        self.rows: list[dict[str, Any]] = [{} for _ in items]
        self.names = list(engine.class_names)
        self._post = ThreadPoolExecutor(1, thread_name_prefix="cam-widget-score")
        self._pending: list[Future[None]] = []

    def finish(self) -> None:
        """Wait for the scoring thread (re-raising what failed there) and stop it."""
        try:
            for fut in self._pending:
                fut.result()
        finally:
            self._post.shutdown(wait=True)

    def _name(self, idx: int | None) -> str | None:
        return None if idx is None else self.names[idx]

    def base_row(self, rec: _Decoded) -> dict[str, Any]:
        box = rec.item.box or (None, None, None, None)
        row: dict[str, Any] = {c: None for c in columns(self.job)}
        row.update(
            shard=self.shard, index=rec.index, path=rec.item.path, label=rec.item.label,
            label_name=self._name(rec.item.label), box_x0=box[0], box_y0=box[1], box_x1=box[2], box_y1=box[3],
            error=rec.error, **rec.facts,
        )  # fmt: skip
        return row

    def fail(self, rec: _Decoded, error: str) -> None:
        row = self.base_row(rec)
        row["error"] = error
        self.rows[rec.index] = row

    def run_batch(self, batch: list[_Decoded]) -> None:
        """One forward pass for the batch (cached), then every method's maps from it."""
        if not batch:
            return
        rgbs = [rec.rgb for rec in batch]
        try:
            self.engine.features_many(rgbs, [self.layer])  # the one forward pass; cached for what follows
            probs = np.asarray(self.engine.predict(rgbs), np.float64).reshape(len(batch), -1)
        except CAMError as err:
            if len(batch) > 1:  # find the image that breaks the model; the others go on
                for rec in batch:
                    self.run_batch([rec])
            else:
                self.fail(batch[0], _one_line(err))
            return
        order = np.argsort(-probs, axis=1, kind="stable")
        predicted = [int(o[0]) for o in order]
        cams: dict[str, np.ndarray | str] = {}
        for m in self.job.methods:
            try:
                cams[m] = np.asarray(self.engine.cam(rgbs, predicted, layer=self.layer, method=m), np.float32)
            except CAMError as err:
                cams[m] = _one_line(err)
        # Rows and scores (upsampling, boxes, AUCs) in the scoring thread, while this thread goes on
        # with the next batch's forward pass.
        self._pending.append(self._post.submit(self._rows, batch, probs, order, predicted, cams))

    def _rows(
        self, batch: list[_Decoded], probs: np.ndarray, order: np.ndarray, predicted: list[int],
        cams: dict[str, np.ndarray | str],
    ) -> None:  # fmt: skip
        k = self.job.top_k
        for j, rec in enumerate(batch):
            row = self.base_row(rec)
            top = order[j]
            label = rec.item.label
            row.update(
                top_classes=[int(c) for c in top[:k]], top_probs=[float(probs[j, c]) for c in top[:k]],
                predicted=predicted[j], predicted_name=self._name(predicted[j]),
                probability=float(probs[j, predicted[j]]),
                correct=None if label is None else bool(predicted[j] == label),
                top5_correct=None if label is None else bool(label in top[:5]),
            )  # fmt: skip
            for m, result in cams.items():
                if isinstance(result, str):
                    row[f"{m}_error"] = result
                    continue
                self.maps[m][rec.index] = result[j]
                self._score(row, m, result[j], rec)
            self.rows[rec.index] = row

    def _score(self, row: dict[str, Any], m: str, cam: np.ndarray, rec: _Decoded) -> None:
        shape = rec.rgb.shape[:2]  # type: ignore[union-attr]
        job, truth = self.job, rec.item.box
        try:
            row[f"{m}_peak_x"], row[f"{m}_peak_y"] = peak(cam, shape)
            try:
                box: tuple[int, int, int, int] | None = localize(cam, shape, job.threshold)
            except UninformativeMapError:
                box = None  # no positive evidence: no box, a localisation miss
            if box is not None:
                for f, v in zip(_METHOD_FIELDS[2:], box, strict=True):
                    row[f"{m}_{f}"] = int(v)
            if truth is not None and "iou" in job.metrics:
                row[f"{m}_iou"] = 0.0 if box is None else float(iou(box, truth))
            if truth is not None and "pointing" in job.metrics:  # pointing_game's rule, on the peak found above
                point = (row[f"{m}_peak_x"], row[f"{m}_peak_y"])
                row[f"{m}_pointing"] = bool(point_box_distance(point, truth) <= job.tolerance)
            wanted = [x for x in ("deletion", "insertion") if x in job.metrics]
            if wanted:  # one call gives both curves; the map is the one already computed
                rep = deletion_insertion(
                    self.engine, rec.rgb, row["predicted"], saliency=cam, layer=self.layer, method=m,
                    random_baseline=False, batch_size=max(job.batch_size, 32),
                )  # fmt: skip
                for x in wanted:
                    row[f"{m}_{x}"] = float(getattr(rep, f"{x}_auc"))
        except UninformativeMapError as err:  # a constant map: no peak, nothing to score
            row[f"{m}_error"] = _one_line(err)
        except CAMError as err:
            row[f"{m}_error"] = _one_line(err)


def process_shard(job: BatchJob, shard: int, items: Sequence[Item]) -> dict[str, Any]:
    """Compute and commit one shard, unless it is already committed.

    Returns a report: ``shard``, ``status`` (``"computed"``, ``"skipped"`` when the file existed
    before, ``"lost-race"`` when another worker committed it meanwhile), ``images``, ``errors``,
    ``seconds``, ``pid``."""
    t0 = time.perf_counter()
    report: dict[str, Any] = {"shard": shard, "images": len(items), "pid": os.getpid(), "errors": 0}
    if shard_path(job.out, shard).exists():
        return {**report, "status": "skipped", "seconds": 0.0}
    engine = engine_for(job)
    t_engine = time.perf_counter() - t0
    state = _Shard(job, engine, shard, items)
    batch: list[_Decoded] = []
    try:
        for rec in _read_ahead(items, job.max_pixels, 2 * job.batch_size):
            if rec.error is not None:
                state.fail(rec, rec.error)
                continue
            batch.append(rec)
            if len(batch) >= job.batch_size:
                state.run_batch(batch)
                batch = []
        state.run_batch(batch)
    finally:
        state.finish()
    committed = commit_shard(job.out, shard, state.rows, state.maps)
    errors = sum(1 for r in state.rows if r.get("error"))
    return {
        **report, "status": "computed" if committed else "lost-race", "errors": errors,
        "seconds": time.perf_counter() - t0, "engine_seconds": t_engine,
    }  # fmt: skip
