"""Real photos that ship inside installed wheels (scikit-image, matplotlib, scikit-learn).

The files are located with :func:`importlib.util.find_spec` and decoded with OpenCV, so the
packages are not even imported and nothing can trigger a download: scikit-image fetches several
of its ``skimage.data`` images over the network, but the ones listed here are bundled in its
wheel; a photo whose file is absent is simply left out.
"""

from __future__ import annotations

import functools
import importlib.util
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ImageError, MissingPackageError
from .imaging import load_image
from .optional import missing_package

__all__ = [
    "SAMPLES",
    "MissingSampleError",
    "SampleImages",
    "SampleSource",
    "sample_image",
    "sample_image_path",
    "sample_images",
]


@dataclass(frozen=True)
class SampleSource:
    """Where a sample photo lives: a file inside an installed package."""

    name: str
    package: str  # importable top-level package
    relpath: str  # path inside the package directory
    pip_name: str  # what to install to get it
    description: str


#: The sample photos, in display order.
SAMPLES: tuple[SampleSource, ...] = (
    SampleSource("chelsea", "skimage", "data/chelsea.png", "scikit-image", "Chelsea the cat (skimage.data.chelsea)"),
    SampleSource("coffee", "skimage", "data/coffee.png", "scikit-image", "a cup of coffee (skimage.data.coffee)"),
    SampleSource("astronaut", "skimage", "data/astronaut.png", "scikit-image", "Eileen Collins (skimage.data.astronaut)"),
    SampleSource("rocket", "skimage", "data/rocket.jpg", "scikit-image", "a rocket launch (skimage.data.rocket)"),
    SampleSource(
        "motorcycle", "skimage", "data/motorcycle_left.png", "scikit-image",
        "a motorcycle (left image of skimage.data.stereo_motorcycle)",
    ),
    SampleSource(
        "grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib",
        "Grace Hopper (matplotlib sample data)",
    ),
    SampleSource("china", "sklearn", "datasets/images/china.jpg", "scikit-learn", "a temple in China (sklearn sample image)"),
    SampleSource("flower", "sklearn", "datasets/images/flower.jpg", "scikit-learn", "a flower (sklearn sample image)"),
)
_BY_NAME = {s.name: s for s in SAMPLES}


def _source(name: str) -> SampleSource:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ImageError(f"unknown sample image {name!r}; choose one of {list(_BY_NAME)}") from None


def _package_dirs(package: str) -> list[Path]:
    """Directories of an installed package, found without importing it (empty if absent)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def sample_image_path(name: str) -> Path | None:
    """The file behind sample ``name``, or ``None`` when its package (or the file) is not installed."""
    src = _source(name)
    for directory in _package_dirs(src.package):
        path = directory / src.relpath
        if path.is_file():
            return path
    return None


class MissingSampleError(MissingPackageError, ImageError, KeyError):
    """A known sample photo whose package is not installed (also an ``ImageError``, and a ``KeyError``
    for dict look-ups)."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable.
        return str(self.args[0]) if self.args else ""


def _missing(name: str) -> MissingSampleError:
    src = _source(name)
    return MissingSampleError(str(missing_package(src.package, f"the sample photo {name!r}")))


class SampleImages(OrderedDict):  # type: ignore[type-arg]
    """``{name: RGB uint8 array}``; looking up a known photo that is not installed names the
    ``pip install`` line that brings it (instead of a bare ``KeyError: 'chelsea'``)."""

    def __missing__(self, name: str) -> np.ndarray:
        if name in _BY_NAME:
            raise _missing(name)
        raise KeyError(name)


@functools.lru_cache(maxsize=len(SAMPLES))
def _decode(path: Path) -> np.ndarray:
    rgb = load_image(path)  # the one decoder: EXIF, alpha and size caps as for any photo
    rgb.flags.writeable = False
    return rgb


def sample_image(name: str) -> np.ndarray:
    """One sample photo as a fresh RGB uint8 ``(h, w, 3)`` array; raises if it is not installed."""
    path = sample_image_path(name)
    if path is None:
        raise _missing(name)
    return _decode(path).copy()


def sample_images() -> SampleImages:
    """Ordered ``{name: RGB uint8 (h, w, 3)}`` of every sample photo that is installed.

    Names, in order: chelsea, coffee, astronaut, rocket, motorcycle, grace_hopper, china, flower.
    Missing ones are skipped (never downloaded); ``photos["chelsea"]`` without scikit-image raises
    :class:`MissingSampleError` naming ``pip install "cam-widget[default-model]"``.  Each call
    returns fresh, writable arrays.
    """
    out = SampleImages()
    for src in SAMPLES:
        path = sample_image_path(src.name)
        if path is None:
            continue
        try:
            out[src.name] = _decode(path).copy()
        except ImageError:
            continue
    return out
