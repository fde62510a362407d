"""Run every benchmark and rewrite BENCHMARKS.md (+ bench/benchmarks.png).

    .venv/bin/python -m bench.run_all            # everything (what `make bench` runs), ~10 min on a quiet 2-core machine
    .venv/bin/python -m bench.run_all --quick    # smoke run -> bench/results/quick/ (BENCHMARKS.md untouched)
    .venv/bin/python -m bench.run_all --only kernel_latency --only scaling
    .venv/bin/python -m bench.run_all --report-only   # rewrite BENCHMARKS.md from bench/results/*.json

Each benchmark runs in its own process (``python -m bench.<name> --out ...``) so that memory numbers start clean
and one failure does not stop the rest.  Benchmark-only packages (bench/requirements.txt) are installed into this
interpreter's environment first when missing.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from . import common
from .report import write_report

__all__ = ["BENCHMARKS", "ensure_requirements", "main", "write_report"]

BENCHMARKS = (
    "kernel_latency", "before_after", "throughput", "memory", "scaling", "refit", "methods", "browser_latency", "batch",
    "trust",
    "views",
    "canvas_latency",
)
REQUIREMENTS = common.BENCH_DIR / "requirements.txt"


def _requirement_names(path: Path = REQUIREMENTS) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def ensure_requirements(path: Path = REQUIREMENTS) -> list[str]:
    """Install the benchmark-only packages into this environment when missing; return what was installed."""
    missing = []
    for req in _requirement_names(path):
        name = re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(req)
    if missing:
        common.log(f"[run_all] installing benchmark-only packages: {missing}")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *missing],
            check=True,
        )
    return missing


def run_one(name: str, out: Path, quick: bool) -> dict:
    cmd = [sys.executable, "-m", f"bench.{name}", "--out", str(out)] + (["--quick"] if quick else [])
    common.log(f"[run_all] {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=common.REPO_ROOT, stdout=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    sys.stdout.write(proc.stdout)
    return {"name": name, "returncode": proc.returncode, "seconds": round(dt, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fast smoke run into bench/results/quick/")
    ap.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these (repeatable)")
    ap.add_argument("--skip", action="append", choices=BENCHMARKS, default=[], help="skip these (repeatable)")
    ap.add_argument(
        "--report-only", action="store_true", help="only rewrite the report from existing results"
    )
    args = ap.parse_args(argv)

    results = common.RESULTS_DIR / ("quick" if args.quick else "")
    results.mkdir(parents=True, exist_ok=True)
    md = (results / "BENCHMARKS.md") if args.quick else common.REPO_ROOT / "BENCHMARKS.md"
    png = (results / "benchmarks.png") if args.quick else common.BENCH_DIR / "benchmarks.png"
    runs = []
    if not args.report_only:
        ensure_requirements()
        for name in args.only or BENCHMARKS:
            if name in args.skip:
                continue
            runs.append(run_one(name, results / f"{name}.json", args.quick))
    path = write_report(results, md, png, runs=runs)
    failed = [r for r in runs if r["returncode"] != 0]
    common.log(f"[run_all] wrote {path} and {png}" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
