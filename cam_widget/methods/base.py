"""The ``Method`` record, the ingredients a method is computed from, and the runner that turns a method's
output into raw maps (channel sum or eigen smoothing, non-finite clean-up, the uninformative-map signal).

Pure numpy: the engine is handed in and only its public ingredient methods are called.
"""

from __future__ import annotations

import difflib
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import MethodError, UninformativeMapWarning, check_cancel

__all__ = [
    "COMMON_OPTIONS",
    "FAMILIES",
    "Ingredients",
    "Method",
    "Progress",
    "check_cancel",
    "is_uninformative",
    "pca_projection",
    "run",
    "run_quietly",
]

Progress = Callable[[int, int], None]

FAMILIES = ("head", "gradient", "activation", "perturbation")
# Options every method takes (handled by the runner, not by the method's function).
COMMON_OPTIONS = ("smooth",)
SMOOTHINGS = (None, "aug", "eigen")


@dataclass(frozen=True)
class Method:
    """One CAM method: what the UI shows about it and the function that computes it.

    ``compute(ingredients, **options)`` returns, for the ``n`` (image, class) pairs of the ingredients,
    one of: channel weights ``(n, k)`` (the map is ``sum_k w_k A_k``), per-channel terms ``(n, h, w, k)``
    (the map is their channel sum) or maps ``(n, h, w)``.  Returning weights or terms instead of the map
    is what lets ``smooth="eigen"`` work for every method.

    ``cost`` says what one new map costs once the image's features are cached: ``"none"``,
    ``"gradient pass"`` or ``"N forward passes"`` (N depends on the layer: see :meth:`estimate`).
    """

    name: str
    label: str
    family: str
    needs_head: bool
    cost: str
    description: str
    paper: str
    compute: Callable[..., np.ndarray] = field(repr=False, compare=False)
    options: tuple[str, ...] = ()
    expensive: bool = False
    needs_gradients: bool = False
    estimator: Callable[..., str] | None = field(default=None, repr=False, compare=False)
    defaults: tuple[tuple[str, Any], ...] = ()

    @property
    def accepts(self) -> tuple[str, ...]:
        """Every option name :meth:`CAMEngine.cam` accepts for this method (its own plus ``smooth``)."""
        return (*self.options, *COMMON_OPTIONS)

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise :class:`MethodError` for an option this method does not take, naming the ones it does."""
        for key in options:
            if key not in self.accepts:
                close = difflib.get_close_matches(key, self.accepts, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise MethodError(
                    f"Method {self.name!r} takes no option {key!r}; it accepts {', '.join(map(repr, self.accepts))}."
                    f"{hint}"
                )
        smooth = options.get("smooth")
        if smooth not in SMOOTHINGS:
            raise MethodError(f"smooth must be None, 'aug' or 'eigen'; got {smooth!r}.")

    def estimate(self, engine: Any, layer: str | None = None, **options: Any) -> str:
        """What one new map costs at ``layer`` with ``options``, as a sentence for the UI, before running.

        E.g. ``"64 forward passes (~2.1 s at 33 ms/image)"`` for Score-CAM, ``"gradient pass"`` for Grad-CAM.
        Aug smoothing multiplies the cost by its number of augmentations."""
        self.check_options(options)
        smooth = options.pop("smooth", None)
        if self.estimator is not None:
            text = self.estimator(engine, engine.layer(layer).name, **options)
        else:
            text = self.cost
        if smooth == "aug":
            from .smoothing import AUGMENTATIONS

            text = f"{len(AUGMENTATIONS)} x ({text}) for aug smoothing"
        return text


class Ingredients:
    """What a method may use for ``n`` (image, class) pairs at one layer, fetched lazily from the engine's
    caches: ``features`` ``(n, h, w, k)``, ``gradients`` of each pair's class logit w.r.t. those features
    ``(n, h, w, k)`` (one batched gradient pass for every pair not cached yet), ``logits`` ``(n, classes)``,
    ``head`` (the GAP head at the layer).  Perturbation methods call the engine's forward passes directly
    (``engine.scores``, ``engine.channel_ablation_logits``) with ``progress`` and ``cancel``."""

    def __init__(
        self,
        engine: Any,
        images: Sequence[np.ndarray],
        classes: Sequence[int],
        layer: str,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.images = list(images)
        self.classes = [int(c) for c in classes]
        self.layer = layer
        self.progress = progress
        self.cancel = cancel

    @cached_property
    def features(self) -> np.ndarray:
        return np.asarray(self.engine.features(self.images, self.layer), np.float32)

    @cached_property
    def gradients(self) -> np.ndarray:
        return np.asarray(self.engine.gradients(self.images, self.classes, self.layer), np.float32)

    @cached_property
    def logits(self) -> np.ndarray:
        return np.asarray(self.engine.logits(self.images), np.float32)

    @property
    def head(self) -> Any:
        return self.engine.head(self.layer)

    def report(self, done: int, total: int) -> None:
        """Report progress and honour the cancel event."""
        check_cancel(self.cancel)
        if self.progress is not None:
            self.progress(int(done), int(total))


def pca_projection(terms: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Project ``terms`` ``(n, h, w, k)`` on their first principal direction: ``(n, h, w)``.

    Per item the ``(h*w, k)`` matrix is centred over positions, its first right-singular vector ``v``
    taken, and the centred rows projected on ``v`` (computed from the smaller Gram matrix).  The SVD's sign is arbitrary; it is fixed so the
    projection correlates positively with ``reference`` ``(n, h, w)`` (for Eigen-CAM the channel mean of
    the activations, for eigen smoothing the unsmoothed map).  A constant item gives zeros."""
    n, h, w, k = terms.shape
    out = np.zeros((n, h, w), np.float32)
    for i in range(n):
        m = terms[i].reshape(h * w, k).astype(np.float64)
        m = m - m.mean(axis=0, keepdims=True)
        if not np.isfinite(m).all() or not np.any(m):
            continue
        # the top principal component from the smaller of the two Gram matrices (a 49x49 eigh at 7x7x1280,
        # not an SVD of the whole matrix): m v = u * sqrt(lambda) for the top eigenpair of m m^T
        if h * w <= k:
            vals, vecs = np.linalg.eigh(m @ m.T)
            proj = vecs[:, -1] * np.sqrt(max(float(vals[-1]), 0.0))
        else:
            proj = m @ np.linalg.eigh(m.T @ m)[1][:, -1]
        ref = reference[i].reshape(-1).astype(np.float64)
        if float(np.dot(proj - proj.mean(), ref - ref.mean())) < 0:
            proj = -proj
        out[i] = proj.reshape(h, w)
    return out


