"""The output folder: where shards live, how they are committed, how the results are read back.

Layout of ``out/``::

    job.json                 the job, versions, timings (rewritten at the end of every run)
    results.parquet          one row per image (rebuilt from the shards at the end of every run)
    summary.json             the set's metrics (see :mod:`cam_widget.batch.summary`)
    maps/shard-NNNNN.npz     per shard: one float32 array (n, h, w) per method, NaN for failed
                             rows, and the shard's rows as UTF-8 JSON (key ``rows``); no pickle
    shards.log               one line per committed shard: shard, host, pid, time

A shard is *done* when its ``.npz`` exists.  It is written to a temporary name in the same folder
and then hard-linked to its final name, which fails if the name exists: the first writer wins,
a second (a task Dask re-ran after losing its worker) discards its copy, and a reader never sees a
half-written file.  Pure numpy/pandas; no TensorFlow.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..optional import require

__all__ = [
    "commit_shard",
    "done_shards",
    "load_maps",
    "read_results",
    "read_shard_rows",
    "shard_path",
    "write_atomic",
]

MAPS_DIR = "maps"
RESULTS = "results.parquet"
JOB_FILE = "job.json"
SUMMARY = "summary.json"
LOG = "shards.log"


def shard_path(out: str | os.PathLike, shard: int) -> Path:
    """``out/maps/shard-NNNNN.npz``."""
    return Path(out) / MAPS_DIR / f"shard-{shard:05d}.npz"


def done_shards(out: str | os.PathLike) -> set[int]:
    """Shard numbers whose file is committed."""
    folder = Path(out) / MAPS_DIR
    if not folder.is_dir():
        return set()
    return {int(p.stem.split("-")[1]) for p in folder.glob("shard-[0-9]*.npz")}


def _link_or_fail(tmp: Path, final: Path) -> bool:
    """Publish ``tmp`` as ``final`` unless ``final`` exists; ``True`` if this call published it."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: rename (atomic, but the last writer wins)
        if final.exists():
            return False
        os.replace(tmp, final)
        return True
    return True


def write_atomic(path: str | os.PathLike, data: bytes, exclusive: bool = False) -> bool:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    ``exclusive=True`` never replaces an existing file (returns ``False`` then); otherwise the
    file is replaced atomically.  Returns whether this call wrote ``path``."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            return _link_or_fail(tmp, final)
        os.replace(tmp, final)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def commit_shard(out: str | os.PathLike, shard: int, rows: list[dict[str, Any]], maps: Mapping[str, np.ndarray]) -> bool:
    """Write one shard's maps and rows as ``maps/shard-NNNNN.npz``, once.  ``False`` if another
    writer had already committed this shard (then nothing is changed)."""
    buf = io.BytesIO()
    payload = {f"map_{name}": np.asarray(arr, np.float32) for name, arr in maps.items()}
    payload["rows"] = np.frombuffer(json.dumps(rows, default=_json_default, allow_nan=False).encode(), np.uint8)
    np.savez(buf, **payload)
    wrote = write_atomic(shard_path(out, shard), buf.getvalue(), exclusive=True)
    if wrote:
        line = f"{shard} {socket.gethostname()} {os.getpid()} {time.time():.3f}\n".encode()
        fd = os.open(Path(out) / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one small O_APPEND write: lines from several workers never mix
        finally:
            os.close(fd)
    return wrote


def _open(out: str | os.PathLike, shard: int) -> Any:
    return np.load(shard_path(out, shard), allow_pickle=False)


def read_shard_rows(out: str | os.PathLike, shard: int) -> list[dict[str, Any]]:
    """The rows stored in one shard file."""
    with _open(out, shard) as z:
        return json.loads(z["rows"].tobytes().decode())


def load_maps(out: str | os.PathLike, shard: int, method: str | None = None) -> dict[str, np.ndarray] | np.ndarray:
    """The raw maps of one shard: ``{method: (n, h, w)}``, or one method's array."""
    with _open(out, shard) as z:
        maps = {k[len("map_") :]: z[k] for k in z.files if k.startswith("map_")}
    if method is None:
        return maps
    if method not in maps:
        raise KeyError(f"shard {shard} has no maps for method {method!r}; it has {sorted(maps)}.")
    return maps[method]


def _pandas(purpose: str) -> Any:
    """pandas, with pyarrow for its parquet engine; a missing one names ``pip install "cam-widget[batch]"``."""
    require("pyarrow", purpose)
    return require("pandas", purpose)


def read_results(out: str | os.PathLike) -> Any:
    """``results.parquet`` of an output folder as a pandas DataFrame."""
    pd = _pandas("Reading the batch results table")

    path = Path(out) / RESULTS
    if not path.is_file():
        from .job import BatchJobError

        raise BatchJobError(f"{str(path)!r} does not exist: run the job first (cam-widget batch ... --out {out}).")
    return pd.read_parquet(path)


def read_json(path: str | os.PathLike) -> dict[str, Any] | None:
    """A JSON file's content, or ``None`` when it does not exist."""
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else None


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (replacing the file)."""
    write_atomic(path, json.dumps(data, indent=2, default=_json_default).encode() + b"\n")


def write_parquet(path: str | os.PathLike, rows: Iterable[dict[str, Any]], columns: list[str]) -> Any:
    """Write rows as a parquet table (atomically); returns the DataFrame."""
    pd = _pandas("Writing the batch results table")

    frame = pd.DataFrame(list(rows), columns=columns)
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    write_atomic(path, buf.getvalue())
    return frame
