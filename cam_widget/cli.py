"""The ``cam-widget`` command line.

::

    cam-widget demo --out DIR [--image NAME_OR_PATH ...] [--class-index N] [--layer NAME]
                    [--method NAME] [--refit] [--heads FILE] [--save-heads FILE]
                    [--input-size 224] [--alpha 0.5] [--colormap jet] [--box]
    cam-widget evaluate [CASES.json] [--layer NAME] [--method NAME] [--refit] [--heads FILE]
                        [--save-heads FILE] [--input-size 224] [--threshold 0.2] [--tolerance 15]
                        [--json OUT] [--no-progress]
    cam-widget evaluate [CASES.json] --metrics deletion,insertion,road,drop,sanity [--methods cam,gradcam]
                        [--steps 32] [--json OUT]
    cam-widget layers [--input-size 224]
    cam-widget batch IMAGES --out DIR [--model default|m.keras] [--layer L] [--methods cam,gradcam]
                     [--metrics iou,pointing] [--scheduler tcp://...|local] [--shard-size N]

``demo`` runs the embedded EfficientNet-Lite0 ImageNet engine on the packaged sample photos (or
the given ones), writes one CAM overlay PNG per image and prints one line per image.  ``evaluate``
scores the maps on a labelled case file (default: the packaged set) and prints a table; with
``--metrics`` it scores their faithfulness and sanity instead (:mod:`cam_widget.metrics.trust`: a
method x metric table of means with 95 % bootstrap intervals, a ``random`` map as the baseline).  ``batch``
runs a dataset job (:mod:`cam_widget.batch`, docs/BATCH.md) and is resumable by re-running it.  Exact CAM
at a layer without a head needs one: ``--refit`` distils it from the model on the packaged sample
photos first (the fit report goes to stderr), ``--heads`` loads heads saved by ``--save-heads`` or
``engine.save_heads``.  Bad input
gives a one-line ``cam-widget: error: ...`` on stderr and exit status 2, never a traceback.
Everything runs offline.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .errors import CAMError, NoCAMHeadError
from .methods import names as method_names
from .optional import install_line

__all__ = ["build_parser", "main"]

PROG = "cam-widget"
#: Extras that bring TensorFlow and the default model's packages.
INSTALL_HINT = install_line("tf-cpu,default-model")


# ------------------------------------------------------------------------------------ helpers


def _input_size(text: str) -> int | tuple[int, int]:
    """``"224"`` -> 224, ``"448x320"`` -> (448, 320) (height x width)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX,]\s*(\d+))?\s*", text)
    if not m or int(m.group(1)) < 32 or (m.group(2) is not None and int(m.group(2)) < 32):
        raise argparse.ArgumentTypeError(f"expected a size such as 224 or 448x320 (at least 32 px); got {text!r}")
    return int(m.group(1)) if m.group(2) is None else (int(m.group(1)), int(m.group(2)))


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1]; got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1]; got {text!r}")
    return v


