"""Refit a GAP -> linear head on any spatial layer (the paper's "conv cutoff", without a training run).

Zhou et al. cut the late conv layers of a network and fine-tune a new GAP + softmax head on an
earlier, finer layer.  Here the new head is *distilled* from the model itself, in seconds:

1. batched forward passes (not cached: the crops are thrown away) over the photos plus
   ``crops_per_image`` random crops/flips of each capture the chosen layer's and the CAM layer's
   features and the model's logits.  Scale augmentation needs real pixels; a whole default refit
   on the 8 sample photos takes 3-4 s on two cores (BENCHMARKS.md, section 6);
2. more samples come from sub-windows of those feature maps: every window covering at least
   ``min_window`` of each side of the coarse CAM grid.  The student sees the GAP of the chosen
   layer over the window; the teacher is the model's own head on the GAP of its CAM layer over
   the same window, i.e. the mean of the model's own CAM there.  Windows teach the head *where*
   the model's evidence lies, which is what a CAM shows: on the packaged case set, a head fitted
   on whole crops alone agrees with the model slightly more often but localizes clearly worse (see
   docs/CONV_CUTOFF.md).  The whole views carry ``view_share`` of the weight, the windows the rest;
3. a weighted ridge least-squares fit of the logits (each class's column is an independent
   regression), solved from accumulated moments so the window targets are never formed;
4. the report measures agreement with the real model on *held-out* augmented photos (new random
   crops and flips run through the whole network), never on the fitting samples.  It also says
   how stable the model itself is there: each held-out crop has a twin moved by 2% of its size,
   and ``model_self_agreement`` is how often the model keeps its own top-1 across the pair.  On
   photos without a clear ImageNet class (a portrait, a palace) the model's top-1 flips between
   near-tied classes under such shifts, and a GAP -> linear head cannot be expected to follow;
   ``top1_agreement_stable`` is the agreement on the crops where the model is stable.

With ``min_window=1``, or for a model without a GAP head, the teacher is the model's logits on the crops.
Only numpy runs here besides the engine's forward passes.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CAMError
from .imaging import ImageSource, load_image, resize_to
from .render import fit_within

if TYPE_CHECKING:
    from .engine import CAMEngine
    from .keras_graph import Head

__all__ = ["FitReport", "load_heads", "refit_head", "save_heads"]

SHIFT = 0.02  # the held-out twin crop is moved by this fraction of the crop's size
CHUNK = 64  # views per forward pass: bounds the memory of feature maps at any layer
PHOTO_LIMIT = 4  # photos are shrunk to at most this many model inputs on their longest side before cropping
MAX_WINDOWS = 100  # feature windows per view (all of them on a 7x7 grid with min_window=0.5)


@dataclass
class FitReport:
    """How well a refitted head reproduces the model.

    ``top1_agreement``: fraction of held-out augmented photos where the refit head's top class is
    the model's.  ``top5_overlap``: mean ``|top5(head) & top5(model)| / 5`` on the same photos.
    ``model_self_agreement``: how often the model's own top-1 survives moving each held-out crop
    by 2% of its size (a reference: a head cannot be expected to agree with the model more
    reliably than the model agrees with itself).  ``top1_agreement_stable``: the agreement on the
    ``n_stable`` held-out crops where it does survive (nan if there are none).
    ``fit_top1_agreement``: the agreement on the fitting samples themselves; close to
    ``top1_agreement`` means the head is as good as a linear head on this layer gets (more photos
    will not help), much higher means it over-fits (more photos or a larger ``ridge`` will).
    ``image_agreement``: the held-out top-1 agreement per distillation photo, in the order given.
    """

    layer: str
    top1_agreement: float
    top5_overlap: float
    n_samples: int
    n_heldout: int
    teacher: str
    seconds: float
    head: Head | None = field(default=None, repr=False)
    model_self_agreement: float = float("nan")
    top1_agreement_stable: float = float("nan")
    n_stable: int = 0
    fit_top1_agreement: float = float("nan")
    image_agreement: list[float] = field(default_factory=list)

    def summary(self) -> str:
        """The fidelity numbers and the fit time in one short line (the widget's status line)."""
        parts = [f"top-1 agreement {self.top1_agreement:.0%}"]
        if np.isfinite(self.top1_agreement_stable) and np.isfinite(self.model_self_agreement):
            parts.append(
                f"{self.top1_agreement_stable:.0%} where the model's own top-1 is stable, "
                f"as on {self.model_self_agreement:.0%} of crops"
            )
        return ", ".join([*parts, f"top-5 overlap {self.top5_overlap:.0%}", f"fitted in {self.seconds:.1f} s"])

    def __str__(self) -> str:
        return (
            f"refit head at {self.layer}: top-1 agreement {self.top1_agreement:.0%} "
            f"({self.top1_agreement_stable:.0%} where the model's own top-1 is stable, "
            f"{self.n_stable} of {self.n_heldout}; the model agrees with itself under a 2% shift on "
            f"{self.model_self_agreement:.0%}), top-5 overlap {self.top5_overlap:.0%} on "
            f"{self.n_heldout} held-out augmentations ({self.n_samples} fitting samples, "
            f"teacher: {self.teacher}, {self.seconds:.1f} s)"
        )


def _window_matrix(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """``(len(boxes), h * w)``: row ``i`` averages the cells of window ``i`` = ``(y0, x0, y1, x1)``."""
    mat = np.zeros((len(boxes), h, w), np.float32)
    for i, (y0, x0, y1, x1) in enumerate(boxes):
        mat[i, y0:y1, x0:x1] = 1.0 / ((y1 - y0) * (x1 - x0))
    return mat.reshape(len(boxes), h * w)


def _window_means(f: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The mean of ``f`` ``(n, h, w, k)`` over every window of ``matrix``, for every image: ``(n * windows, k)``."""
    n, h, w, k = f.shape
    return np.matmul(matrix, f.reshape(n, h * w, k).astype(np.float32, copy=False)).reshape(-1, k)


def _windows(h: int, w: int, min_window: float, rng: np.random.Generator, limit: int = MAX_WINDOWS) -> np.ndarray:
    """Every ``(y0, x0, y1, x1)`` window of an ``h x w`` grid covering at least ``min_window`` of each
    side; at most ``limit`` of them (a random subset that keeps the whole grid, for large grids)."""
    hs = range(max(1, int(np.ceil(min_window * h))), h + 1)
    ws = range(max(1, int(np.ceil(min_window * w))), w + 1)
    boxes = np.array(
        [(y, x, y + bh, x + bw) for bh in hs for bw in ws for y in range(h - bh + 1) for x in range(w - bw + 1)],
        np.int64,
    )
    if len(boxes) > limit:
        whole = len(boxes) - 1  # the largest size comes last: the whole grid
        keep = rng.choice(whole, size=limit - 1, replace=False)
        boxes = boxes[np.sort(np.append(keep, whole))]
    return boxes


def _scale_boxes(boxes: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    ry, rx = dst[0] / src[0], dst[1] / src[1]
    out = np.empty_like(boxes)
    out[:, 0] = np.floor(boxes[:, 0] * ry)
    out[:, 1] = np.floor(boxes[:, 1] * rx)
    out[:, 2] = np.maximum(out[:, 0] + 1, np.ceil(boxes[:, 2] * ry))
    out[:, 3] = np.maximum(out[:, 1] + 1, np.ceil(boxes[:, 3] * rx))
    return out


class _Moments:
    """Weighted first and second moments for a ridge fit of ``t = m @ proj + bias`` on ``x``.

    The targets are never formed: with ``m`` the pooled CAM-layer features (1280 wide) and ``proj``
    the model's head (1280 x 1000), ``x.T @ t`` is ``(x.T @ m) @ proj``, which is far cheaper than
    multiplying every window sample by the head.  ``proj=None`` means ``m`` are the targets.
    Products run in float32 on data shifted by the first batch's means (so the centring later
    does not cancel large numbers); the sums are kept in float64."""

    def __init__(self, k: int, kk: int) -> None:
        self.total = 0.0
        self.shift_x: np.ndarray | None = None
        self.shift_m: np.ndarray | None = None
        self.sx, self.sm = np.zeros(k), np.zeros(kk)
        self.xx, self.xm = np.zeros((k, k)), np.zeros((k, kk))

    def add(self, x: np.ndarray, m: np.ndarray, weight: np.ndarray) -> None:
        weight = weight.astype(np.float32)
        if self.shift_x is None or self.shift_m is None:
            self.shift_x = (weight @ x / weight.sum()).astype(np.float32)
            self.shift_m = (weight @ m / weight.sum()).astype(np.float32)
        x = x.astype(np.float32) - self.shift_x
        m = m.astype(np.float32) - self.shift_m
        xw = x * weight[:, None]
        self.total += float(weight.sum(dtype=np.float64))
        self.sx += xw.sum(0, dtype=np.float64)
        self.sm += (weight @ m).astype(np.float64)
        self.xx += xw.T @ x
        self.xm += xw.T @ m

    def solve(self, alpha: float, proj: np.ndarray | None, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        assert self.shift_x is not None and self.shift_m is not None, "no samples were added"
        mx, mm = self.sx / self.total, self.sm / self.total
        cxx = self.xx - self.total * np.outer(mx, mx)
        cxm = self.xm - self.total * np.outer(mx, mm)
        mx, mm = mx + self.shift_x, mm + self.shift_m
        cxt = cxm if proj is None else cxm @ proj.astype(np.float64)
        mt = mm if proj is None else mm @ proj.astype(np.float64) + (0.0 if bias is None else bias)
        lam = alpha * np.trace(cxx) / max(1, cxx.shape[0])
        w = np.linalg.solve(cxx + lam * np.eye(cxx.shape[0]), cxt)
        return w.astype(np.float32), (mt - mx @ w).astype(np.float32)


Crop = tuple[int, int, int, int, int, int, bool]  # y, x, height, width, twin offset dy, dx, mirrored


def _draw(shape: tuple[int, ...], rng: np.random.Generator, shift: float = 0.0) -> Crop:
    """A random crop (55-95% of each side) of an image of ``shape``, mirrored with probability 1/2,
    with room for a twin moved down and right by ``shift`` of the crop's size (none when 0)."""
    h, w = shape[:2]
    sy, sx = rng.uniform(0.55, 0.95, size=2)
    ch, cw = max(8, int(h * sy)), max(8, int(w * sx))
    dy = min(h - ch, max(1, round(shift * ch))) if shift else 0
    dx = min(w - cw, max(1, round(shift * cw))) if shift else 0
    y, x = int(rng.integers(0, h - ch - dy + 1)), int(rng.integers(0, w - cw - dx + 1))
    return y, x, ch, cw, dy, dx, bool(rng.random() < 0.5)


def _cut(image: np.ndarray, crop: Crop | None, twin: bool = False) -> np.ndarray:
    """The pixels of ``crop`` (or of its twin); the whole image for ``None``."""
    if crop is None:
        return image
    y, x, ch, cw, dy, dx, flip = crop
    if twin:
        y, x = y + dy, x + dx
    out = image[y : y + ch, x : x + cw]
    return np.ascontiguousarray(out[:, ::-1] if flip else out)


def _shrunk(image: np.ndarray, longest: int) -> np.ndarray:
    return resize_to(image, fit_within(image.shape, longest))


def _top5_overlap(student: np.ndarray, teacher: np.ndarray) -> float:
    s5 = np.argsort(-student, axis=1)[:, :5]
    t5 = np.argsort(-teacher, axis=1)[:, :5]
    return float(np.mean([len(set(a) & set(b)) / 5.0 for a, b in zip(s5, t5, strict=True)]))


def refit_head(
    engine: CAMEngine,
    layer: str,
    images: list[ImageSource] | dict[str, ImageSource],
    *,
    crops_per_image: int = 32,
    min_window: float = 0.5,
    heldout_per_image: int = 8,
    ridge: float = 1e-2,
    view_share: float = 0.5,
    seed: int = 0,
    register: bool = True,
) -> FitReport:
    """Fit a GAP -> linear head on ``layer`` that reproduces ``engine``'s logits; see the module doc.

    ``images`` (a list, or a mapping such as :func:`cam_widget.sample_images`) are the photos to
    distil on; no labels are needed.  ``crops_per_image`` random crops (55-95% of each side,
    flipped half the time) of each photo are the fitting samples, ``heldout_per_image`` more (from
    a separate random stream, each with a shifted twin) the held-out ones; ``min_window`` and
    ``view_share`` control the feature-window samples (see the module doc); ``ridge`` is the
    regularisation relative to the mean feature variance.  With ``register=True`` the head is attached to the engine,
    so ``engine.cam(image, c, layer=layer)`` is then exact CAM for it.  At the layer carrying the
    model's own head the fit is returned (``report.head``) but not registered.
    """
    start = time.perf_counter()
    if not 0.0 <= view_share < 1.0:
        raise CAMError(f"view_share must be in [0, 1); got {view_share!r}.")
    longest = PHOTO_LIMIT * max(engine.input_size)  # crops of huge photos: bounded memory, same pixels at the input
    photos = [_shrunk(load_image(im), longest) for im in (images.values() if isinstance(images, dict) else images)]
    if not photos:
        raise CAMError("refit_head needs at least one image to distil from; pass a list of photos.")
    name = engine.layer(layer).name
    rng = np.random.default_rng(seed)
    top = engine.cam_layer
    # (photo, crop, twin?) triples; the pixels are cut one chunk at a time
    views: list[tuple[int, Crop | None, bool]] = [(i, None, False) for i in range(len(photos))]
    views += [(i, _draw(p.shape, rng), False) for i, p in enumerate(photos) for _ in range(max(0, crops_per_image))]
    sampler = _WindowSampler(engine, name, top, min_window, view_share, rng) if top and min_window < 1.0 else None
    outputs = [name, top] if sampler else [name]  # one traced forward function serves fitting and held-out
    moments: _Moments | None = None
    pooled, view_logits = [], []  # each view's GAP features and logits, for the fit report
    for chunk in _chunks(photos, views):
        logits, feats = engine.features_many(chunk, outputs, cache=False)
        x_view = feats[name].mean(axis=(1, 2))
        x, m, weight = sampler.samples(feats) if sampler else (x_view, logits, np.ones(len(chunk)))
        moments = moments or _Moments(x.shape[1], m.shape[1])
        moments.add(x, m, weight)
        pooled.append(x_view)
        view_logits.append(logits)
    assert moments is not None
    w, b = moments.solve(ridge, *(sampler.head if sampler else (None, None)))
    fit_top1 = float(np.mean((np.concatenate(pooled) @ w + b).argmax(1) == np.concatenate(view_logits).argmax(1)))
    if sampler:
        n_samples = len(views) * sampler.n_windows
        teacher = (
            f"the model's head on {top}, over {sampler.n_windows} feature windows of each of {len(views)} photos "
            f"and crops (whole views carry {view_share:.0%} of the weight)"
        )
    else:
        n_samples, teacher = len(views), f"the model's logits on {len(views)} photos and crops"

    held_rng = np.random.default_rng([seed, 1])  # a separate stream: held-out crops are never fitted on
    held = [(i, _draw(p.shape, held_rng, SHIFT)) for i, p in enumerate(photos) for _ in range(max(1, heldout_per_image))]
    n = len(held)
    held_logits, held_x = [], []
    for chunk in _chunks(photos, [(i, c, False) for i, c in held] + [(i, c, True) for i, c in held]):
        lg, feats = engine.features_many(chunk, outputs, cache=False)
        held_logits.append(lg)
        held_x.append(feats[name].mean(axis=(1, 2)))
    logits_all, x_all = np.concatenate(held_logits), np.concatenate(held_x)
    student = x_all[:n] @ w + b
    model_top1 = logits_all[:n].argmax(1)
    stable = model_top1 == logits_all[n:].argmax(1)
    agree = student.argmax(1) == model_top1
    top5 = _top5_overlap(student, logits_all[:n])
    from .keras_graph import Head

    head = Head(name, w, b, "refit")
    if register and name != top:
        head = engine.register_head(name, w, b, kind="refit")
    return FitReport(
        name,
        float(agree.mean()),
        top5,
        n_samples,
        n,
        teacher,
        time.perf_counter() - start,
        head,
        model_self_agreement=float(stable.mean()),
        top1_agreement_stable=float(agree[stable].mean()) if stable.any() else float("nan"),
        n_stable=int(stable.sum()),
        fit_top1_agreement=fit_top1,
        image_agreement=[float(a.mean()) for a in np.array_split(agree, len(photos))],
    )


class _WindowSampler:
    """Sub-window samples of one chunk's feature maps: the student's pooled features over each window
    of ``layer`` and the teacher's (the CAM layer's) over the same window, with the whole-view weight."""

    def __init__(
        self, engine: CAMEngine, layer: str, top: str, min_window: float, view_share: float, rng: np.random.Generator
    ) -> None:
        self.layer, self.top = layer, top
        teacher = engine.heads()[top]
        self.head = (teacher.weights, teacher.bias)
        grid = engine.layer(top).shape[:2]
        boxes = _windows(grid[0], grid[1], min_window, rng)
        student_grid = engine.layer(layer).shape[:2]
        self.teacher_avg = _window_matrix(boxes, *grid)
        self.student_avg = _window_matrix(_scale_boxes(boxes, grid, student_grid), *student_grid)
        self.n_windows = len(boxes)
        whole = (boxes[:, 2] - boxes[:, 0] == grid[0]) & (boxes[:, 3] - boxes[:, 1] == grid[1])
        n_sub = int((~whole).sum())  # whole views carry view_share of the total weight, the sub-windows the rest
        self.weight = np.where(whole, view_share / (1.0 - view_share) * n_sub, 1.0) if n_sub else np.ones(len(boxes))

    def samples(self, feats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(feats[self.layer])
        x = _window_means(feats[self.layer], self.student_avg)
        return x, _window_means(feats[self.top], self.teacher_avg), np.tile(self.weight, n)


def _chunks(photos: list[np.ndarray], items: list[tuple[int, Crop | None, bool]]) -> Iterator[list[np.ndarray]]:
    """The pixels of ``items`` ``(photo index, crop, twin?)``, ``CHUNK`` at a time."""
    for start in range(0, len(items), CHUNK):
        yield [_cut(photos[i], crop, twin) for i, crop, twin in items[start : start + CHUNK]]


def save_heads(engine: CAMEngine, path: Any) -> None:
    """Save the engine's refitted heads to an ``.npz`` file (plain arrays, no pickle; folders are created)."""
    heads = {k: h for k, h in engine.heads().items() if h.kind == "refit"}
    arrays: dict[str, np.ndarray] = {"layers": np.array(list(heads), dtype=str)}
    for i, h in enumerate(heads.values()):
        arrays[f"w{i}"], arrays[f"b{i}"] = h.weights, h.bias
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
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
