"""Shared pieces of the benchmark harness: timing, statistics, the machine description, images, JSON I/O.

Nothing here imports TensorFlow at module import time, so ``bench.run_all`` can describe the machine and start the
benchmarks (each in its own process) cheaply.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

#: The photo every single-image benchmark uses (a tabby cat; top-1 of the default model is a cat class).
PHOTO = "chelsea"


# --------------------------------------------------------------------------------------------------------------
# Timing and statistics
# --------------------------------------------------------------------------------------------------------------


def now() -> float:
    return time.perf_counter()


def stats(samples_s: Sequence[float]) -> dict[str, Any]:
    """Median / quartiles / min / max in milliseconds of ``samples_s`` (seconds)."""
    ms = sorted(float(s) * 1e3 for s in samples_s)
    if not ms:
        return {"n": 0, "median_ms": None}

    def q(p: float) -> float:
        if len(ms) == 1:
            return ms[0]
        k = p * (len(ms) - 1)
        lo, hi = int(k), min(int(k) + 1, len(ms) - 1)
        return ms[lo] + (ms[hi] - ms[lo]) * (k - lo)

    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 4),
        "p25_ms": round(q(0.25), 4),
        "p75_ms": round(q(0.75), 4),
        "min_ms": round(ms[0], 4),
        "max_ms": round(ms[-1], 4),
    }


def time_calls(fn: Callable[[int], Any], repeats: int, warmup: int = 0) -> list[float]:
    """Call ``fn(i)`` ``warmup + repeats`` times; return the wall-clock seconds of the last ``repeats``."""
    out = []
    for i in range(warmup + repeats):
        t0 = now()
        fn(i)
        dt = now() - t0
        if i >= warmup:
            out.append(dt)
    return out


def ratio(a: dict[str, Any] | float | None, b: dict[str, Any] | float | None) -> float | None:
    """``median(a) / median(b)`` (either may be a stats dict or a number)."""
    va = a.get("median_ms") if isinstance(a, dict) else a
    vb = b.get("median_ms") if isinstance(b, dict) else b
    if va is None or vb is None or vb == 0:
        return None
    return round(float(va) / float(vb), 2)


def quiet_gc() -> None:
    gc.collect()


# --------------------------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _chromium_version() -> str | None:
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(path):
        return None
    with contextlib.suppress(Exception):
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.strip().splitlines()[0] if out.strip() else None
    return None


def _git(*args: str) -> str | None:
    with contextlib.suppress(Exception):
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
        if out.returncode == 0:
            return out.stdout.strip()
    return None


def load_snapshot() -> dict[str, Any]:
    """Load averages and the busiest other processes right now (the machines are shared)."""
    snap: dict[str, Any] = {"time": _dt.datetime.now().isoformat(timespec="seconds")}
    with contextlib.suppress(OSError):
        snap["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    with contextlib.suppress(Exception):
        import psutil

        snap["cpu_percent_1s"] = psutil.cpu_percent(interval=1.0)
    with contextlib.suppress(OSError, ValueError):
        # /proc/stat's first line: user nice system idle iowait irq softirq steal ... (jiffies since boot)
        snap["cpu_jiffies"] = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return snap


def cpu_during(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float] | None:
    """Shares of CPU time between two :func:`load_snapshot` calls: ``steal_pct`` (time the hypervisor gave
    to other guests: a VM's benchmarks are only as steady as this is low), ``idle_pct`` and ``busy_pct``."""
    a, b = before.get("cpu_jiffies"), after.get("cpu_jiffies")
    if not a or not b:
        return None
    d = [y - x for x, y in zip(a, b, strict=True)]
    total = sum(d)
    if total <= 0:
        return None
    idle = d[3] + d[4]
    return {"steal_pct": round(100 * d[7] / total, 1), "idle_pct": round(100 * idle / total, 1),
            "busy_pct": round(100 * (total - idle - d[7]) / total, 1)}  # fmt: skip


DISTRIBUTIONS = (
    "tensorflow-cpu", "tensorflow", "keras", "numpy", "opencv-python-headless", "matplotlib", "ipywidgets",
    "jupyterlab", "ipykernel", "playwright", "tf-keras-vis", "psutil", "cam-widget",
)  # fmt: skip


def machine_info(chromium: bool = True) -> dict[str, Any]:
    """What this run ran on: CPU, cores, RAM, OS, library versions, commit."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count()
    info = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in DISTRIBUTIONS},
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty_files": len((_git("status", "--porcelain", "--untracked-files=no") or "").splitlines()),
    }
    info["versions"] = {k: v for k, v in info["versions"].items() if v}
    if chromium:
        info["chromium"] = _chromium_version()
    return info


def rss_bytes() -> int:
    """Resident set size of this process."""
    import psutil

    return int(psutil.Process().memory_info().rss)


# --------------------------------------------------------------------------------------------------------------
# Engine and images
# --------------------------------------------------------------------------------------------------------------

_ENGINES: dict[tuple[int, int], Any] = {}


def engine(input_size: int = 224, cache_bytes: int | None = None) -> Any:
    """The default EfficientNet-Lite0 engine, built once per process.  With ``cache_bytes``: a fresh engine (own
    cache, own compiled functions) on the same model and preprocessing."""
    import cam_widget

    key = (input_size, 0)
    if key not in _ENGINES:
        _ENGINES[key] = cam_widget.default_engine(input_size)
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # fresh engines below retrace on purpose; no retracing warnings
    if cache_bytes is None:
        return _ENGINES[key]
    base = _ENGINES[key]
    from cam_widget.defaults import default_preprocess

    return cam_widget.CAMEngine(
        base.model,
        preprocess=default_preprocess,
        class_names=base.class_names,
        input_size=base.input_size,
        cache_bytes=cache_bytes,
    )


def photo(name: str = PHOTO) -> Any:
    from cam_widget.samples import sample_image

    return sample_image(name)


def at_longest(rgb: Any, longest: int) -> Any:
    """``rgb`` resized (up or down) so that its longest side is ``longest`` pixels."""
    import cv2
    import numpy as np

    h, w = rgb.shape[:2]
    s = float(longest) / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == (w, h):
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interp))


def variants(n: int, longest: int | None = None) -> list[Any]:
    """``n`` distinct photos (different content, hence different cache keys) made from the sample photos:
    each sample as is, mirrored, and cropped to varying windows."""
    import numpy as np

    from cam_widget.samples import sample_images

    base = list(sample_images().values())
    out = []
    i = 0
    while len(out) < n:
        img = base[i % len(base)]
        k = i // len(base)
        if k % 2 == 1:
            img = img[:, ::-1]
        if k >= 2:
            h, w = img.shape[:2]
            f = 0.9 - 0.05 * ((k // 2) % 8)  # crop 90% .. 55% of each side
            ch, cw = max(32, int(h * f)), max(32, int(w * f))
            y = (k * 7919) % max(1, h - ch + 1)
            x = (k * 104729) % max(1, w - cw + 1)
            img = img[y : y + ch, x : x + cw]
        img = np.ascontiguousarray(img)
        if longest is not None:
            img = at_longest(img, longest)
        out.append(img)
        i += 1
    return out


# --------------------------------------------------------------------------------------------------------------
# Command line and results
# --------------------------------------------------------------------------------------------------------------


def arg_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a fast smoke run: fewer repeats and sizes")
    p.add_argument(
        "--out", type=Path, default=None, help="JSON file for the results (default bench/results/)"
    )
    p.add_argument("--repeats", type=int, default=None, help="override the number of timed repeats")
    return p


def default_out(name: str, quick: bool) -> Path:
    return RESULTS_DIR / (f"{name}.quick.json" if quick else f"{name}.json")


def command_for(module: str, quick: bool = False) -> str:
    return f".venv/bin/python -m bench.{module}" + (" --quick" if quick else "")


def save(result: dict[str, Any], out: Path | None, name: str, quick: bool) -> Path:
    path = Path(out) if out is not None else default_out(name, quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    return path


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def envelope(
    name: str, quick: bool, body: dict[str, Any], started: float, load_before: dict[str, Any]
) -> dict:
    """The common wrapper every benchmark writes: what, how to rerun, when, on what, how loaded."""
    return {
        "benchmark": name,
        "command": command_for(name, quick),
        "quick": quick,
        "started": load_before.get("time"),
        "seconds": round(now() - started, 1),
        "load_before": load_before,
        "load_after": (after := load_snapshot()),
        "cpu_during_run": cpu_during(load_before, after),
        "machine": machine_info(chromium=(name == "browser_latency")),
        **body,
    }


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v < 1:
        return f"{v:.3f} ms"
    if v < 10:
        return f"{v:.2f} ms"
    return f"{v:.1f} ms"


def run_cli(name: str, doc: str | None, run: Callable[..., dict[str, Any]], argv: list[str] | None) -> tuple[dict[str, Any], Path]:
    """The shared ``main()`` of every benchmark: parse ``--quick/--repeats/--out``, run, save the JSON.

    Returns the result body (for the benchmark's own printout) and the path written.
    """
    args = arg_parser((doc or name).splitlines()[0]).parse_args(argv)
    started, load = now(), load_snapshot()
    body = run(quick=args.quick, repeats=args.repeats)
    result = envelope(name, args.quick, body, started, load)
    return body, save(result, args.out, name, args.quick)
