"""Before / after a product fix: the kernel interaction benchmark on an older ``cam_widget`` and on the current one.

The older package is exported read-only from git (``git archive <ref> cam_widget``) into a temporary folder that is
put first on ``PYTHONPATH``; the benchmark code (bench/) is the current one in both cases.  Runs alternate
before, after, before, after ... so that machine noise hits both; the report takes the median of the per-run
medians.

Default ``--ref``: edaeb07, the tree before the second round of fixes that followed this benchmark's findings
(db4cf93 render: ``cv2.applyColorMap`` blend, ``cv2.convertScaleAbs`` quantisation; 6a48d08 widget: JPEG live frames
at every size, image flushed first, one legend widget, no per-frame status rewrite, short class dropdown; d7fb494
render.encode: RGB -> BGR by ``cv2.cvtColor``).  The first
round (57cace0: ``cv2.LUT`` blend, RLE PNG, hashes of read-only photos) is measured with ``--ref 57cace0~1``.

    .venv/bin/python -m bench.before_after [--ref REV] [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from . import common
from .common import log, now

NAME = "before_after"
DEFAULT_REF = "edaeb07"
FIX_COMMIT = "db4cf93 + 6a48d08 + d7fb494"
FIX_DESCRIPTION = (
    "PNG frames up to 256 px, `render.blend` with `cv2.LUT` on a 3-channel merge, `to_index` by numpy; after: JPEG "
    "live frames at every size, `cv2.applyColorMap` on the one-channel index, `to_index` by `cv2.convertScaleAbs`, the "
    "encoder's RGB -> BGR swap by `cv2.cvtColor` instead of a strided view"
)
CASES = ("seed", "class_first", "class_cached", "alpha", "colormap", "colormap_first", "floor")


def export(ref: str, dest: Path) -> Path:
    """``cam_widget`` as of ``ref`` under ``dest`` (read from git; the working tree is not touched)."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", ref, "cam_widget"],
        cwd=common.REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    dest.mkdir(parents=True, exist_ok=True)
    tar_path = dest / "src.tar"
    tar_path.write_bytes(data)
    with tarfile.open(tar_path) as tf:
        tf.extractall(dest, filter="data")
    tar_path.unlink()
    return dest


def _env(pythonpath: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    parts = [str(pythonpath)] if pythonpath else []
    parts.append(str(common.REPO_ROOT))
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _which(pythonpath: Path | None, cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import cam_widget, sys; sys.stdout.write(cam_widget.__file__)"],
        env=_env(pythonpath), cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out


def run(quick: bool = False, repeats: int | None = None, ref: str = DEFAULT_REF) -> dict[str, Any]:
    reps = repeats or (2 if quick else 6)
    alternations = 1 if quick else 2
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=common.REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="cam-before-") as tmp:
        # run from a neutral folder: with the repository as the working directory, its cam_widget would shadow
        # PYTHONPATH (sys.path[0] is the working directory for -m and -c)
        old = export(ref, Path(tmp) / "before")
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        where = {"before": _which(old, cwd), "after": _which(None, cwd)}
        if not where["before"].startswith(str(old)):
            raise RuntimeError(f"the old cam_widget is not the one imported: {where['before']}")
        for a in range(alternations):
            for label, pp in (
                (("before", old), ("after", None)) if a % 2 == 0 else (("after", None), ("before", old))
            ):
                out = Path(tmp) / f"{label}_{a}.json"
                cmd = [
                    sys.executable,
                    "-m",
                    "bench.kernel_latency",
                    "--repeats",
                    str(reps),
                    "--out",
                    str(out),
                ]
                log(
                    f"[before_after] {label} ({commit if label == 'before' else 'current tree'}), run {a + 1}"
                )
                subprocess.run(cmd, cwd=cwd, env=_env(pp), check=True, stdout=subprocess.DEVNULL)
                runs[label].append(json.loads(out.read_text()))
    sizes = [s["display"] for s in runs["after"][0]["sizes"]]
    table: list[dict[str, Any]] = []
    for j, d in enumerate(sizes):
        for case in CASES:
            med = {}
            for label in ("before", "after"):
                vals = [r["sizes"][j]["cases"][case]["median_ms"] for r in runs[label]]
                med[label] = round(statistics.median(vals), 4)
            seed = {
                label: statistics.median(r["sizes"][j]["cases"]["seed"]["median_ms"] for r in runs[label])
                for label in ("before", "after")
            }
            table.append(
                {
                    "display": d,
                    "case": case,
                    "before_ms": med["before"],
                    "after_ms": med["after"],
                    "speedup": common.ratio(med["before"], med["after"]),
                    "vs_seed_before": common.ratio(seed["before"], med["before"]) if case != "seed" else None,
                    "vs_seed_after": common.ratio(seed["after"], med["after"]) if case != "seed" else None,
                }
            )
    fmt = {
        label: [f"{s['display']}: {s['frame']['format']}" for s in runs[label][0]["sizes"]] for label in runs
    }
    return {
        "ref": ref,
        "before_commit": commit,
        "fix_commit": FIX_COMMIT if ref == DEFAULT_REF else "the current tree",
        "fix_description": FIX_DESCRIPTION if ref == DEFAULT_REF else None,
        "after_commit": common._git("rev-parse", "--short", "HEAD"),
        "imported_from": where,
        "repeats_per_run": reps,
        "runs_per_side": alternations,
        "frame_formats": fmt,
        "table": table,
    }


def main(argv: list[str] | None = None) -> int:
    ap = common.arg_parser(__doc__.splitlines()[0])
    ap.add_argument(
        "--ref", default=DEFAULT_REF, help=f"git revision of the 'before' cam_widget (default {DEFAULT_REF})"
    )
    args = ap.parse_args(argv)
    started, load = now(), common.load_snapshot()
    body = run(quick=args.quick, repeats=args.repeats, ref=args.ref)
    result = common.envelope(NAME, args.quick, body, started, load)
    result["command"] = common.command_for(NAME, args.quick) + (
        "" if args.ref == DEFAULT_REF else f" --ref {args.ref}"
    )
    path = common.save(result, args.out, NAME, args.quick)
    for r in body["table"]:
        print(
            f"{r['display']:5d} {r['case']:16s} before {common.fmt_ms(r['before_ms']):>10s}  after "
            f"{common.fmt_ms(r['after_ms']):>10s}  {r['speedup']}x faster; vs seed {r['vs_seed_before']} -> {r['vs_seed_after']}"
        )
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
