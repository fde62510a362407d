"""Shards of a job: read their images, run the model in batches, score the maps, commit the files.

:func:`process_shards` is the pipeline every backend runs (in this process over all of a job's
shards, on a Dask worker over the consecutive shards of one task; :func:`process_shard` for one).  Three stages overlap:

* reader threads read, hash (sha256 of the file) and decode the next images, resize each to
  the model's input size and hashes those pixels for the engine's cache (:meth:`CAMEngine.prepared`),
  running ahead across shard boundaries;
* this thread runs the model on the current batch (one forward pass, then each method's maps);
* a scoring thread upsamples the previous batches' maps to find peaks, boxes and scores, and writes
  each finished shard's file while this thread already runs the next shard's forward passes.

OpenCV, hashlib, file reads and TensorFlow release the GIL, so the stages really run side by side.
Only the resized image travels on: every method and metric sees an image only through
``resize_to(image, engine.input_size)``, which is the identity on it, so the numbers are those of
the full-resolution photo; the photo's own size is kept for the peaks and boxes.  An image that
cannot be used (missing, empty, corrupt, too large) becomes a row with its ``error`` and the shard
goes on; so does a map that fails for one method (``<method>_error``).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import CAMError
from ..imaging import MAX_BYTES, resize_to
from ..imaging import _decode as decode_bytes
from ..metrics.faithfulness import deletion_insertion
from ..metrics.localize import UninformativeMapError, iou, peak, peak_and_box, point_box_distance
from ..render import upsample
from .engines import engine_for
from .items import Item
from .job import BatchJob
from .store import commit_shard, shard_path

__all__ = ["columns", "process_shard", "process_shards"]

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
    shard: int  # position of the shard in the list being processed
    index: int  # row within the shard
    item: Item
    image: Any  # the engine's PreparedImage of the model-input-size pixels, or None
    facts: dict[str, Any]
    error: str | None

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the original photo (peaks and boxes are in its pixels)."""
        return int(self.facts["height"]), int(self.facts["width"])


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _read(engine: Any, shard: int, index: int, item: Item, max_pixels: int) -> _Decoded:
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
        facts["height"], facts["width"] = int(rgb.shape[0]), int(rgb.shape[1])
        # The engine resizes every image to its input size before anything else; doing it here, in this
        # thread, takes that work (and hashing the larger pixels) off the forward pass's thread.
        image = engine.prepared(resize_to(rgb, engine.input_size))
        return _Decoded(shard, index, item, image, facts, None)
    except FileNotFoundError:
        return _Decoded(shard, index, item, None, facts, "file not found")
    except (CAMError, OSError) as err:
        return _Decoded(shard, index, item, None, facts, _one_line(err))


#: Reader threads per process: two decode the first batch of a run in half the time (the model waits
#: for it) and keep ahead of the model afterwards; decoding, resizing and hashing release the GIL.
READERS = min(2, os.cpu_count() or 1)


