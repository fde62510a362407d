"""``run(job, scheduler="local")``: the LocalCluster path, end to end, against the in-process run.

A tiny job (6 photos, 3 shards) on a LocalCluster of one worker process (sized for the test through
:func:`cam_widget.batch.dask_backend.local_cluster`, which ``"local"`` calls): the rows and maps equal
the in-process ones, the shards were written by another process, the cluster listens on loopback only
(not on Dask's default port 8787), and afterwards every process the cluster started is gone and its
scratch folder removed.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cam_widget.batch import BatchJob, load_maps, run
from cam_widget.batch.store import LOG

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")  # a dependency of distributed


def _is_resource_tracker(proc: object) -> bool:
    try:
        return any("resource_tracker" in part for part in proc.cmdline())  # type: ignore[attr-defined]
    except psutil.NoSuchProcess:
        return False


def _scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("cam-widget-dask-*")}


def test_local_cluster_matches_in_process_and_leaves_nothing_behind(photo_csv, tmp_path, monkeypatch):
    from cam_widget.batch import dask_backend

    items = [str(p) for p in sorted(photo_csv.parent.glob("*.jpg"))[:6]]
    job = BatchJob(items=items, out=tmp_path / "here", methods=("cam", "gradcam"), shard_size=2, batch_size=2)
    here = run(job)

    started: list[object] = []
    real = dask_backend.local_cluster

    def one_worker() -> tuple[object, object]:
        cluster, close = functools.partial(real, workers=1)()
        started.append(cluster)
        assert len(cluster.workers) == 1
        # the scheduler (in this process), the nanny and the worker listen on loopback only
        procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
        listening = [c.laddr for p in procs for c in p.net_connections(kind="inet") if c.status == "LISTEN"]
        assert listening and {a.ip for a in listening} == {"127.0.0.1"}
        assert 8787 not in {a.port for a in listening}  # Dask's default dashboard port stays the user's
        return cluster, close

    monkeypatch.setattr(dask_backend, "local_cluster", one_worker)
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    scratch_before = _scratch_dirs()

    there = run(BatchJob(**{**job.__dict__, "out": str(tmp_path / "there")}), scheduler="local")

    assert len(started) == 1
    assert there.computed == [0, 1, 2] == here.computed
    pd.testing.assert_frame_equal(there.results, here.results, check_exact=False, rtol=1e-5, atol=1e-6)
    for k in range(3):
        for method, maps in load_maps(job.out, k).items():
            np.testing.assert_allclose(load_maps(there.out, k, method), maps, rtol=1e-5, atol=1e-5)
    writers = {int(line.split()[2]) for line in (there.out / LOG).read_text().splitlines()}
    assert len(writers) == 1 and os.getpid() not in writers  # computed by the worker process

    # every process the cluster started has exited, and its scratch folder is gone
    # (multiprocessing's resource tracker, started by the first spawned child, lives as long as this process)
    new = [p for p in me.children(recursive=True) if p.pid not in before and not _is_resource_tracker(p)]
    _gone, alive = psutil.wait_procs(new, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert not psutil.pid_exists(next(iter(writers)))
    assert _scratch_dirs() <= scratch_before
