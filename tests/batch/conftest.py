"""Shared fixtures of the batch tests: a photo set on disk and bad files next to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.batch import write_photo_set


@pytest.fixture(scope="session")
def photo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 labelled JPEGs with boxes (real photos, resized/mirrored) and their ``list.csv``."""
    return write_photo_set(tmp_path_factory.mktemp("photos"), count=12)


@pytest.fixture(scope="session")
def bad_folder(tmp_path_factory: pytest.TempPathFactory, photo_csv: Path) -> Path:
    """Four good photos plus a corrupt, an empty and an oversized (by pixel count) file."""
    import cv2

    folder = tmp_path_factory.mktemp("bad")
    for name in ["chelsea-100.jpg", "coffee-100.jpg", "rocket-100.jpg", "chelsea-100-flip.jpg"]:
        (folder / name).write_bytes((photo_csv.parent / name).read_bytes())
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg at all" * 10)
    (folder / "empty.png").write_bytes(b"")
    _, data = cv2.imencode(".png", np.zeros((1200, 1200, 3), np.uint8))  # 1.44 MP > the jobs' 1 MP cap
    (folder / "huge.png").write_bytes(data.tobytes())
    return folder
