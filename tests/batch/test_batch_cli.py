"""``cam-widget batch``: exit status 0 / 1 / 2, one clear line for bad input, resumable by re-running."""

from __future__ import annotations

import pytest

from cam_widget.cli import main


def test_batch_command_runs_and_resumes(photo_csv, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(photo_csv), "--out", str(out), "--shard-size", "8", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "12 rows, 0 with errors; 2 shards computed, 0 already done" in text and "top1err" in text
    assert (out / "results.parquet").is_file() and (out / "maps" / "shard-00001.npz").is_file()
    assert main(["batch", str(photo_csv), "--out", str(out), "--shard-size", "8", "--no-progress"]) == 0
    assert "0 shards computed, 2 already done" in capsys.readouterr().out


def test_unreadable_images_give_exit_1(bad_folder, tmp_path, capsys):
    assert main(["batch", str(bad_folder), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "7 rows, 2 with errors" in capsys.readouterr().out  # corrupt + empty (huge is < 50 MP here)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: ["batch", str(d / "missing"), "--out", str(d / "o")], "No such folder or file"),
        (lambda d: ["batch", str(d / "l.csv"), "--out", str(d / "o")], "l.csv line 2: No class is named 'zebrafish'"),
        (lambda d: ["batch", str(d / "l.csv"), "--out", str(d / "o"), "--model", str(d / "m.keras")], "Could not load"),
        (lambda d: ["batch", str(d / "l.csv"), "--out", str(d / "o"), "--metrics", "iou,auc"], "Unknown metric"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_work(tmp_path, capsys, make, message, photo_csv):
    (tmp_path / "l.csv").write_text(f"path,label\n{photo_csv.parent / 'chelsea-100.jpg'},zebrafish\n")
    (tmp_path / "m.keras").write_bytes(b"not a zip")
    if message == "Could not load":
        (tmp_path / "l.csv").write_text(f"path,label\n{photo_csv.parent / 'chelsea-100.jpg'},3\n")
    assert main(make(tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cam-widget: error: ") and message in err[0]
    assert not (tmp_path / "o").exists()
