"""Localisation evaluation of class activation maps over labelled cases.

:func:`evaluate` runs an engine over ``(image, class, box)`` cases and scores each map with the
protocol of :mod:`cam_widget.metrics.localize`:

* **localisation**: the paper's 20 %-threshold box (Zhou et al. 2016) hits when its IoU with the
  ground-truth box is at least 0.5 (the ground-truth class is used: "GT-known" localisation;
  ``top1_localization_accuracy`` additionally requires the model's top-1 to be that class);
* **pointing game** (Zhang et al. 2016): the map's maximum lies within ``tolerance`` px of the box.

Only the engine's public API is used (``cam``, ``predict``, ``class_names``), so any object that
offers those three works (the tests use a fake).  :func:`load_cases` reads the JSON case format;
the packaged set is :func:`default_cases_path`.  No TensorFlow import here.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CAMError
from .localize import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOLERANCE,
    Box,
    UninformativeMapError,
    _check_threshold,
    _check_tolerance,
    iou,
    localize,
    peak,
    point_box_distance,
)

__all__ = [
    "Case",
    "CaseFileError",
    "CaseResult",
    "EvaluationResult",
    "as_case",
    "default_cases_path",
    "evaluate",
    "load_cases",
    "resolve_class",
]

#: IoU at or above which a predicted box counts as a correct localisation (the ImageNet rule).
IOU_HIT = 0.5

ProgressCallback = Callable[[int, int], None]


class CaseFileError(CAMError):
    """A case (or a case file) is malformed: the message names the case and the field."""


@dataclass
class Case:
    """One labelled example: an RGB uint8 image, the class to explain and its true box.

    ``class_index`` may be an ImageNet-style class *name*; :func:`evaluate` resolves it against
    ``engine.class_names``.  ``box`` is ``(x0, y0, x1, y1)``, half-open, in the image's pixels.
    """

    image: np.ndarray
    class_index: int | str
    box: Box
    name: str = ""
    group: str = ""


@dataclass
class CaseResult:
    """The outcome for one case (JSON-friendly: plain ints, floats, strings, lists)."""

    name: str
    group: str
    class_index: int
    class_name: str | None
    box: list[int]
    predicted_box: list[int] | None
    iou: float
    localized: bool
    pointing: bool
    peak: list[int] | None
    peak_distance: float | None
    top1: int
    top1_name: str | None
    top1_prob: float
    class_prob: float
    class_rank: int
    map_shape: list[int]
    note: str = ""

    @property
    def correct(self) -> bool:
        """The model's top-1 class is the case's class."""
        return self.top1 == self.class_index


@dataclass
class EvaluationResult:
    """Per-case records plus the settings they were computed with; :attr:`summary` aggregates."""

    records: list[CaseResult]
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def _summarize(records: Sequence[CaseResult]) -> dict[str, Any]:
        n = len(records)
        if n == 0:
            return {"n": 0}

        def frac(flags: Iterable[bool]) -> float:
            return float(sum(bool(f) for f in flags) / n)

        dists = [r.peak_distance for r in records if r.peak_distance is not None]
        return {
            "n": n,
            "localization_accuracy": frac(r.localized for r in records),
            "pointing_accuracy": frac(r.pointing for r in records),
            "mean_iou": float(np.mean([r.iou for r in records])),
            "top1_accuracy": frac(r.correct for r in records),
            "top1_localization_accuracy": frac(r.correct and r.localized for r in records),
            "mean_peak_distance": float(np.mean(dists)) if dists else None,
            "uninformative": sum(1 for r in records if r.predicted_box is None),
        }

    @property
    def summary(self) -> dict[str, Any]:
        """``n``, ``localization_accuracy`` (IoU >= 0.5), ``pointing_accuracy``, ``mean_iou``,
        ``top1_accuracy``, ``top1_localization_accuracy``, ``mean_peak_distance`` (px from the map's
        peak to the true box) and ``uninformative`` (maps without a box)."""
        return self._summarize(self.records)

    def groups(self) -> dict[str, dict[str, Any]]:
        """The summary per case group (e.g. ``"samples"`` and ``"translation"``), if any."""
        names = sorted({r.group for r in self.records if r.group})
        return {g: self._summarize([r for r in self.records if r.group == g]) for g in names}

    # Convenience accessors ------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def localization_accuracy(self) -> float:
        return float(self.summary.get("localization_accuracy", math.nan))

    @property
    def pointing_accuracy(self) -> float:
        return float(self.summary.get("pointing_accuracy", math.nan))

    @property
    def mean_iou(self) -> float:
        return float(self.summary.get("mean_iou", math.nan))

    # Serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types: ``settings``, ``summary``, ``groups`` and ``cases``."""
        return {
            "settings": dict(self.settings),
            "summary": self.summary,
            "groups": self.groups(),
            "cases": [asdict(r) for r in self.records],
        }

    def to_json(self, path: str | os.PathLike[str] | None = None, indent: int = 2) -> str:
        """The :meth:`to_dict` document as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def table(self) -> str:
        """A fixed-width text table: one row per case, then the summary (per group too)."""
        head = ("case", "class", "p", "top-1", "IoU", "loc", "point", "predicted box", "true box")
        rows = []
        for r in self.records:
            rows.append(
                (
                    r.name,
                    _short(f"{r.class_index} {r.class_name or ''}".strip(), 26),
                    f"{r.class_prob:.2f}",
                    "yes" if r.correct else f"no ({_short(r.top1_name or str(r.top1), 16)})",
                    f"{r.iou:.2f}",
                    "hit" if r.localized else "-",
                    "hit" if r.pointing else "-",
                    _fmt_box(r.predicted_box) if r.predicted_box else "(none)",
                    _fmt_box(r.box),
                )
            )
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.append("")
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items() if v is not None)
        if settings:
            lines.append(f"settings: {settings}")
        lines.append(_summary_line("all", self.summary))
        groups = self.groups()
        if len(groups) > 1:
            lines += [_summary_line(g, s) for g, s in groups.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt_box(box: Sequence[float]) -> str:
    return "[" + ",".join(f"{v:g}" for v in box) + "]"


def _summary_line(label: str, s: Mapping[str, Any]) -> str:
    if not s.get("n"):
        return f"{label}: no cases"
    dist = s.get("mean_peak_distance")
    return (
        f"{label}: n={s['n']}  localization (IoU>={IOU_HIT:g}) {s['localization_accuracy']:.1%}  "
        f"pointing {s['pointing_accuracy']:.1%}  mean IoU {s['mean_iou']:.3f}  "
        f"top-1 {s['top1_accuracy']:.1%}  top-1 loc {s['top1_localization_accuracy']:.1%}"
        + (f"  mean peak distance {dist:.1f}px" if dist is not None else "")
    )


# ------------------------------------------------------------------------------------- classes


def _norm_name(text: str) -> str:
    return " ".join(str(text).lower().replace("_", " ").replace("-", " ").split())


def resolve_class(value: int | str, class_names: Sequence[str] | None, num_classes: int | None = None) -> int:
    """A class index from an index or a name.

    Names match case-insensitively either a whole class name or, for class names that list
    comma-separated synonyms, one of those (``"tabby"`` and ``"tabby cat"`` both find
    ``"tabby, tabby cat"``); a name shared by several classes is an error that lists the indices.
    The default model's names are short and unique (``"tabby"``, ``"crane bird"``,
    ``"construction crane"``), so there only those match; an unknown name lists similar ones.
    """
    if isinstance(value, (bool, np.bool_)):
        raise CaseFileError(f"A class must be an index or a name; got {value!r}.")
    if isinstance(value, (int, np.integer)):
        idx = int(value)
        limit = num_classes if num_classes is not None else (len(class_names) if class_names else None)
        if idx < 0 or (limit is not None and idx >= limit):
            raise CaseFileError(
                f"Class index {idx} is out of range: the model has {limit} classes (0 .. {(limit or 1) - 1})."
                if limit is not None
                else f"Class index {idx} must be >= 0."
            )
        return idx
    if not isinstance(value, str) or not value.strip():
        raise CaseFileError(f"A class must be an index or a name; got {value!r}.")
    if value.strip().lstrip("-").isdigit():
        return resolve_class(int(value), class_names, num_classes)
    if not class_names:
        raise CaseFileError(
            f"Class {value!r} is given by name, but the engine has no class names: use the class index."
        )
    want = _norm_name(value)
    exact = [i for i, n in enumerate(class_names) if _norm_name(n) == want]
    hits = exact or [
        i for i, n in enumerate(class_names) if want in (_norm_name(s) for s in str(n).split(","))
    ]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        close = [f"{i} {class_names[i]!r}" for i, n in enumerate(class_names) if want in _norm_name(n)][:5]
        hint = f" Similar: {', '.join(close)}." if close else ""
        raise CaseFileError(f"No class is named {value!r}.{hint} Use the class index or an exact name.")
    listing = ", ".join(f"{i} {class_names[i]!r}" for i in hits)
    raise CaseFileError(f"Class name {value!r} is ambiguous ({listing}); use the class index.")


def _class_name(class_names: Sequence[str] | None, idx: int) -> str | None:
    if class_names is not None and 0 <= idx < len(class_names):
        return str(class_names[idx])
    return None


# --------------------------------------------------------------------------------------- cases


def _check_image(image: Any, where: str) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or 0 in img.shape:
        raise CaseFileError(
            f"{where}: the image must be RGB uint8 of shape (h, w, 3); got {img.dtype} {img.shape}. "
            "Convert it with cam_widget.load_image()."
        )
    return img


def _check_case_box(box: Any, image_shape: Sequence[int], where: str) -> Box:
    try:
        vals = [float(v) for v in box]
    except (TypeError, ValueError):
        raise CaseFileError(f"{where}: box must be [x0, y0, x1, y1] in pixels; got {box!r}.") from None
    if len(vals) != 4 or not all(math.isfinite(v) and v == int(v) for v in vals):
        raise CaseFileError(f"{where}: box must be four integers [x0, y0, x1, y1]; got {box!r}.")
    x0, y0, x1, y1 = (int(v) for v in vals)
    h, w = int(image_shape[0]), int(image_shape[1])
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise CaseFileError(
            f"{where}: box {[x0, y0, x1, y1]} must satisfy 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height "
            f"for this {w}x{h} (width x height) image; boxes are half-open [x0, y0, x1, y1]."
        )
    return (x0, y0, x1, y1)


def as_case(obj: Any, index: int = 0) -> Case:
    """Normalise one case: a :class:`Case`, an ``(image, class, box[, name])`` tuple, a mapping with
    ``image``, ``class_index`` (or ``class``), ``box`` (optionally ``name``, ``group``), or any object
    with those attributes.  The image must already be an RGB uint8 array."""
    where = f"case {index}"
    if isinstance(obj, Case):
        image, cls, box, name, group = obj.image, obj.class_index, obj.box, obj.name, obj.group
    elif isinstance(obj, Mapping):
        missing = [k for k in ("image", "box") if k not in obj]
        if "class_index" not in obj and "class" not in obj:
            missing.append("class_index")
        if missing:
            raise CaseFileError(f"{where}: missing field(s) {', '.join(missing)}.")
        image, box = obj["image"], obj["box"]
        cls = obj["class_index"] if "class_index" in obj else obj["class"]
        name, group = obj.get("name", ""), obj.get("group", "")
    elif isinstance(obj, (tuple, list)):
        if len(obj) not in (3, 4):
            raise CaseFileError(f"{where}: a tuple case is (image, class_index, box[, name]); got {len(obj)} items.")
        image, cls, box = obj[:3]
        name, group = (obj[3] if len(obj) == 4 else ""), ""
    elif all(hasattr(obj, a) for a in ("image", "class_index", "box")):
        image, cls, box = obj.image, obj.class_index, obj.box
        name, group = getattr(obj, "name", ""), getattr(obj, "group", "")
    else:
        raise CaseFileError(
            f"{where}: expected (image, class_index, box), a dict or an object with those fields; "
            f"got {type(obj).__name__}."
        )
    name = str(name or f"case{index}")
    where = f"case {index} ({name!r})"
    img = _check_image(image, where)
    if isinstance(cls, (bool, np.bool_)) or not isinstance(cls, (int, np.integer, str)):
        raise CaseFileError(f"{where}: class must be an index or a name; got {cls!r}.")
    cls = int(cls) if isinstance(cls, (int, np.integer)) else cls
    if isinstance(cls, int) and cls < 0:
        raise CaseFileError(f"{where}: class index must be >= 0; got {cls}.")
    return Case(img, cls, _check_case_box(box, img.shape, where), name, str(group or ""))


# ------------------------------------------------------------------------------------ evaluate


def evaluate(
    engine: Any,
    cases: Iterable[Any],
    layer: str | None = None,
    method: str = "cam",
    threshold: float = DEFAULT_THRESHOLD,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Score ``engine``'s maps on ``cases``; see the module docstring for the protocol.

    Args:
        engine: a :class:`cam_widget.CAMEngine` (or anything with ``cam``, ``predict`` and
            ``class_names``).  ``engine.cam`` must return a raw 2-D map covering the whole image.
        cases: see :func:`as_case` (``(image, class, box)`` tuples, dicts, :class:`Case` objects).
        layer, method: passed to ``engine.cam`` (``None`` = the engine's CAM layer; ``"cam"`` or
            ``"gradcam"``).
        threshold: the box threshold as a fraction of the map's maximum (paper: 0.2).
        tolerance: pointing game tolerance in pixels (Zhang et al.: 15).
        progress: called as ``progress(done, total)`` after each case.

    A map without localisation signal (constant, or no positive value) counts as a miss with a
    ``note``; any other error (bad layer, class out of range, NaN map) propagates.
    """
    items = [as_case(c, i) for i, c in enumerate(cases)]
    class_names = getattr(engine, "class_names", None)
    class_names = list(class_names) if class_names is not None else None
    # Validate everything up front so that a typo fails before minutes of computation.
    threshold, tolerance = _check_threshold(threshold), _check_tolerance(tolerance)
    for i, case in enumerate(items):
        try:
            case.class_index = resolve_class(case.class_index, class_names)
        except CaseFileError as err:
            raise CaseFileError(f"case {i} ({case.name!r}): {err}") from None
    settings = {
        "layer": layer,
        "method": method,
        "threshold": float(threshold),
        "tolerance": float(tolerance),
        "iou_hit": IOU_HIT,
        "input_size": getattr(engine, "input_size", None),
    }
    records = []
    for i, case in enumerate(items):
        records.append(_evaluate_one(engine, case, class_names, layer, method, threshold, tolerance))
        if progress is not None:
            progress(i + 1, len(items))
    return EvaluationResult(records, settings)


