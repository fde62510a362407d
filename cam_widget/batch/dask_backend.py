"""Running shards on Dask distributed (imported only when a scheduler is given).

One task per group of consecutive shards (:data:`MAX_SHARDS_PER_TASK`), each calling
:func:`cam_widget.batch.shard.process_shards` with the job (plain data) on a worker; the worker
builds its engine once (:func:`cam_widget.batch.engines.engine_for`) and keeps it for its later
tasks.  When a worker dies, the scheduler re-runs its task elsewhere, which skips the shards
already committed; the shard file's exclusive commit makes sure each is written once.  The output folder must be
storage every worker (and this process) can reach under the same path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..optional import require
from .items import Item
from .job import BatchJob, BatchJobError
from .shard import process_shards

__all__ = ["client_for", "local_cluster", "run_shards"]


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def local_cluster(workers: int | None = None) -> tuple[Any, Callable[[], None]]:
    """``(LocalCluster, close)``: ``workers`` single-threaded worker processes (default: one per core)
    on 127.0.0.1, no dashboard, their scratch space in a temporary folder that ``close`` removes
    after stopping the cluster (and with it every process it started)."""
    distributed = require("distributed", "Running on Dask", "run with scheduler=None (in this process)")
    scratch = tempfile.mkdtemp(prefix="cam-widget-dask-")
    try:
        cluster = distributed.LocalCluster(
            n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, local_directory=scratch,
            # the scheduler's HTTP routes (health, metrics) start even without a dashboard, by default on
            # port 8787: a free port instead, so a user's own dashboard there keeps its port
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

    def close() -> None:
        try:
            cluster.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return cluster, close


def client_for(scheduler: Any) -> tuple[Any, list[Callable[[], None]]]:
    """``(client, things to call afterwards to close what was opened here)`` for ``"local"``, an address,
    or a ``Client`` (which is left open)."""
    distributed = require("distributed", "Running on Dask", "run with scheduler=None (in this process)")
    Client = distributed.Client
    if isinstance(scheduler, Client):
        return scheduler, []
    if scheduler == "local":
        cluster, close = local_cluster()
        try:
            client = Client(cluster)
        except BaseException:
            close()
            raise
        return client, [client.close, close]
    if isinstance(scheduler, str) and "://" in scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise BatchJobError(f"Cannot reach the Dask scheduler at {scheduler}: {err}") from None
        return client, [client.close]
    raise BatchJobError(
        f"scheduler must be None (this process), 'local', an address such as 'tcp://10.0.0.5:8786', or a "
        f"distributed.Client; got {scheduler!r}."
    )


#: At most this many consecutive shards per task.  A task runs its shards as one pipeline
#: (:func:`~cam_widget.batch.shard.process_shards`: the reader runs ahead into the next shard, the
#: last batch's scores and the file are written while the model runs the next shard), so a shard
#: boundary inside a task costs nothing, while one between tasks makes the model wait for the first
#: batch's decoding and the last batch's scoring.  The cap keeps tasks small enough for progress,
#: balancing and re-running after a lost worker (which skips the task's already committed shards).
MAX_SHARDS_PER_TASK = 8


def _groups(shards: Sequence[tuple[int, list[Item]]], workers: int) -> list[list[tuple[int, list[Item]]]]:
    """Consecutive shards in tasks: as few as give every worker one (at most ``MAX_SHARDS_PER_TASK``)."""
    size = max(1, min(MAX_SHARDS_PER_TASK, -(-len(shards) // max(1, workers))))
    return [list(shards[i : i + size]) for i in range(0, len(shards), size)]


def _run_group(job: BatchJob, shards: list[tuple[int, list[Item]]]) -> list[dict[str, Any]]:
    """One task: its shards through one pipeline; one report per shard."""
    return list(process_shards(job, shards))


def run_shards(
    job: BatchJob, shards: Sequence[tuple[int, list[Item]]], scheduler: Any, show_progress: bool = False
) -> Iterator[dict[str, Any]]:
    """Submit the shards as tasks of consecutive shards and yield each shard's report as its task finishes."""
    from distributed import as_completed

    client, owned = client_for(scheduler)
    try:
        if not shards:
            return
        token = uuid.uuid4().hex[:8]
        workers = len(client.nthreads())  # the workers connected now (more may join later)
        futures = [
            client.submit(
                _run_group,
                job,
                [(k, list(items)) for k, items in group],
                key=f"cam-widget-shard-{group[0][0]:05d}-{group[-1][0]:05d}-{token}",
                pure=False,
            )
            for group in _groups(shards, workers)
        ]
        if show_progress and _in_notebook():
            from distributed import progress

            progress(futures)  # Dask's progress widget in Jupyter
        try:
            # on this client's event loop: as_completed's default is the newest client's, and waiting there
            # for another client's futures only notices them when that loop next wakes (seconds late)
            for fut in as_completed(futures, loop=client.loop):
                try:
                    yield from fut.result()
                except Exception as err:
                    first, last = (int(v) for v in fut.key.split("-")[3:5])
                    which = f"shard {first}" if first == last else f"shards {first}-{last}"
                    raise BatchJobError(
                        f"{which} failed on the cluster: {type(err).__name__}: {' '.join(str(err).split())} "
                        "(are the model and the output folder at the same path on every worker?)"
                    ) from err
        finally:
            for fut in futures:
                fut.release()
    finally:
        for close in owned:
            close()
