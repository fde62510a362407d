"""Refit a GAP -> linear head on any spatial layer (the paper's "conv cutoff", without a training run).

Zhou et al. cut the late conv layers of a network and fine-tune a new GAP + softmax head on an
earlier, finer layer.  Here the new head is *distilled* from the model itself, in seconds:

1. ONE batched forward pass over the photos plus ``crops_per_image`` random crops/flips of each
   (scale augmentation needs real pixels) captures the chosen layer's and the CAM layer's features;
2. further augmentation happens on those cached feature maps: every sub-window covering at least
   ``min_window`` of each side of the coarse CAM grid is a sample.  The student sees the GAP of the
   chosen layer over the window; the teacher is the model's own head applied to the GAP of its
   CAM layer over the same window (exactly the model's logits for the full window);
3. a ridge least-squares fit of the logits (each class's column is an independent regression);
4. the report measures agreement with the real model on *held-out* augmented photos (new random
   crops and flips run through the whole network), never on the fitting samples.

For a model without a GAP head the teacher is the model's logits on the augmented crops.
Only numpy runs here besides the engine's forward passes.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CAMError
from .imaging import ImageSource, load_image

if TYPE_CHECKING:
    from .engine import CAMEngine
    from .keras_graph import Head

__all__ = ["FitReport", "load_heads", "refit_head", "save_heads"]


@dataclass
class FitReport:
    """How well a refitted head reproduces the model.

    ``top1_agreement``: fraction of held-out augmented photos where the refit head's top class is
    the model's.  ``top5_overlap``: mean ``|top5(head) & top5(model)| / 5`` on the same photos.
    """

    layer: str
    top1_agreement: float
    top5_overlap: float
    n_samples: int
    n_heldout: int
    teacher: str
    seconds: float
    head: Head | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return (
            f"refit head at {self.layer}: top-1 agreement {self.top1_agreement:.0%}, top-5 overlap "
            f"{self.top5_overlap:.0%} on {self.n_heldout} held-out augmentations "
            f"({self.n_samples} fitting samples, teacher: {self.teacher}, {self.seconds:.1f} s)"
        )


def _integral(f: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero border: window sums in O(1)."""
    n, h, w, k = f.shape
    s = np.zeros((n, h + 1, w + 1, k), np.float64)
    s[:, 1:, 1:] = f.cumsum(1).cumsum(2)
    return s


