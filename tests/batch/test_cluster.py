"""A real Dask cluster on 127.0.0.1: ``dask scheduler`` + two ``dask worker`` processes started here.

One test, in steps (each builds on the last; the cluster starts once):

1. the same job of 40 photos in this process and on the cluster: identical rows, allclose maps;
2. again into a fresh folder, SIGKILLing one worker (by PID) while it runs a shard: the job completes,
   every shard is committed exactly once, the results are identical;
3. three shard files deleted, the job re-run: exactly those three shards are recomputed;
4. with a newer client in this process, the job still waits on its own client's event loop.

Workers import cam_widget from the tree under test (PYTHONPATH is passed explicitly).  Every process
started here is stopped by its PID in ``finally``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.batch import LoopbackCluster, write_photo_set
from cam_widget.batch import BatchJob, load_maps, run
from cam_widget.batch.store import LOG, done_shards, shard_path

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]


def _same(out_a: Path, out_b: Path, shards: int) -> None:
    out_a, out_b = Path(out_a), Path(out_b)
    a = pd.read_parquet(out_a / "results.parquet")
    b = pd.read_parquet(out_b / "results.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-6)
    for k in range(shards):
        for method, maps in load_maps(out_a, k).items():
            np.testing.assert_allclose(load_maps(out_b, k, method), maps, rtol=1e-5, atol=1e-5)


def _log(out: Path) -> list[int]:
    return [int(line.split()[0]) for line in (out / LOG).read_text().splitlines()]


def test_real_cluster_matches_in_process_survives_a_killed_worker_and_resumes(tmp_path):
    csv = write_photo_set(tmp_path / "photos", count=40)
    job = BatchJob(items=str(csv), out=tmp_path / "local", methods=("cam", "gradcam"), shard_size=5, batch_size=5)
    local = run(job)  # in this process
    assert len(local.results) == 40 and local.errors == 0 and local.computed == list(range(8))

    cluster = None
    client = None
    try:
        cluster = LoopbackCluster(tmp_path, ROOT, workers=2)
        procs = cluster.procs
        client = distributed.Client(cluster.address, timeout="60s")
        client.wait_for_workers(2, timeout=90)
        pids = client.run(os.getpid)  # {worker address: pid}
        assert sorted(pids.values()) == sorted(p.pid for p in procs[1:])
        assert set(client.run(lambda: __import__("cam_widget").__file__).values()) == {
            str(ROOT / "cam_widget" / "__init__.py")
        }  # the workers run the tree under test

        # 1. identical to the in-process run
        first = run(BatchJob(**{**job.__dict__, "out": str(tmp_path / "cluster")}), client)
        assert first.computed == list(range(8))
        _same(job.out, tmp_path / "cluster", 8)
        assert sorted(_log(tmp_path / "cluster")) == list(range(8))

        # 2. SIGKILL a worker while it runs a shard
        out = tmp_path / "killed"
        killed_job = BatchJob(**{**job.__dict__, "out": str(out)})
        box: dict[str, object] = {}
        runner = threading.Thread(target=lambda: box.update(result=run(killed_job, client)), daemon=True)
        runner.start()
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and runner.is_alive():
            for addr, keys in client.processing().items():
                running = [k for k in keys if str(k).startswith("cam-widget-shard-")]  # first-last shard of a task
                span = range(int(str(running[0]).split("-")[3]), int(str(running[0]).split("-")[4]) + 1) if running else ()
                shard = next((k for k in span if not shard_path(out, k).exists()), None)
                if shard is not None and addr in pids:
                    victim = (addr, shard)
                    os.kill(pids[addr], signal.SIGKILL)
                    break
            time.sleep(0.005)
        assert victim is not None, "no shard was seen running"
        runner.join(timeout=120)
        assert not runner.is_alive() and "result" in box
        killed = box["result"]
        dead = next(p for p in procs if p.pid == pids[victim[0]])
        assert dead.wait(timeout=10) == -signal.SIGKILL
        assert sorted(_log(out)) == list(range(8))  # every shard committed exactly once
        assert done_shards(out) == set(range(8))
        _same(job.out, out, 8)
        assert len(killed.results) == 40  # type: ignore[attr-defined]

        # 3. delete three shard files: exactly those three are recomputed (on the surviving worker)
        for k in (1, 4, 6):
            shard_path(out, k).unlink()
        again = run(killed_job, client)
        assert again.computed == [1, 4, 6] and again.skipped == [0, 2, 3, 5, 7]
        assert sorted(_log(out)) == sorted([*range(8), 1, 4, 6])
        _same(job.out, out, 8)

        # 4. a newer client in this process (Dask's default client now) does not take over waiting for the
        # futures of the client the job runs on: their loop is that client's (found late on the other one)
        loops: list[object] = []
        real = distributed.as_completed

        def recording(futures, *args, **kwargs):
            loops.append(kwargs.get("loop"))
            return real(futures, *args, **kwargs)

        with distributed.Client(cluster.address, timeout="60s") as newer:
            assert distributed.default_client() is newer
            shard_path(out, 2).unlink()
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(distributed, "as_completed", recording)
                assert run(killed_job, client).computed == [2]
        assert loops == [client.loop] and client.loop is not newer.loop
        _same(job.out, out, 8)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.stop()  # every process started here, by PID
    assert cluster is not None and all(p.poll() is not None for p in cluster.procs)
