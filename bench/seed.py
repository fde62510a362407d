"""The seed's naive path, the baseline every interaction is compared against.

What a first CAM notebook does on every control change, for the same photo and the same display size:

1. a full forward pass: ``model.predict`` on a Keras model that returns the CAM layer's features and the class
   scores (built once, which is charitable: a naive notebook often rebuilds it too);
2. a per-channel Python loop: ``cam += w[k, c] * f[:, :, k]`` over the 1280 channels;
3. a matplotlib figure (photo, then the map on top with ``alpha`` and the colormap, upsampled bilinearly by
   ``imshow``) saved to PNG bytes (the figure is exactly the display size, axes filling it: no tight bbox).

Written for this benchmark from that description; it reuses the engine's preprocessing and head weights so both
paths compute the same map.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .common import now


class SeedPath:
    """The naive per-interaction pipeline on ``engine``'s model (same head, same preprocessing)."""

    def __init__(self, engine: Any, layer: str | None = None) -> None:
        import keras
        import matplotlib

        matplotlib.use("Agg")
        self.engine = engine
        self.layer = layer or engine.cam_layer
        model = engine.model
        self.features_model = keras.Model(model.inputs, [model.get_layer(self.layer).output, model.output])
        head = engine.heads()[self.layer]
        self.weights = np.asarray(head.weights)  # (channels, classes)

    def forward(self, rgb: np.ndarray) -> np.ndarray:
        x = self.engine.model_input(rgb)[None]
        feats, _probs = self.features_model.predict(x, verbose=0)
        return feats[0]

    def weighted_sum(self, feats: np.ndarray, class_index: int) -> np.ndarray:
        cam = np.zeros(feats.shape[:2], np.float32)
        for k in range(feats.shape[2]):
            cam += self.weights[k, class_index] * feats[:, :, k]
        return cam

    def figure_png(self, display: np.ndarray, cam: np.ndarray, alpha: float, colormap: str) -> bytes:
        import matplotlib.pyplot as plt

        h, w = display.shape[:2]
        dpi = 100
        fig = plt.figure(figsize=(w / dpi, h / dpi), dpi=dpi)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.imshow(display)
        cam = np.maximum(cam, 0.0)
        ax.imshow(cam, cmap=colormap, alpha=alpha, extent=(0, w, h, 0), interpolation="bilinear")
        ax.set_axis_off()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        return buf.getvalue()

    def frame(
        self,
        rgb: np.ndarray,
        display: np.ndarray,
        class_index: int,
        alpha: float = 0.5,
        colormap: str = "jet",
    ) -> tuple[bytes, dict[str, float]]:
        """One interaction of the seed: returns the PNG bytes and the seconds spent in each step."""
        t0 = now()
        feats = self.forward(rgb)
        t1 = now()
        cam = self.weighted_sum(feats, class_index)
        t2 = now()
        data = self.figure_png(display, cam, alpha, colormap)
        t3 = now()
        return data, {"forward": t1 - t0, "loop": t2 - t1, "figure": t3 - t2, "total": t3 - t0}
