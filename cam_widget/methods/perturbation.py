"""Perturbation family: channel weights from forward passes on perturbed inputs or features.

* Score-CAM masks the model input with each channel's upsampled, min-max normalised activation map and
  weighs the channel by the masked input's probability of the class.
* Ablation-CAM zeroes one channel at a time at the layer and weighs it by the relative drop of the logit.

Both are batched, report ``progress(done, total)`` per batch and stop at the next batch when ``cancel`` is
set (raising :class:`cam_widget.errors.CancelledError`).  One set of passes per distinct image serves every
class asked for that image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import MethodError
from .base import Ingredients

__all__ = [
    "FULL_LIMIT", "SCORECAM_MAX_CHANNELS", "ablationcam", "scorecam", "select_channels",
]

# Faster Score-CAM default: 64 masked inputs keep a 7x7x1280 layer at a few seconds on a laptop CPU.
SCORECAM_MAX_CHANNELS = 64
# Full mode (all channels) above this many channels is refused unless allow_slow=True: minutes per map.
FULL_LIMIT = 512
_DEFAULT_SECONDS_PER_IMAGE = 0.04  # before the engine has timed a pass of its own


def _groups(ing: Ingredients) -> dict[str, list[int]]:
    """Item indices per distinct image (by content key), in order."""
    out: dict[str, list[int]] = {}
    for i, image in enumerate(ing.images):
        out.setdefault(ing.engine.prepare(image)[0], []).append(i)
    return out


def select_channels(feats: np.ndarray, max_channels: int | None) -> np.ndarray:
    """Indices of the ``max_channels`` channels of ``feats`` ``(h, w, k)`` with the largest spatial variance
    (Faster Score-CAM), in channel order; every channel for ``None`` or ``max_channels >= k``."""
    k = feats.shape[-1]
    if max_channels is None or max_channels >= k:
        return np.arange(k)
    var = feats.reshape(-1, k).var(axis=0)
    top = np.argsort(-var, kind="stable")[:max_channels]
    return np.sort(top)


def _check_channels(max_channels: Any) -> int | None:
    if max_channels is None:
        return None
    if isinstance(max_channels, bool) or not isinstance(max_channels, (int, np.integer)) or max_channels < 1:
        raise MethodError(f"max_channels must be a positive int or None (all channels); got {max_channels!r}.")
    return int(max_channels)


def _seconds(engine: Any) -> float:
    measured = engine.seconds_per_image()
    return measured if measured is not None else _DEFAULT_SECONDS_PER_IMAGE


def _passes_text(n: int, engine: Any) -> str:
    s = _seconds(engine)
    return f"{n} forward passes (~{n * s:.1f} s at {1000 * s:.0f} ms/image)"


def estimate_scorecam(
    engine: Any, layer: str, max_channels: int | None = SCORECAM_MAX_CHANNELS, batch_size: int = 32,
    allow_slow: bool = False, align_corners: bool = False,
) -> str:
    k = engine.layer(layer).shape[2]
    n = k if max_channels is None else min(int(max_channels), k)
    return _passes_text(n, engine)


def estimate_ablationcam(engine: Any, layer: str, batch_size: int = 64, max_channels: int | None = None) -> str:
    k = engine.layer(layer).shape[2]
    n = k if max_channels is None else min(int(max_channels), k)
    if engine.can_split(layer):
        return f"{n} passes through the layers after {layer!r} (on cached features)"
    return _passes_text(n, engine)


def scorecam(
    ing: Ingredients,
    max_channels: int | None = SCORECAM_MAX_CHANNELS,
    batch_size: int = 32,
    allow_slow: bool = False,
    align_corners: bool = False,
) -> np.ndarray:
    """Score-CAM (Wang et al. 2020), weights as the authors and tf-keras-vis compute them: each channel map
    is upsampled (bilinear) to the input size, min-max normalised to [0, 1] (a constant map gives a zero
    mask), multiplied with the model input, and the masked input's probability of the class (the model's
    softmax/sigmoid) is the channel's weight.  ``max_channels=N`` keeps the N channels of largest variance
    (Faster Score-CAM; the others weigh 0); ``None`` uses every channel, refused above ``FULL_LIMIT``
    channels unless ``allow_slow=True``.  The masks are upsampled with pixel-centre alignment, as the
    authors' PyTorch code (``align_corners=False``); ``align_corners=True`` aligns the corner cells with the
    corner pixels instead, as tf-keras-vis (``scipy.ndimage.zoom``) does.  The masks are built and run in
    one compiled graph per batch (:meth:`CAMEngine.masked_scores`)."""
    engine = ing.engine
    max_channels = _check_channels(max_channels)
    k = ing.features.shape[-1]
    if max_channels is None and k > FULL_LIMIT and not allow_slow:
        raise MethodError(
            f"Score-CAM over all {k} channels of {ing.layer!r} costs {_passes_text(k, engine)} per image. "
            f"Pass max_channels=N (Faster Score-CAM, default {SCORECAM_MAX_CHANNELS}) or allow_slow=True."
        )
    groups = _groups(ing)
    picks = {key: select_channels(ing.features[idx[0]], max_channels) for key, idx in groups.items()}
    total = sum(len(p) for p in picks.values())
    done = 0
    ing.report(0, total)
    weights = np.zeros((len(ing.images), k), np.float32)
    for key, idx in groups.items():
        chans = picks[key]

        def step(n: int, _m: int, before: int = done) -> None:
            ing.report(before + n, total)

        probs = engine.masked_scores(
            ing.images[idx[0]], np.moveaxis(ing.features[idx[0]][..., chans], -1, 0), align_corners=align_corners,
            batch_size=batch_size, progress=step, cancel=ing.cancel,
        )
        for i in idx:
            weights[i, chans] = probs[:, ing.classes[i]]
        done += len(chans)
    return weights


def ablationcam(ing: Ingredients, batch_size: int = 64, max_channels: int | None = None) -> np.ndarray:
    """Ablation-CAM (Desai & Ramaswamy 2020): ``w_k = (y_c - y_c^k) / |y_c|`` with ``y_c^k`` the logit when
    channel k of the layer is zeroed (the paper divides by ``y_c``; ``|y_c|`` keeps the sign meaning "the
    score drops" for classes with a negative logit, and is the paper's for the usual positive case; a zero
    logit is not divided).  The ablated features run through the rest of the network from the layer when the
    graph splits there (:meth:`CAMEngine.can_split`), else through a full forward pass per ablation with the
    channel zeroed at the layer.  ``max_channels=N`` ablates only the N channels of largest spatial variance (as
    Score-CAM's; for a wide layer behind a skip connection, where each ablation is a full forward pass); the
    other channels weigh 0.  ``None`` (default) ablates every channel."""
    engine = ing.engine
    max_channels = _check_channels(max_channels)
    k = ing.features.shape[-1]
    groups = _groups(ing)
    picks = {key: select_channels(ing.features[idx[0]], max_channels) for key, idx in groups.items()}
    total = sum(len(p) for p in picks.values())
    weights = np.zeros((len(ing.images), k), np.float32)
    done = 0
    for key, idx in groups.items():
        chans = picks[key]
        ablate = np.ones((len(chans), k), np.float32)
        ablate[np.arange(len(chans)), chans] = 0.0

        def step(n: int, _total: int, before: int = done) -> None:
            ing.report(before + n, total)

        logits = engine.channel_ablation_logits(
            ing.images[idx[0]], ing.layer, ablate, batch_size=batch_size, progress=step, cancel=ing.cancel
        )
        done += len(chans)
        base = ing.logits[idx[0]]
        for i in idx:
            c = ing.classes[i]
            y = float(base[c])
            drop = y - logits[:, c]
            weights[i, chans] = drop / abs(y) if y != 0 else drop
    return weights
