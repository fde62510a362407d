"""A tiny Keras model whose answer is known analytically, for the faithfulness tests.

Class 0's logit is ``K * m - K / 2`` with ``m`` the mean brightness (0..1, mean over RGB) inside a
fixed square; class 1's logit is 0.  So ``p0 = sigmoid(K * m - K / 2)``: only pixels inside the square
matter, and each of them exactly as much as its brightness.
"""

from __future__ import annotations

import keras
import numpy as np

from cam_widget.engine import CAMEngine

SIZE = 32
SQUARE = (8, 6, 20, 18)  # x0, y0, x1, y1 (half-open)
K = 8.0


def indicator(size: int = SIZE, square: tuple[int, int, int, int] = SQUARE) -> np.ndarray:
    x0, y0, x1, y1 = square
    m = np.zeros((size, size), np.float64)
    m[y0:y1, x0:x1] = 1.0
    return m


def square_model(nested: bool = False) -> keras.Model:
    """Input (32, 32, 3) of raw 0..255 values -> one 32 x 32 'valid' conv (the square's mean) -> Dense."""
    mask = indicator()
    area = mask.sum()
    inp = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(1, SIZE, padding="valid", use_bias=False, name="square_mean")
    dense = keras.layers.Dense(2, activation="softmax", name="predictions")
    if nested:
        inner_in = keras.Input((SIZE, SIZE, 3))
        backbone = keras.Model(inner_in, conv(inner_in), name="backbone")
        x = backbone(inp)
    else:
        x = conv(inp)
    out = dense(keras.layers.Flatten()(x))
    model = keras.Model(inp, out, name="square")
    kernel = np.repeat(mask[:, :, None, None], 3, axis=2) / (area * 3 * 255.0)
    conv.set_weights([kernel.astype(np.float32)])
    dense.set_weights([np.array([[K, 0.0]], np.float32), np.array([-K / 2, 0.0], np.float32)])
    return model


def square_engine(nested: bool = False) -> CAMEngine:
    return CAMEngine(square_model(nested), preprocess=None, class_names=["square", "other"])


def p0_of(images: np.ndarray) -> np.ndarray:
    """The analytic class-0 probability of each image ``(n, 32, 32, 3)`` (or one image)."""
    imgs = np.asarray(images, np.float64)
    if imgs.ndim == 3:
        imgs = imgs[None]
    x0, y0, x1, y1 = SQUARE
    m = imgs[:, y0:y1, x0:x1, :].mean(axis=(1, 2, 3)) / 255.0
    return 1.0 / (1.0 + np.exp(-(K * m - K / 2)))


def square_photo(seed: int = 0, inside: int = 200) -> np.ndarray:
    """Random background, the square uniformly ``inside`` (so any in-square order is equally good)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
    x0, y0, x1, y1 = SQUARE
    img[y0:y1, x0:x1] = inside
    return img
