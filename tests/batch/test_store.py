"""Shard files: committed once (temp file + hard link), never half-written, readable without pickle."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cam_widget.batch import load_maps
from cam_widget.batch.store import LOG, commit_shard, done_shards, read_shard_rows, shard_path, write_atomic


def test_a_shard_is_committed_once_and_the_second_writer_changes_nothing(tmp_path):
    rows = [{"path": "a.jpg", "predicted": 3, "probability": 0.5}]
    first = {"cam": np.arange(49, dtype=np.float32).reshape(1, 7, 7)}
    assert commit_shard(tmp_path, 4, rows, first) is True
    assert commit_shard(tmp_path, 4, [{"path": "other"}], {"cam": np.zeros((1, 7, 7))}) is False
    assert read_shard_rows(tmp_path, 4) == rows
    np.testing.assert_array_equal(load_maps(tmp_path, 4, "cam"), first["cam"])
    assert done_shards(tmp_path) == {4} and shard_path(tmp_path, 4).name == "shard-00004.npz"
    assert [line.split()[0] for line in (tmp_path / LOG).read_text().splitlines()] == ["4"]
    assert not [p for p in (tmp_path / "maps").iterdir() if p.name != "shard-00004.npz"]  # no temp files left
    with np.load(shard_path(tmp_path, 4), allow_pickle=False) as z:
        assert sorted(z.files) == ["map_cam", "rows"]
    with pytest.raises(KeyError, match="has no maps for method 'gradcam'"):
        load_maps(tmp_path, 4, "gradcam")


def test_racing_writers_publish_exactly_one_whole_file(tmp_path):
    results: list[bool] = []
    payloads = [np.full((8, 7, 7), i, np.float32) for i in range(6)]

    def write(i: int) -> None:
        results.append(commit_shard(tmp_path, 0, [{"writer": i}], {"cam": payloads[i]}))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    winner = read_shard_rows(tmp_path, 0)[0]["writer"]
    np.testing.assert_array_equal(load_maps(tmp_path, 0, "cam"), payloads[winner])  # rows and maps of one writer
    assert len((tmp_path / LOG).read_text().splitlines()) == 1


def test_write_atomic_replaces_whole_files(tmp_path):
    target = tmp_path / "sub" / "f.json"
    assert write_atomic(target, b"one") and write_atomic(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in target.parent.iterdir()] == ["f.json"]
    assert write_atomic(target, b"three", exclusive=True) is False and target.read_bytes() == b"two"