def _pixels(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels >= 0; got {text!r}") from None
    if not 0.0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of pixels >= 0; got {text!r}")
    return v


def _colormap(name: str) -> str:
    from .render import colormap_lut

    try:
        colormap_lut(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name


def _make_engine(input_size: int | tuple[int, int]) -> Any:
    """The embedded default engine (a seam the tests replace with a fake)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .defaults import default_engine

    return default_engine(input_size=input_size)


def _load_images(refs: Sequence[str] | None) -> list[tuple[str, np.ndarray]]:
    """``(name, RGB uint8)`` for sample names or image paths (default: every sample photo)."""
    from .samples import SAMPLES, sample_image, sample_images

    if not refs:
        images = list(sample_images().items())
        if not images:
            raise CAMError("No sample photos are installed (they ship with scikit-image, matplotlib, scikit-learn).")
        return images
    from .imaging import load_image

    known = [s.name for s in SAMPLES]
    out: list[tuple[str, np.ndarray]] = []
    for ref in refs:
        if ref in known:
            out.append((ref, sample_image(ref)))
        elif Path(ref).is_file():
            out.append((Path(ref).stem, load_image(ref)))
        else:
            raise CAMError(f"--image {ref!r} is neither a sample name ({', '.join(known)}) nor an existing image file.")
    return out


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", n) or "image"
        seen[safe] = seen.get(safe, 0) + 1
        out.append(safe if seen[safe] == 1 else f"{safe}-{seen[safe]}")
    return out


def _class_label(engine: Any, idx: int) -> str:
    from .metrics.evaluate import _class_name

    return _class_name(getattr(engine, "class_names", None), idx) or f"class {idx}"


class _Counter:
    """A minimal progress display on stderr for when tqdm is not installed."""

    def __init__(self, total: int, desc: str, stream: TextIO) -> None:
        self.total, self.desc, self.stream = total, desc, stream

    def __call__(self, done: int, total: int) -> None:
        self.stream.write(f"\r{self.desc}: {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class _Tqdm:
    def __init__(self, total: int, desc: str, stream: TextIO) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="case", file=stream, leave=True)

    def __call__(self, done: int, total: int) -> None:
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def make_progress(total: int, desc: str = "evaluating", stream: TextIO | None = None) -> Any:
    """A ``progress(done, total)`` callable with ``close()``: tqdm if installed, else a counter."""
    stream = stream if stream is not None else sys.stderr
    try:
        return _Tqdm(total, desc, stream)
    except ImportError:
        return _Counter(total, desc, stream)


# ----------------------------------------------------------------------------------- commands


def _prepare_heads(engine: Any, args: argparse.Namespace) -> None:
    """Load saved heads (``--heads``), refit one at ``--layer`` (``--refit``), save them (``--save-heads``)."""
    if args.heads:
        engine.load_heads(args.heads)
    if args.refit:
        from .samples import sample_images

        print(engine.refit_head(args.layer, sample_images()), file=sys.stderr)
    if args.save_heads:
        engine.save_heads(args.save_heads)
        print(f"saved the refit heads to {args.save_heads}", file=sys.stderr)


def _cmd_demo(args: argparse.Namespace) -> int:
    import cv2

    from .metrics.localize import UninformativeMapError, localize
    from .render import encode, overlay

    images = _load_images(args.image)  # before the engine: a typo fails fast
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = _make_engine(args.input_size)
    _prepare_heads(engine, args)
    names = _unique_names([n for n, _ in images])
    width = max(len(n) for n in names)
    for name, (_, rgb) in zip(names, images, strict=True):
        probs = np.asarray(engine.predict(rgb)).reshape(-1)
        top1 = int(np.argmax(probs))
        cls = top1 if args.class_index is None else int(args.class_index)
        cam = engine.cam(rgb, cls, layer=args.layer, method=args.method)
        picture = overlay(rgb, cam, alpha=args.alpha, colormap=args.colormap)
        note = ""
        if args.box:
            try:
                x0, y0, x1, y1 = localize(cam, rgb.shape)
                cv2.rectangle(picture, (x0, y0), (x1 - 1, y1 - 1), (0, 255, 0), max(2, rgb.shape[1] // 300))
            except UninformativeMapError:
                note = "  (no box: the map has no positive evidence)"
        path = out_dir / f"{name}.png"
        path.write_bytes(encode(picture, "png"))
        shown = "" if args.class_index is None else f"  map: {_class_label(engine, cls)} ({cls}) {probs[cls]:.3f}"
        print(f"{name:<{width}}  {_class_label(engine, top1)} ({top1}) {probs[top1]:.3f}{shown}  {path}{note}")
    return 0


def _cmd_trust(args: argparse.Namespace, cases: list[Any]) -> int:
    """``evaluate --metrics``: every method x metric over the cases, the random map as the baseline."""
    import json

    from .metrics.evaluate import resolve_class
    from .metrics.trust import (
        RANDOM,
        available_methods,
        parse_metrics,
        summarize,
        summary_table,
        trust_checks,
    )

    metrics = parse_metrics(args.metrics)  # before the engine: a typo fails fast
    engine = _make_engine(args.input_size)
    _prepare_heads(engine, args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    methods = (methods or available_methods(engine, args.layer)) + [RANDOM]
    progress = make_progress(len(cases) * len(methods)) if args.progress else None
    from .metrics.sanity import clone_engine

    clone = None  # one clone of the model for every sanity check (if it cannot be cloned, each result says why)
    if "sanity" in metrics:
        with contextlib.suppress(CAMError):
            clone = clone_engine(engine)
    results, rows = [], []
    try:
        for case in cases:
            cls = resolve_class(case.class_index, list(engine.class_names), engine.num_classes)
            for method in methods:
                r = trust_checks(engine, case.image, cls, layer=args.layer, method=method, metrics=metrics, steps=args.steps,
                                 random_baseline=False, clone=clone)  # fmt: skip
                results.append(r)
                rows.append({"case": case.name, "class_index": cls, **r.to_dict()})
                if progress is not None:
                    progress(len(results), len(cases) * len(methods))
    finally:
        if progress is not None:
            progress.close()
    summary = summarize(results)
    print(summary_table(summary))
    failed = sorted({f"{row['method']}: {name}: {msg}" for row in rows for name, msg in row["errors"].items()})
    for line in failed:
        print(f"not computed: {line}", file=sys.stderr)
    if args.json:
        doc = {"settings": {"metrics": list(metrics), "methods": methods, "layer": args.layer, "steps": args.steps,
                            "input_size": list(engine.input_size), "n_cases": len(cases)},
               "summary": summary, "cases": rows}  # fmt: skip
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .metrics.evaluate import evaluate, load_cases

    cases = load_cases(args.cases)  # before the engine: a bad file fails fast
    if args.metrics:
        return _cmd_trust(args, cases)
    engine = _make_engine(args.input_size)
    _prepare_heads(engine, args)
    progress = make_progress(len(cases)) if args.progress else None
    try:
        result = evaluate(
            engine, cases, layer=args.layer, method=args.method, threshold=args.threshold,
            tolerance=args.tolerance, progress=progress,
        )  # fmt: skip
    finally:
        if progress is not None:
            progress.close()
    print(result.table())
    if args.json:
        result.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    engine = _make_engine(args.input_size)
    cam_layer = getattr(engine, "cam_layer", None)
    for info in engine.layers():
        h, w, c = info.shape
        print(f"{info.name}  {h}x{w}x{c}" + ("  <- CAM layer" if info.name == cam_layer else ""))
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import BatchJob, run

    job = BatchJob(
        items=args.images, out=args.out, model=args.model, preprocess=args.preprocess, input_size=args.input_size,
        layer=args.layer, methods=args.methods, metrics=args.metrics, shard_size=args.shard_size,
        batch_size=args.batch_size,
    )  # fmt: skip
    result = run(job, scheduler=args.scheduler, progress=args.progress)
    print(result.summary.table())
    print(
        f"wrote {result.out / 'results.parquet'}: {len(result.results)} rows, {result.errors} with errors; "
        f"{len(result.computed)} shards computed, {len(result.skipped)} already done ({result.seconds:.1f} s)"
    )
    return 1 if result.errors else 0


# ------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the ``demo``, ``evaluate``, ``layers`` and ``batch`` subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Class Activation Maps for Keras image classifiers: headless demo and localisation evaluation.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common(p: argparse.ArgumentParser, maps: bool = True) -> None:
        if maps:
            p.add_argument("--layer", default=None, help="spatial layer name (default: the CAM layer); see 'layers'")
            p.add_argument(
                "--method", choices=method_names(), default="cam",
                help="any of cam_widget.methods(): exact CAM (default), gradcam, gradcam++, ..., scorecam",
            )
            p.add_argument(
                "--refit", action="store_true",
                help="first fit an exact-CAM head at --layer from the sample photos (seconds; report on stderr)",
            )  # fmt: skip
            p.add_argument("--heads", default=None, metavar="FILE", help="load refit heads saved with --save-heads")
            p.add_argument("--save-heads", default=None, metavar="FILE", help="save the refit heads (.npz) for --heads")
        p.add_argument(
            "--input-size", type=_input_size, default=224, metavar="N|HxW",
            help="size the whole photo is resized to (default 224; 448 gives 14x14 maps)",
        )  # fmt: skip

    demo = sub.add_parser("demo", help="write CAM overlay PNGs of the default model on photos")
    demo.add_argument("--out", required=True, help="output directory (created if needed)")
    demo.add_argument("--image", nargs="+", metavar="NAME_OR_PATH", help="sample names or image paths (default: all samples)")
    demo.add_argument("--class-index", type=int, default=None, metavar="N", help="class to explain (default: top-1)")
    common(demo)
    demo.add_argument("--alpha", type=_fraction, default=0.5, help="heat map opacity, 0..1 (default 0.5)")
    demo.add_argument("--colormap", type=_colormap, default="jet", help="matplotlib colormap (default jet)")
    demo.add_argument("--box", action="store_true", help="draw the paper's 20%% localisation box")
    demo.set_defaults(func=_cmd_demo)

    ev = sub.add_parser("evaluate", help="localisation accuracy and pointing game on labelled cases")
    ev.add_argument("cases", nargs="?", default=None, help="case file (JSON; default: the packaged sample set)")
    common(ev)
    ev.add_argument("--threshold", type=_fraction, default=0.2, help="box threshold, fraction of the max (default 0.2)")
    ev.add_argument("--tolerance", type=_pixels, default=15.0, help="pointing game tolerance in px (default 15)")
    ev.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    ev.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    ev.add_argument(
        "--metrics", default=None, metavar="LIST",
        help="score faithfulness and sanity instead: comma-separated deletion,insertion,road,drop,sanity",
    )  # fmt: skip
    ev.add_argument("--methods", default=None, metavar="LIST", help="with --metrics: map methods (default: all cheap ones)")
    ev.add_argument("--steps", type=int, default=32, metavar="N", help="with --metrics: deletion/insertion steps (default 32)")
    ev.set_defaults(func=_cmd_evaluate)

    layers = sub.add_parser("layers", help="list the default model's spatial layers")
    common(layers, maps=False)
    layers.set_defaults(func=_cmd_layers)

    batch = sub.add_parser(
        "batch", help="CAMs and scores over a folder or list of images (resumable; Dask optional)",
        description="Exit status: 0 all images scored, 1 some images unreadable (rows with 'error'), 2 bad input.",
    )  # fmt: skip
    batch.add_argument("images", help="a folder (root/<class>/<file> gives labels), or a CSV/JSON list")
    batch.add_argument("--out", required=True, help="output folder: results.parquet, maps/, job.json")
    batch.add_argument("--model", default="default", help="'default' (EfficientNet-Lite0) or a .keras file")
    batch.add_argument("--preprocess", default=None, help="keras.applications preprocess name for --model, e.g. resnet50")
    batch.add_argument("--layer", default=None, help="spatial layer name (default: the CAM layer); see 'layers'")
    batch.add_argument("--methods", default="cam", help="comma-separated map methods (default: cam)")
    batch.add_argument("--metrics", default="iou,pointing", help="comma-separated: iou,pointing,deletion,insertion")
    batch.add_argument("--scheduler", default=None, help="'local' (a LocalCluster) or tcp://host:port (default: in process)")
    batch.add_argument("--shard-size", type=int, default=64, metavar="N", help="images per shard (default 64)")
    batch.add_argument("--batch-size", type=int, default=32, metavar="N", help="images per forward pass (default 32)")
    batch.add_argument("--input-size", type=_input_size, default=None, metavar="N|HxW", help="model input size")
    batch.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    batch.set_defaults(func=_cmd_batch)
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "refit", False) and args.layer is None:  # before building the engine
        return _fail("--refit needs --layer: the layer to fit an exact-CAM head on (see 'cam-widget layers').")
    try:
        return int(args.func(args))
    except NoCAMHeadError as err:
        return _fail(f"{_one_line(err)} On the command line: add --refit (with --layer) to fit one first.")
    except CAMError as err:
        return _fail(_one_line(err))
    except ImportError as err:
        return _fail(f"{_one_line(err)}. The default model needs TensorFlow and its extras: {INSTALL_HINT}")
    except OSError as err:
        return _fail(_one_line(err))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