def _window_means(table: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean over each ``(y0, x0, y1, x1)`` window, for every image: ``(n * len(boxes), k)``."""
    y0, x0, y1, x1 = boxes.T
    sums = table[:, y1, x1] - table[:, y0, x1] - table[:, y1, x0] + table[:, y0, x0]
    area = ((y1 - y0) * (x1 - x0)).astype(np.float64)[None, :, None]
    return (sums / area).reshape(-1, table.shape[-1]).astype(np.float32)


def _windows(h: int, w: int, min_window: float) -> np.ndarray:
    hs = range(max(1, int(np.ceil(min_window * h))), h + 1)
    ws = range(max(1, int(np.ceil(min_window * w))), w + 1)
    return np.array(
        [(y, x, y + bh, x + bw) for bh in hs for bw in ws for y in range(h - bh + 1) for x in range(w - bw + 1)],
        np.int64,
    )


def _scale_boxes(boxes: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    ry, rx = dst[0] / src[0], dst[1] / src[1]
    out = np.empty_like(boxes)
    out[:, 0] = np.floor(boxes[:, 0] * ry)
    out[:, 1] = np.floor(boxes[:, 1] * rx)
    out[:, 2] = np.maximum(out[:, 0] + 1, np.ceil(boxes[:, 2] * ry))
    out[:, 3] = np.maximum(out[:, 1] + 1, np.ceil(boxes[:, 3] * rx))
    return out


def _ridge(x: np.ndarray, t: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    mx, mt = x.mean(0), t.mean(0)
    xc = (x - mx).astype(np.float64)
    gram = xc.T @ xc
    lam = alpha * np.trace(gram) / max(1, gram.shape[0])
    w = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), xc.T @ (t - mt).astype(np.float64))
    return w.astype(np.float32), (mt - mx @ w).astype(np.float32)


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    sy, sx = rng.uniform(0.55, 0.95, size=2)
    ch, cw = max(8, int(h * sy)), max(8, int(w * sx))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = image[y : y + ch, x : x + cw]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def _agreement(student: np.ndarray, teacher: np.ndarray) -> tuple[float, float]:
    top1 = float(np.mean(student.argmax(1) == teacher.argmax(1)))
    s5 = np.argsort(-student, axis=1)[:, :5]
    t5 = np.argsort(-teacher, axis=1)[:, :5]
    overlap = np.mean([len(set(a) & set(b)) / 5.0 for a, b in zip(s5, t5, strict=False)])
    return top1, float(overlap)


def refit_head(
    engine: CAMEngine,
    layer: str,
    images: list[ImageSource] | dict[str, ImageSource],
    *,
    crops_per_image: int = 8,
    min_window: float = 0.5,
    heldout_per_image: int = 4,
    ridge: float = 1e-2,
    seed: int = 0,
    register: bool = True,
) -> FitReport:
    """Fit a GAP -> linear head on ``layer`` that reproduces ``engine``'s logits; see the module doc.

    ``images`` (a list, or a mapping such as :func:`cam_widget.sample_images`) are the photos to
    distil on; no labels are needed.  With ``register=True`` the head is attached to the engine,
    so ``engine.cam(image, c, layer=layer)`` is then exact CAM for it.  At the layer carrying the
    model's own head the fit is returned (``report.head``) but not registered.
    """
    start = time.perf_counter()
    photos = [load_image(im) for im in (images.values() if isinstance(images, dict) else images)]
    if not photos:
        raise CAMError("refit_head needs at least one image to distil from; pass a list of photos.")
    name = engine.layer(layer).name
    rng = np.random.default_rng(seed)
    top = engine.cam_layer
    views = photos + [_augment(p, rng) for p in photos for _ in range(max(0, crops_per_image))]
    if top is not None:
        teacher_head = engine.heads()[top]
        _, feats = engine.features_many(views, [name, top])
        fl, ft = feats[name], feats[top]
        boxes = _windows(ft.shape[1], ft.shape[2], min_window)
        x = _window_means(_integral(fl), _scale_boxes(boxes, ft.shape[1:3], fl.shape[1:3]))
        t = _window_means(_integral(ft), boxes) @ teacher_head.weights + teacher_head.bias
        teacher = f"the model's head on {top}, over feature windows of {len(views)} photos and crops"
    else:
        logits, feats = engine.features_many(views, [name])
        x, t = feats[name].mean(axis=(1, 2)), logits
        teacher = f"the model's logits on {len(views)} photos and crops"
    w, b = _ridge(x, t.astype(np.float32), ridge)
    held_rng = np.random.default_rng([seed, 1])  # a separate stream: held-out crops are never fitted on
    held = [_augment(p, held_rng) for p in photos for _ in range(max(1, heldout_per_image))]
    held_logits, held_feats = engine.features_many(held, [name])
    student = held_feats[name].mean(axis=(1, 2)) @ w + b
    top1, top5 = _agreement(student, held_logits)
    from .keras_graph import Head

    head = Head(name, w, b, "refit")
    if register and name != top:
        head = engine.register_head(name, w, b, kind="refit")
    return FitReport(name, top1, top5, int(x.shape[0]), len(held), teacher, time.perf_counter() - start, head)


def save_heads(engine: CAMEngine, path: Any) -> None:
    """Save the engine's refitted heads to an ``.npz`` file (plain arrays, no pickle)."""
    heads = {k: h for k, h in engine.heads().items() if h.kind == "refit"}
    arrays: dict[str, np.ndarray] = {"layers": np.array(list(heads), dtype=str)}
    for i, h in enumerate(heads.values()):
        arrays[f"w{i}"], arrays[f"b{i}"] = h.weights, h.bias
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


def load_heads(engine: CAMEngine, path: Any) -> list[str]:
    """Load heads saved by :func:`save_heads` into ``engine`` (shapes are checked); returns the layers."""
    try:
        with np.load(path, allow_pickle=False) as data:
            layers = [str(s) for s in data["layers"]]
            pairs = [(data[f"w{i}"], data[f"b{i}"]) for i in range(len(layers))]
    except (OSError, ValueError, KeyError) as exc:
        raise CAMError(f"Could not read heads from {path!r}: {exc}. Save them with engine.save_heads(path).") from exc
    for name, (w, b) in zip(layers, pairs, strict=False):
        engine.register_head(name, w, b, kind="refit")
    return layers