def is_uninformative(cam: np.ndarray) -> bool:
    """Whether a raw map carries no spatial information: constant (all zero included) or not finite.

    Such maps come from all-zero gradients (a dead ReLU layer), a class whose logit does not depend on
    the layer, or non-finite ingredients (which the runner replaces with zeros)."""
    m = np.asarray(cam)
    if m.size == 0 or not np.isfinite(m).all():
        return True
    return bool(np.ptp(m) == 0)


def _to_maps(out: np.ndarray, ing: Ingredients, smooth: str | None) -> np.ndarray:
    out = np.asarray(out)
    if out.ndim == 3:  # already maps; eigen smoothing of a single map is the map itself
        return out
    if out.ndim == 2:  # channel weights
        feats = ing.features
        if smooth == "eigen":
            terms = feats * out[:, None, None, :].astype(np.float32)
            return pca_projection(terms, terms.sum(axis=-1))
        n, h, w, k = feats.shape  # a batched matrix-vector product (BLAS), not an einsum loop
        return np.matmul(feats.reshape(n, h * w, k), out.astype(np.float32)[:, :, None]).reshape(n, h, w)
    if out.ndim == 4:  # per-channel terms
        if smooth == "eigen":
            return pca_projection(out, out.sum(axis=-1))
        return out.sum(axis=-1)
    raise MethodError(f"A method returned an array of shape {out.shape}; expected (n, k), (n, h, w, k) or (n, h, w).")


def _clean(maps: Any) -> np.ndarray:
    return np.nan_to_num(np.asarray(maps, np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def run_quietly(
    engine: Any,
    methods: Sequence[Method],
    images: Sequence[np.ndarray],
    classes: Sequence[int],
    layer: str,
    smooth: str | None = None,
) -> dict[str, list[np.ndarray | None]]:
    """Raw maps of several cheap methods (default options) from ONE set of ingredients, for the engine to cache
    ahead of a switch: ``{name: [map or None per (image, class) pair]}``.  No warnings: an uninformative map is
    ``None`` (left uncached), so the user's own request for it still computes it and warns."""
    ing = Ingredients(engine, images, classes, layer)
    out: dict[str, list[np.ndarray | None]] = {}
    for method in methods:
        with np.errstate(all="ignore"):
            maps = _clean(_to_maps(method.compute(ing), ing, smooth))
        out[method.name] = [None if is_uninformative(m) else m for m in maps]
    return out


def run(
    engine: Any,
    method: Method,
    images: Sequence[np.ndarray],
    classes: Sequence[int],
    layer: str,
    options: dict[str, Any],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Raw maps ``(n, h, w)`` float32 of ``method`` for each (image, class) pair (the engine calls this).

    Non-finite values are replaced with zeros; when any map is uninformative (see :func:`is_uninformative`)
    an :class:`UninformativeMapWarning` is issued naming the method, layer and class."""
    options = dict(options)
    method.check_options(options)
    smooth = options.pop("smooth", None)
    check_cancel(cancel)
    if smooth == "aug":
        from .smoothing import aug_smooth

        maps = aug_smooth(engine, method, images, classes, layer, options, progress, cancel)
    else:
        ing = Ingredients(engine, images, classes, layer, progress, cancel)
        with np.errstate(all="ignore"):
            maps = _to_maps(method.compute(ing, **options), ing, smooth)
    maps = _clean(maps)
    bad = [c for m, c in zip(maps, classes, strict=True) if is_uninformative(m)]
    if bad:
        if maps[0].size == 1:
            why = "the layer is 1x1, so a map there has no spatial extent"
        else:
            what = "gradients" if method.needs_gradients else "ingredients"
            why = f"the {what} there are zero or not finite (e.g. a dead ReLU)"
        warnings.warn(
            UninformativeMapWarning(
                f"{method.label} at layer {layer!r} gave a constant (uninformative) map for class(es) "
                f"{sorted(set(bad))}: {why}. Try another layer or method."
            ),
            stacklevel=3,
        )
    return maps
