"""Shared pieces of the panel tests: a small nested random-weight model (with a tripwire layer that makes the model
fail on demand), its layers' names, an engine look-alike to override pieces of, frame decoding and counters."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from datetime import datetime, timezone  # noqa: E402

from cam_widget import CAMEngine, render  # noqa: E402
from cam_widget.imaging import resize_to  # noqa: E402

CLASS_NAMES = ["zebra", "apple", "kettle", "Mango", "banana", "yak", "cello", "drum", "ibis", "otter"]
CAM_LAYER = "backbone/c3"  # 8 x 8, under GAP -> Dense
NO_HEAD = "backbone/c2"  # 16 x 16, no head
SPARE = "backbone/c1"  # 32 x 32, used for registered ("refit") heads
NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)
SMALL = 200  # display size of most tests; they ask for PNG frames up to it (lossless: exact colour checks)

# A switch inside the model: when on, every forward pass raises (a model error at run time).
TRIPWIRE = {"on": False}


class Tripwire(keras.layers.Layer):
    def call(self, x: Any) -> Any:
        def check(v: np.ndarray) -> np.ndarray:
            if TRIPWIRE["on"]:
                raise RuntimeError("tripwire: the model failed on purpose")
            return v

        y = tf.numpy_function(check, [x], tf.float32, stateful=True)
        return tf.ensure_shape(y, x.shape)

    def compute_output_shape(self, shape: Any) -> Any:
        return shape


def build_model() -> keras.Model:
    keras.utils.set_random_seed(7)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inp)
    x = Tripwire(name="tripwire")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(24, 3, strides=2, padding="same", activation="relu", name="c3")(x)
    backbone = keras.Model(inp, x, name="backbone")
    model = keras.Sequential(
        [keras.Input((64, 64, 3)), backbone, keras.layers.GlobalAveragePooling2D(),
         keras.layers.Dense(len(CLASS_NAMES), activation="softmax", name="head")],
        name="nested",
    )
    rng = np.random.default_rng(0)
    model.get_layer("head").set_weights(
        [rng.normal(size=(24, len(CLASS_NAMES))).astype("float32"), rng.normal(size=len(CLASS_NAMES)).astype("float32")]
    )
    return model


_fresh_counter = [0]


def fresh_photo(photos: dict[str, np.ndarray]) -> np.ndarray:
    """A photo the engine has never seen (different content hash)."""
    _fresh_counter[0] += 1
    return np.ascontiguousarray(np.roll(photos["chelsea"], 7 * _fresh_counter[0], axis=1))


class Proxy:
    """An engine look-alike that delegates to a real engine; subclasses override pieces."""

    def __init__(self, engine: CAMEngine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        if name == "refit_head":
            raise AttributeError(name)
        return getattr(self._engine, name)


def decode(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "frame does not decode"
    return bgr[..., ::-1]


def expected_frame(w: Any, engine: CAMEngine, rgb: np.ndarray, cls: int, layer: str, method: str,
                   alpha: float, cmap: str) -> np.ndarray:
    display = resize_to(rgb, render.fit_within(rgb.shape, w.display_size))
    cam = engine.cam(rgb, cls, layer=layer, method=method)
    return render.blend(display, render.to_index(cam, display.shape[:2]), cmap, alpha)


def counters(engine: CAMEngine) -> tuple[int, int, int]:
    info = engine.cache_info()
    return info["misses"], info["forward_passes"], info["gradient_passes"]


def is_error(w: Any) -> bool:
    return "cam-error" in w.status.value