def _evaluate_one(
    engine: Any,
    case: Case,
    class_names: Sequence[str] | None,
    layer: str | None,
    method: str,
    threshold: float,
    tolerance: float,
) -> CaseResult:
    cls = int(case.class_index)
    probs = np.asarray(engine.predict(case.image), dtype=np.float64).reshape(-1)
    if not 0 <= cls < probs.size:
        raise CaseFileError(
            f"case {case.name!r}: class index {cls} is out of range for a model with {probs.size} classes."
        )
    cam = np.asarray(engine.cam(case.image, cls, layer=layer, method=method))
    shape = case.image.shape
    notes = []
    try:
        pred: Box | None = localize(cam, shape, threshold=threshold)
    except UninformativeMapError as err:
        pred, note = None, str(err)
        notes.append(note)
    try:
        pk: tuple[int, int] | None = peak(cam, shape)
    except UninformativeMapError as err:
        pk = None
        if str(err) not in notes:
            notes.append(str(err))
    dist = point_box_distance(pk, case.box) if pk is not None else None
    top1 = int(np.argmax(probs))
    rank = int(np.sum(probs > probs[cls]))
    overlap = iou(pred, case.box) if pred is not None else 0.0
    return CaseResult(
        name=case.name,
        group=case.group,
        class_index=cls,
        class_name=_class_name(class_names, cls),
        box=[int(v) for v in case.box],
        predicted_box=[int(v) for v in pred] if pred is not None else None,
        iou=float(overlap),
        localized=bool(overlap >= IOU_HIT),
        pointing=bool(dist is not None and dist <= float(tolerance)),
        peak=[int(v) for v in pk] if pk is not None else None,
        peak_distance=float(dist) if dist is not None else None,
        top1=top1,
        top1_name=_class_name(class_names, top1),
        top1_prob=float(probs[top1]),
        class_prob=float(probs[cls]),
        class_rank=rank,
        map_shape=[int(v) for v in cam.shape[:2]],
        note=" ".join(notes),
    )


