"""Produce the method x metric table of docs/TRUST.md on the packaged sample photos.

    .venv/bin/python scripts/trust_table.py [--steps 32] [--sanity-blocks 3] [--methods cam,gradcam]

For every packaged sample photo and the embedded model's top-1 class there, every registered cheap
method (cam_widget.metrics.trust.available_methods) plus the seeded random map and a weight-independent
control (the photo's Sobel edge map) is scored with deletion, insertion, ROAD, Average Drop / Increase and
the sanity check (cascade over the top ``--sanity-blocks`` blocks).  Means with 95 % bootstrap intervals go
between the markers of docs/TRUST.md; every per-photo number goes to docs/trust_table.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START, END = "<!-- trust-table:start -->", "<!-- trust-table:end -->"
CONTROL = "edge map (control)"


def write(doc_path: str, json_path: str, results: list, rows: list, verdicts: dict, n_photos: int, total: int,
          args: argparse.Namespace, seconds: float) -> str:
    """Rewrite the table between the markers of docs/TRUST.md and the per-photo JSON (after every photo, so a
    long run leaves a complete table of the photos done so far)."""
    from cam_widget.metrics.trust import summarize, summary_table

    summary = summarize(results)
    table = summary_table(summary, markdown=True)
    changed = "\n".join(f"| {m} | {sum(v)}/{len(v)} |" for m, v in verdicts.items())
    done = f"the {n_photos} packaged sample photos" if n_photos == total else f"{n_photos} of the {total} packaged sample photos"
    block = "\n".join([
        START,
        f"Photos: {done}, each at the embedded model's top-1 class; 224 px; deletion/insertion {args.steps} steps; "
        f"sanity: cascade over the top {args.sanity_blocks} blocks. Mean [95 % bootstrap interval] over the photos; "
        f"`*` marks the best method per column (ties all marked; `random` is the baseline). Computed in "
        f"{seconds:.0f} s by `.venv/bin/python scripts/trust_table.py` on a shared 2-core machine.",
        "",
        table,
        "",
        "| method | sanity: the map changes with the weights on |",
        "|---|---|",
        changed,
        END,
    ])  # fmt: skip
    doc = Path(doc_path)
    text = doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{doc} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    doc.write_text(head + block + rest.split(END, 1)[1], encoding="utf-8")
    Path(json_path).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--sanity-blocks", type=int, default=3)
    parser.add_argument("--methods", default=None, help="comma-separated (default: every cheap registered method)")
    parser.add_argument("--photos", default=None, help="comma-separated sample names, in this order (default: all)")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "TRUST.md"))
    parser.add_argument("--json", default=str(ROOT / "docs" / "trust_table.json"))
    args = parser.parse_args(argv)

    import cam_widget
    from cam_widget.metrics.sanity import clone_engine, edge_map
    from cam_widget.metrics.trust import RANDOM, TrustResult, available_methods, trust_checks

    engine = cam_widget.default_engine()
    clone = clone_engine(engine)  # one clone for every sanity check (its weights are restored after each)
    photos = cam_widget.sample_images()
    methods = args.methods.split(",") if args.methods else available_methods(engine)
    if args.photos:
        photos = {n: photos[n] for n in args.photos.split(",")}
    rows, results, verdicts, table = [], [], {}, ""
    started = time.perf_counter()
    for done, (name, rgb) in enumerate(photos.items(), start=1):
        cls = engine.top_k(rgb, 1)[0][0]
        for method in [*methods, RANDOM]:
            t0 = time.perf_counter()
            r = trust_checks(engine, rgb, cls, method=method, steps=args.steps, sanity_blocks=args.sanity_blocks,
                             random_baseline=False, clone=clone)  # fmt: skip
            results.append(r)
            if r.sanity is not None:
                verdicts.setdefault(method, []).append(not r.sanity.insensitive)
            rows.append({"photo": name, "class_index": cls, **r.to_dict()})
            print(f"{name:12s} {method:10s} {time.perf_counter() - t0:5.1f} s {r.scores}", flush=True)
        # The control: a map that knows nothing of the model must fail the sanity check.
        edges = edge_map(engine, rgb, cls)
        ctrl = TrustResult(CONTROL, None, cls)
        ctrl.deletion = cam_widget.deletion_insertion(engine, rgb, cls, saliency=edges, steps=args.steps,
                                                      random_baseline=False)  # fmt: skip
        ctrl.confidence = cam_widget.confidence_change(engine, rgb, cls, saliency=edges, random_baseline=False)
        ctrl.road = cam_widget.road(engine, rgb, cls, saliency=edges, random_baseline=False)
        ctrl.sanity = cam_widget.sanity_check(engine, rgb, cls, saliency_fn=edge_map, blocks=args.sanity_blocks,
                                              clone=clone)  # fmt: skip
        verdicts.setdefault(CONTROL, []).append(not ctrl.sanity.insensitive)
        results.append(ctrl)
        rows.append({"photo": name, "class_index": cls, **ctrl.to_dict()})
        table = write(args.doc, args.json, results, rows, verdicts, done, len(photos), args, time.perf_counter() - started)
        print(f"wrote {args.doc} and {args.json} ({done} photos)", flush=True)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
