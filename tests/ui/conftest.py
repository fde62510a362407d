"""Fixtures of the panel tests: one engine on the small nested model per module, the sample photos, and ``make``
(build a CAMExplorer, closed at teardown)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from cam_widget import CAMEngine
from cam_widget.samples import sample_image
from cam_widget.ui.panel import CAMExplorer

from .helpers import CAM_LAYER, CLASS_NAMES, SMALL, build_model


@pytest.fixture(scope="module")
def engine() -> CAMEngine:
    eng = CAMEngine(build_model(), class_names=CLASS_NAMES)
    assert eng.cam_layer == CAM_LAYER
    return eng


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {"chelsea": sample_image("chelsea"), "coffee": sample_image("coffee")}


@pytest.fixture
def make(engine, photos):
    made: list[CAMExplorer] = []

    def _make(eng: Any = None, images: Any = None, **kw: Any) -> CAMExplorer:
        kw.setdefault("display_size", SMALL)
        kw.setdefault("png_max", SMALL)  # lossless frames for exact colour checks; the default is JPEG everywhere
        w = CAMExplorer(eng or engine, photos if images is None else images, **kw)
        made.append(w)
        return w

    yield _make
    for w in made:
        w.close()