def _read_ahead(
    engine: Any, shards: Sequence[tuple[int, Sequence[Item]]], max_pixels: int, depth: int
) -> Iterator[_Decoded]:
    """The items of ``shards`` read and decoded in order by :data:`READERS` background threads, at most
    ``depth`` ahead of the consumer (across shard boundaries, so the next shard's images are ready when
    this one ends)."""
    todo = ((s, i, item) for s, (_, items) in enumerate(shards) for i, item in enumerate(items))
    pool = ThreadPoolExecutor(READERS, thread_name_prefix="cam-widget-reader")
    ahead: deque[Future[_Decoded]] = deque(
        pool.submit(_read, engine, s, i, item, max_pixels) for s, i, item in itertools.islice(todo, max(1, depth))
    )
    try:
        while ahead:
            rec = ahead.popleft().result()
            for s, i, item in itertools.islice(todo, 1):
                ahead.append(pool.submit(_read, engine, s, i, item, max_pixels))
            yield rec
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Shard:
    """The rows and maps of one shard as they are filled in (rows and scores by the scoring thread)."""

    def __init__(self, job: BatchJob, engine: Any, shard: int, items: Sequence[Item], post: ThreadPoolExecutor) -> None:
        self.job, self.engine, self.shard, self.size = job, engine, shard, len(items)
        info = engine.layer(job.layer)
        self.layer = info.name
        h, w = int(info.shape[0]), int(info.shape[1])
        self.maps = {m: np.full((len(items), h, w), np.nan, np.float32) for m in job.methods}
        self.rows: list[dict[str, Any]] = [{} for _ in items]
        self.names = list(engine.class_names)
        self.started = time.perf_counter()
        self._post = post
        self._pending: list[Future[None]] = []

    def commit(self) -> dict[str, Any]:
        """Write the shard's file (in the scoring thread, after its rows); returns the shard's report."""
        for fut in self._pending:  # all done (one scoring thread, in order); re-raise what failed there
            fut.result()
        committed = commit_shard(self.job.out, self.shard, self.rows, self.maps)
        return {
            "shard": self.shard, "images": self.size, "pid": os.getpid(),
            "status": "computed" if committed else "lost-race", "errors": sum(1 for r in self.rows if r.get("error")),
            "seconds": time.perf_counter() - self.started,
        }  # fmt: skip

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
        batch = list(batch)  # the scoring thread keeps this list; the caller reuses its own
        images = [rec.image for rec in batch]
        try:
            self.engine.features_many(images, [self.layer])  # the one forward pass; cached for what follows
            probs = np.asarray(self.engine.predict(images), np.float64).reshape(len(batch), -1)
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
                cams[m] = np.asarray(self.engine.cam(images, predicted, layer=self.layer, method=m), np.float32)
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
        shape = rec.shape
        job, truth = self.job, rec.item.box
        # Upsample once for both the peak and the box (peak_and_box: the values of peak() and localize() on
        # it, box None where there is no positive evidence: a localisation miss), after checking the small map.
        try:
            if not (np.isfinite(cam).all() and cam.max() > cam.min()):
                peak(cam, shape)  # NaN or constant: raises the map's own error, which becomes the row's
            (row[f"{m}_peak_x"], row[f"{m}_peak_y"]), box = peak_and_box(upsample(cam, shape), job.threshold)
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
                    self.engine, rec.image, row["predicted"], saliency=cam, layer=self.layer, method=m,
                    random_baseline=False, batch_size=max(job.batch_size, 32),
                )  # fmt: skip
                for x in wanted:
                    row[f"{m}_{x}"] = float(getattr(rep, f"{x}_auc"))
        except UninformativeMapError as err:  # a constant map: no peak, nothing to score
            row[f"{m}_error"] = _one_line(err)
        except CAMError as err:
            row[f"{m}_error"] = _one_line(err)


def process_shards(job: BatchJob, shards: Sequence[tuple[int, Sequence[Item]]]) -> Iterator[dict[str, Any]]:
    """Compute and commit ``shards`` (``[(number, items), ...]``) in one pipeline; yield one report per
    shard, in order, as its file is committed.

    A report has ``shard``, ``status`` (``"computed"``, ``"skipped"`` when the file existed before,
    ``"lost-race"`` when another worker committed it meanwhile), ``images``, ``errors``, ``seconds``,
    ``pid`` and ``engine_seconds`` (building this process's engine; 0 once it is built).  The reader
    runs ahead into the next shard and the scoring thread commits a shard while the model already
    runs the next one, so shard boundaries do not stall the model."""
    t0 = time.perf_counter()
    todo = []
    for k, items in shards:
        if shard_path(job.out, k).exists():
            yield {"shard": k, "images": len(items), "pid": os.getpid(), "errors": 0, "status": "skipped", "seconds": 0.0}
        else:
            todo.append((k, list(items)))
    if not todo:
        return
    engine = engine_for(job)
    t_engine = time.perf_counter() - t0
    post = ThreadPoolExecutor(1, thread_name_prefix="cam-widget-score")
    commits: deque[Future[dict[str, Any]]] = deque()
    stream = _read_ahead(engine, todo, job.max_pixels, 2 * job.batch_size)
    states: dict[int, _Shard] = {}
    batch: list[_Decoded] = []

    def close_shard(s: int) -> None:
        state = states.pop(s)
        state.run_batch(batch)
        batch.clear()
        commits.append(post.submit(state.commit))

    try:
        for rec in stream:
            if rec.shard not in states:
                if states:  # the previous shard is complete: its last batch, then its file (scoring thread)
                    close_shard(next(iter(states)))
                states[rec.shard] = _Shard(job, engine, todo[rec.shard][0], todo[rec.shard][1], post)
            state = states[rec.shard]
            if rec.error is not None:
                state.fail(rec, rec.error)
            else:
                batch.append(rec)
                if len(batch) >= job.batch_size:
                    state.run_batch(batch)
                    batch.clear()
            while commits and commits[0].done():
                yield {**commits.popleft().result(), "engine_seconds": t_engine}
                t_engine = 0.0
        if states:
            close_shard(next(iter(states)))
        while commits:
            yield {**commits.popleft().result(), "engine_seconds": t_engine}
            t_engine = 0.0
    finally:
        stream.close()  # stops the reader threads
        post.shutdown(wait=True, cancel_futures=True)


def process_shard(job: BatchJob, shard: int, items: Sequence[Item]) -> dict[str, Any]:
    """Compute and commit one shard, unless it is already committed; returns its report (see
    :func:`process_shards`)."""
    return next(process_shards(job, [(shard, items)]))
