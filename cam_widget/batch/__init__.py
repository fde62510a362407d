"""Dataset-scale CAMs and scores: in this process, on a local Dask cluster or on an existing one.

::

    from cam_widget.batch import BatchJob, run
    job = BatchJob(items="val/", out="runs/val", methods=("cam", "gradcam"), metrics=("iou", "pointing"))
    result = run(job)                         # in this process; run(job, "tcp://host:8786") on Dask
    result.summary.table()                    # top-1/top-5 error, localisation error, pointing
    cam_widget.Gallery("runs/val")            # browse the worst cases

A job is plain data (:class:`BatchJob`); each process builds its engine from it once.  The
output folder holds ``results.parquet`` (one row per image), ``maps/shard-NNNNN.npz`` (raw maps,
no pickle) and ``job.json``.  See docs/BATCH.md.
"""

from __future__ import annotations

from .items import Item, collect_items, imagenet_wnids
from .job import BatchJob, BatchJobError
from .runner import BatchResult, plan, run
from .store import load_maps, read_results
from .summary import Summary, summarize

__all__ = [
    "BatchJob",
    "BatchJobError",
    "BatchResult",
    "Item",
    "Summary",
    "collect_items",
    "imagenet_wnids",
    "load_maps",
    "plan",
    "read_results",
    "run",
    "summarize",
]