# ---------------------------------------------------------------------------------- case files


def default_cases_path() -> Path:
    """The labelled case set shipped with the package (``cam_widget/data/cases.json``)."""
    return Path(str(resources.files("cam_widget").joinpath("data", "cases.json")))


def _sample_images() -> Mapping[str, np.ndarray]:
    try:
        from ..samples import sample_images
    except ImportError as err:  # pragma: no cover - depends on the installed package
        raise CaseFileError(f"The packaged sample photos are unavailable ({err}).") from None
    return sample_images()


def _load_path(path: Path, where: str) -> np.ndarray:
    from ..imaging import load_image

    if not path.is_file():
        raise CaseFileError(f"{where}: image file not found: {path}")
    try:
        return load_image(path)
    except CAMError as err:
        raise CaseFileError(f"{where}: {err}") from None


def load_cases(path: str | os.PathLike[str] | None = None) -> list[Case]:
    """Read labelled cases from a JSON file (default: the packaged :func:`default_cases_path`).

    Format: ``{"cases": [...]}`` (or a bare list), each case a dict with

    * ``"sample": "chelsea"`` (a packaged sample photo) **or** ``"image": "photos/cat.jpg"`` (a path
      relative to the JSON file, or absolute);
    * ``"class"`` (or ``"class_index"``): an index or a class name (resolved by :func:`evaluate`);
    * ``"box": [x0, y0, x1, y1]``: half-open, in pixels of the original image;
    * optional ``"name"``, ``"group"``, ``"note"`` (free text, ignored), and ``"image_shape": [height, width]`` - the size the box was
      drawn on; if the loaded image has another size, the box is scaled to it;
    * optional ``"translate": {"grid": 3, "canvas": [448, 448], "object_fraction": 0.35,
      "background": 128}``: instead of the case itself, the box's contents are pasted at
      ``grid x grid`` positions on a gray canvas (see :func:`cam_widget.metrics.translation.translation_cases`).

    Errors name the file, the case and the field (:class:`CaseFileError`).
    """
    file = Path(path) if path is not None else default_cases_path()
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaseFileError(f"Case file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CaseFileError(f"Cannot read case file {file}: {err}") from None
    except json.JSONDecodeError as err:
        raise CaseFileError(f"{file} is not valid JSON: {err}") from None
    entries = doc.get("cases") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not entries:
        raise CaseFileError(f"{file}: expected a non-empty list of cases (or {{\"cases\": [...]}}).")
    samples: Mapping[str, np.ndarray] | None = None
    cases: list[Case] = []
    for i, entry in enumerate(entries):
        where = f"{file.name}, case {i}"
        if not isinstance(entry, dict):
            raise CaseFileError(f"{where}: each case must be an object; got {type(entry).__name__}.")
        if "name" in entry:
            where += f" ({entry['name']!r})"
        unknown = set(entry) - {
            "name", "sample", "image", "class", "class_index", "box", "image_shape",
            "group", "translate", "note",
        }  # fmt: skip
        if unknown:
            raise CaseFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.")
        if ("sample" in entry) == ("image" in entry):
            raise CaseFileError(f"{where}: give exactly one of \"sample\" (a packaged photo) or \"image\" (a path).")
        if "sample" in entry:
            if samples is None:
                samples = _sample_images()
            if entry["sample"] not in samples:
                raise CaseFileError(
                    f"{where}: unknown sample {entry['sample']!r}; packaged samples: {', '.join(samples)}."
                )
            image = samples[entry["sample"]]
        else:
            ref = entry["image"]
            if not isinstance(ref, str) or not ref:
                raise CaseFileError(f"{where}: \"image\" must be a path string; got {ref!r}.")
            image = _load_path((file.parent / ref) if not os.path.isabs(ref) else Path(ref), where)
        cls = entry.get("class", entry.get("class_index"))
        if cls is None:
            raise CaseFileError(f"{where}: missing \"class\" (an index or a class name).")
        if "box" not in entry:
            raise CaseFileError(f"{where}: missing \"box\" [x0, y0, x1, y1].")
        box = _scaled_box(entry["box"], entry.get("image_shape"), np.asarray(image).shape, where)
        name = str(entry.get("name") or entry.get("sample") or Path(entry["image"]).stem)
        try:
            case = as_case({"image": image, "class": cls, "box": box, "name": name, "group": entry.get("group", "")}, i)
        except CaseFileError as err:
            raise CaseFileError(f"{file.name}: {err}") from None
        if "translate" in entry:
            cases += _translated(case, entry["translate"], where)
        else:
            cases.append(case)
    return cases


def _scaled_box(box: Any, drawn_on: Any, actual: Sequence[int], where: str) -> Any:
    if drawn_on is None:
        return box
    try:
        dh, dw = (int(v) for v in drawn_on)
        if dh <= 0 or dw <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise CaseFileError(f"{where}: image_shape must be [height, width]; got {drawn_on!r}.") from None
    h, w = int(actual[0]), int(actual[1])
    if (dh, dw) == (h, w):
        return box
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise CaseFileError(f"{where}: box must be [x0, y0, x1, y1] in pixels; got {box!r}.") from None
    sx, sy = w / dw, h / dh
    return [min(w, round(x0 * sx)), min(h, round(y0 * sy)), min(w, round(x1 * sx)), min(h, round(y1 * sy))]


def _translated(case: Case, spec: Any, where: str) -> list[Case]:
    from .translation import translation_cases

    if spec is True:
        spec = {}
    if not isinstance(spec, dict):
        raise CaseFileError(f"{where}: \"translate\" must be an object of options (or true).")
    allowed = {"grid", "canvas", "object_fraction", "background"}
    if set(spec) - allowed:
        raise CaseFileError(
            f"{where}: unknown translate option(s) {', '.join(sorted(set(spec) - allowed))}; "
            f"allowed: {', '.join(sorted(allowed))}."
        )
    try:
        return translation_cases(
            case.image, case.box, case.class_index, name=case.name, group=case.group or "translation", **spec
        )
    except CAMError as err:
        raise CaseFileError(f"{where}: {err}") from None
