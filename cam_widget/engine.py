"""CAMEngine: forward and gradient passes and byte-bounded caches of their results, for any Keras classifier.

The engine wraps a built ``keras.Model`` (Functional or Sequential, nested backbones included),
flattens it once (:mod:`cam_widget.keras_graph`) and computes the INGREDIENTS of class activation maps:

* ``logits`` / ``predict`` / ``top_k`` - pre-softmax scores and probabilities (cached);
* ``features`` / ``features_many`` - a layer's activations ``A`` (cached);
* ``gradients`` - ``d logit_c / d A`` for a set of (image, class) pairs in ONE batched pass (cached);
* ``scores`` - an uncached batched forward pass over modified inputs (faithfulness metrics, augmentations);
* ``masked_scores`` - scores of one input multiplied by upsampled, min-max normalised maps (Score-CAM), the
  masks built inside one compiled graph with the weights frozen in;
* ``channel_ablation_logits`` - logits with a layer's channels scaled (Ablation-CAM), on the cached
  features through the rest of the network where the graph splits at the layer.

``cam(image, class_index, layer, method=..., **options)`` dispatches to :mod:`cam_widget.methods`, where
every method is a small function of those ingredients; the engine knows no method's formula.  One forward
pass per (image, input size, layer) captures the logits and that layer's features; one gradient pass per
(image, layer) serves every gradient method for every class of that pass.  The cache is an LRU bounded in
bytes.  The engine knows nothing about widgets or rendering.

Its parts with one job each: the compiled ``tf.function`` passes (:mod:`cam_widget.passes`), class and layer
name resolution (:mod:`cam_widget.naming`), image decoding and content keys (:mod:`cam_widget.prepared`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .cache import ByteLRU
from .errors import CAMError, ClassIndexError, NoCAMHeadError, check_cancel
from .imaging import ImageSource, resize_to
from .keras_graph import Head, LayerInfo, find_head, trace_model
from .methods import Method, companions
from .methods import method as lookup_method
from .methods.base import Progress, run_quietly
from .methods.base import run as run_method
from .naming import ClassNames, LayerIndex
from .passes import CompiledPasses
from .prepared import ImageKeys, PreparedImage, as_rgb
from .tf_import import keras

__all__ = ["CAMEngine", "PreparedImage"]

Preprocess = Callable[[np.ndarray], Any]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class CAMEngine:
    """Class activation maps for a Keras image classifier.

    Args:
        model: a built ``keras.Model`` (Functional or Sequential; nested submodels are fine)
            with one image input ``(h, w, 3|1)`` (channels_last) and one output of class scores.
            A softmax, inside the last Dense layer or as its own layer, is undone: maps and
            gradients come from the pre-softmax logits.
        preprocess: maps an RGB uint8 ``(h, w, 3)`` image, already resized to the model input,
            to the model's input array (e.g. ``keras.applications.resnet50.preprocess_input``).
            ``None`` feeds the resized image as float32 (for models with their own rescaling).
        class_names: one readable name per class (default ``"class 0"``, ...).
        input_size: ``(h, w)`` or an int.  ``None`` uses the model's static input size (224x224 for
            a model that accepts any size).  A fully convolutional model runs at any size given:
            a larger input gives a finer map.
        cache_bytes: bound of the feature/logit cache in bytes (default 256 MiB).

    Images (``image`` arguments) are anything :func:`cam_widget.load_image` accepts.  The whole
    image is resized (not cropped) to the input size, so every map covers the whole image.
    """

    def __init__(
        self,
        model: keras.Model,
        preprocess: Preprocess | None = None,
        class_names: Sequence[str] | None = None,
        input_size: int | tuple[int, int] | None = None,
        cache_bytes: int = 256 * 2**20,
    ) -> None:
        if isinstance(input_size, (int, np.integer)):
            input_size = (int(input_size), int(input_size))
        self._model = model
        self._trace = trace_model(model, input_size)
        shape = tuple(self._trace.input.shape)
        self.input_size: tuple[int, int] = (int(shape[1]), int(shape[2]))
        self._channels = int(shape[3])
        self._preprocess = preprocess
        self.num_classes: int = int(self._trace.logits.shape[-1])
        self._names = ClassNames(self.num_classes, class_names)
        self.class_names: list[str] = self._names.names
        self._layers = self._trace.spatial()
        head = find_head(self._trace)
        self._cam_layer = head.layer if head is not None else None
        self._index = LayerIndex(self._layers, self._trace.by_name, model.name, self._cam_layer)
        self._layer_map = self._index.by_name
        self._heads: dict[str, Head] = {head.layer: head} if head is not None else {}
        self._cache = ByteLRU(cache_bytes)
        self._lock = threading.RLock()
        self._passes = CompiledPasses(
            model, self._trace, self.input_size, self._channels, lambda name: self._layer_map[name].shape
        )
        self._keys = ImageKeys()
        self._counts = {"hits": 0, "misses": 0, "forward_passes": 0, "gradient_passes": 0, "tail_passes": 0}
        self._seconds_per_image: float | None = None
        self._called: set[int] = set()  # compiled functions past their first (tracing) call
        self._frozen_forward = False

    # ------------------------------------------------------------------ model facts
    @property
    def frozen_forward(self) -> bool:
        """Whether forward passes run a frozen copy of the graph (default ``False``).

        Frozen, the weights are graph constants and the batch normalisations are folded into the
        convolutions: batched forward passes take about 0.6x the time on the embedded model, with the same
        logits and features to float rounding (~1e-5).  The price is a few seconds per layer set to build it
        and a second copy of the weights in memory, worth it for long batch jobs (``cam_widget.batch`` turns
        it on), not for one photo at a time.  After assigning weights in place call :meth:`reload_head`.
        Gradient passes are never frozen; while frozen, their logits and features are not cached (the frozen
        pass's are), and switching empties the cache."""
        return self._frozen_forward

    @frozen_forward.setter
    def frozen_forward(self, on: bool) -> None:
        if not isinstance(on, (bool, np.bool_)):
            raise CAMError(f"frozen_forward must be True or False, not {on!r}.")
        if bool(on) != self._frozen_forward:
            # the two passes agree to ~1e-5, not bit for bit: keep every cached result from one kind of pass,
            # so that a result never depends on which pass happened to fill the cache first
            self.clear_cache()
        self._frozen_forward = bool(on)

    @property
    def model(self) -> keras.Model:
        """The wrapped ``keras.Model`` (unchanged)."""
        return self._model

    @property
    def cam_layer(self) -> str | None:
        """Name of the layer feeding the model's GAP -> Dense head (exact CAM), or ``None``."""
        return self._cam_layer

    @property
    def probability(self) -> str:
        """How probabilities are made from logits: ``"softmax"``/``"sigmoid"`` (the model's own
        activation) or ``"softmax-added"`` (the model outputs raw logits)."""
        return self._trace.probability

    def layers(self) -> list[LayerInfo]:
        """Every layer with a spatial ``(h, w, c)`` output, input to output, nested layers included."""
        return list(self._layers)

    def layer(self, name: str | None = None) -> LayerInfo:
        """The :class:`LayerInfo` for ``name`` (default: the CAM layer, else the last spatial layer)."""
        return self._layer_map[self._resolve_layer(name, False)]

    def heads(self) -> dict[str, Head]:
        """Layers with an exact-CAM head (the model's own, plus any refitted ones)."""
        return dict(self._heads)

    def head(self, layer: str | None = None) -> Head:
        """The GAP head at ``layer`` (default: the CAM layer); :class:`NoCAMHeadError` when there is none."""
        name = self._resolve_layer(layer, True)
        head = self._heads.get(name)
        if head is None:
            raise NoCAMHeadError(self._no_head_message(name))
        return head

    def has_cam(self, layer: str) -> bool:
        """Whether exact CAM (``method="cam"``) is available at ``layer``."""
        return layer in self._heads

    def register_head(self, layer: str, weights: np.ndarray, bias: np.ndarray, kind: str = "refit") -> Head:
        """Attach a linear GAP head ``(weights (k, classes), bias (classes,))`` to ``layer``,
        making exact CAM available there.  The model's own head cannot be replaced."""
        name = self._resolve_layer(layer, False)
        if self._cam_layer == name:
            raise CAMError(f"Layer {name!r} already carries the model's own head; it cannot be replaced.")
        k = self._layer_map[name].shape[2]
        w = np.asarray(weights, np.float32)
        b = np.asarray(bias, np.float32)
        if w.shape != (k, self.num_classes) or b.shape != (self.num_classes,):
            raise CAMError(
                f"A head for {name!r} needs weights of shape {(k, self.num_classes)} and bias of shape "
                f"{(self.num_classes,)}; got {w.shape} and {b.shape}."
            )
        head = Head(name, w, b, kind)
        self._heads[name] = head
        return head

    def remove_head(self, layer: str) -> None:
        """Remove a refitted head (the model's own head stays)."""
        if layer == self._cam_layer:
            raise CAMError(f"Layer {layer!r} carries the model's own head; it cannot be removed.")
        self._heads.pop(layer, None)

    def refit_head(self, layer: str, images: Any, **options: Any) -> Any:
        """Distil a GAP -> linear head on ``layer`` from the model itself (seconds, no labels), making
        exact CAM available there.  Returns a :class:`cam_widget.refit.FitReport` with held-out
        ``top1_agreement`` and ``top5_overlap``.  See :func:`cam_widget.refit.refit_head` for options."""
        from .refit import refit_head

        return refit_head(self, layer, images, **options)

    def save_heads(self, path: Any) -> None:
        """Save refitted heads to an ``.npz`` file (no pickle)."""
        from .refit import save_heads

        save_heads(self, path)

    def load_heads(self, path: Any) -> list[str]:
        """Load heads saved with :meth:`save_heads`; returns the layer names."""
        from .refit import load_heads

        return load_heads(self, path)

    def with_model(self, model: keras.Model) -> CAMEngine:
        """A new engine on ``model`` (e.g. a clone with other weights) with this engine's preprocess,
        class names, input size, cache bound and refitted heads; this engine is left as it is."""
        other = CAMEngine(
            model, self._preprocess, self.class_names, self.input_size, cache_bytes=self._cache.info()["max_bytes"]
        )
        for name, head in self._heads.items():
            if name != self._cam_layer and name in other._layer_map:
                other.register_head(name, head.weights, head.bias, head.kind)
        return other

    def reload_head(self) -> None:
        """Re-read the model's own GAP head after its weights were assigned in place (the head's weights
        are copied at construction), and drop every cached result, which belonged to the old weights, and the
        compiled passes that hold a copy of the weights (the frozen masked-input pass of :meth:`masked_scores`,
        the frozen forward passes of :attr:`frozen_forward`)."""
        head = find_head(self._trace)
        if head is not None:
            self._heads[head.layer] = head
        self._passes.forget_weights()
        self.clear_cache()

    # ------------------------------------------------------------------ images
    def prepare(self, image: ImageSource) -> tuple[str, np.ndarray]:
        """``(key, rgb)``: the image as RGB uint8 and its content hash (the cache key).

        The hash of a read-only array that owns its pixels (``arr.setflags(write=False)``; not a
        view, whose base could still change) is remembered, so repeated calls with the same frozen
        photo skip hashing its pixels.  A :class:`PreparedImage` is returned as it is."""
        return self._keys.prepare(image)

    def prepared(self, image: ImageSource) -> PreparedImage:
        """``image`` decoded and hashed once, to pass to several engine calls without re-hashing its pixels."""
        return image if isinstance(image, PreparedImage) else PreparedImage(*self.prepare(image))

    def model_input(self, image: ImageSource) -> np.ndarray:
        """The float32 array ``(h, w, c)`` the network sees for ``image`` (resized + preprocessed)."""
        _, rgb = self.prepare(image)
        return self._model_input(rgb)

    def _model_input(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        small = resize_to(rgb, self.input_size)
        if self._channels == 1:
            small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)[..., None]
        if self._preprocess is None:
            x = small.astype(np.float32)
        else:
            try:
                x = self._preprocess(small.copy())
            except Exception as exc:
                raise CAMError(f"The preprocess function failed on a {small.shape} uint8 image: {exc!r}") from exc
            x = np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float32)
            if x.ndim == 4 and x.shape[0] == 1:
                x = x[0]
        want = (*self.input_size, self._channels)
        if x.shape != want:
            raise CAMError(f"preprocess returned shape {x.shape}; the model needs {want} per image.")
        return x

    # ------------------------------------------------------------------ forward passes
    def _forward_fn(self, layers: tuple[str, ...]) -> Callable[[np.ndarray], list[np.ndarray]]:
        return self._passes.forward(layers, frozen=self._frozen_forward)

    def _run(
        self, images: list[ImageSource], layers: tuple[str, ...] = ()
    ) -> tuple[list[str], np.ndarray, dict[str, list[np.ndarray]]]:
        """Logits and the features of ``layers`` for each image: from the cache, or from ONE
        batched forward pass over the images that miss anything."""
        prepared = [self.prepare(im) for im in images]
        keys = [k for k, _ in prepared]
        sz = self.input_size
        with self._lock:
            logits: list[Any] = [self._cache.get(("logits", k, sz)) for k in keys]
            feats: dict[str, list[Any]] = {
                name: [self._cache.get(("features", k, sz, name)) for k in keys] for name in layers
            }
            todo = [i for i in range(len(keys)) if logits[i] is None or any(feats[n][i] is None for n in layers)]
            self._counts["hits"] += len(keys) - len(todo)
            self._counts["misses"] += len(todo)
            if todo:
                first: dict[str, int] = {}  # each distinct image once, even if repeated in the batch
                for i in todo:
                    first.setdefault(keys[i], i)
                outs = self._forward([prepared[i][1] for i in first.values()], layers)
                fresh: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
                for j, key in enumerate(first):
                    lg = outs[0][j].copy()  # own arrays: the cache must not pin the whole batch
                    fs = [outs[1 + n][j].copy() for n in range(len(layers))]
                    self._cache.put(("logits", key, sz), lg)
                    for name, f in zip(layers, fs, strict=False):
                        self._cache.put(("features", key, sz, name), f)
                    fresh[key] = (lg, fs)
                for i in todo:
                    lg, fs = fresh[keys[i]]
                    logits[i] = lg
                    for name, f in zip(layers, fs, strict=False):
                        feats[name][i] = f
        return keys, np.stack(logits), feats

    def _forward(self, rgbs: list[np.ndarray], layers: tuple[str, ...], batch_size: int = 0) -> list[np.ndarray]:
        """``[logits, *features of layers]`` (float32) for RGB images: one forward pass per
        ``batch_size`` images (0: all in one pass).  No cache is read or written here."""
        fn = self._forward_fn(layers)
        step = batch_size if batch_size > 0 else len(rgbs)
        chunks = []
        for i in range(0, len(rgbs), step):
            chunks.append(self._timed(fn, np.stack([self._model_input(rgb) for rgb in rgbs[i : i + step]])))
            with self._lock:
                self._counts["forward_passes"] += 1
        return [np.concatenate([c[j] for c in chunks]).astype(np.float32, copy=False) for j in range(len(chunks[0]))]

    def _timed(self, fn: Callable[..., Any], x: np.ndarray, *args: Any) -> Any:
        """``fn(x, *args)``, timing full forward passes per image (the first, tracing, call of a function
        is not timed) for :meth:`seconds_per_image`."""
        t0 = time.perf_counter()
        out = self._call_model(fn, x, *args)
        if id(fn) in self._called:
            spi = (time.perf_counter() - t0) / max(1, len(x))
            old = self._seconds_per_image
            self._seconds_per_image = spi if old is None else 0.7 * old + 0.3 * spi
        else:
            self._called.add(id(fn))
        return out

    def seconds_per_image(self) -> float | None:
        """Measured seconds of one full forward pass per image in recent batched passes (``None`` before
        any); the cost estimates of perturbation methods use it."""
        return self._seconds_per_image

    def _call_model(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except CAMError:
            raise
        except Exception as exc:
            raise CAMError(f"The model failed while computing: {type(exc).__name__}: {exc}") from exc

    def logits(self, image: ImageSource | list[ImageSource]) -> np.ndarray:
        """Pre-softmax class scores: ``(num_classes,)`` for one image, ``(n, num_classes)`` for a list."""
        images, single = _as_batch(image)
        _, lg, _ = self._run(images)
        return lg[0] if single else lg

    def predict(self, image: ImageSource | list[ImageSource]) -> np.ndarray:
        """Class probabilities (the model's own softmax/sigmoid, or a softmax over raw logits)."""
        return self._probabilities(self.logits(image))

    def _probabilities(self, lg: np.ndarray) -> np.ndarray:
        if self.probability == "sigmoid":
            return (1.0 / (1.0 + np.exp(-lg))).astype(np.float32)
        return _softmax(lg).astype(np.float32)

    def top_k(self, image: ImageSource, k: int = 5) -> list[tuple[int, str, float]]:
        """The ``k`` most probable classes as ``(index, name, probability)``, best first."""
        p = self.predict(image)
        order = np.argsort(-p, kind="stable")[: max(0, int(k))]
        return [(int(i), self.class_names[i], float(p[i])) for i in order]

    def features(self, image: ImageSource | list[ImageSource], layer: str | None = None) -> np.ndarray:
        """The feature map ``(h, w, k)`` of ``layer`` (default: the CAM layer), or ``(n, h, w, k)``."""
        images, single = _as_batch(image)
        name = self._resolve_layer(layer, False)
        feats = self._run(images, (name,))[2][name]
        if single:
            return feats[0]
        return feats[0][None] if len(feats) == 1 else np.stack(feats)  # one image: a view, no copy

    def features_many(
        self, images: list[ImageSource], layers: Sequence[str], *, cache: bool = True, batch_size: int = 64
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Logits ``(n, classes)`` and the features of several layers ``{name: (n, h, w, k)}``.

        With ``cache=True`` (default) this is at most one forward pass over the images that miss the
        cache, and the results are cached.  ``cache=False`` is for throw-away images (augmented
        crops): batches of ``batch_size``, nothing read from or written to the cache."""
        names = tuple(dict.fromkeys(self._resolve_layer(n, False) for n in layers))
        if cache:
            _, lg, feats = self._run(list(images), names)
            return lg, {n: np.stack(feats[n]) for n in names}
        images = list(images)
        if not images:
            raise CAMError("features_many needs at least one image.")
        outs = self._forward([as_rgb(im) for im in images], names, max(1, batch_size))
        return outs[0], dict(zip(names, outs[1:], strict=True))

    # ------------------------------------------------------------------ ingredients
    def gradients(
        self,
        image: ImageSource | list[ImageSource],
        class_index: int | str | Sequence[int | str],
        layer: str | None = None,
    ) -> np.ndarray:
        """``d logit_c / d A`` at ``layer`` (default: the CAM layer, else the last spatial layer), float32.

        One image and one class: ``(h, w, k)``.  One image and a list of classes: ``(len(classes), h, w, k)``.
        A list of images: one class for all or one per image, ``(n, h, w, k)``.  Every (image, class) pair
        not cached yet is computed in ONE batched gradient pass (which also caches the image's logits and
        features at ``layer``); cached pairs cost nothing."""
        name = self._resolve_layer(layer, False)
        if not isinstance(image, (list, tuple)) and isinstance(class_index, (list, tuple, np.ndarray)):
            images = [image] * len(class_index)
            if not images:
                raise ClassIndexError("An empty list of classes was given; pass at least one class.")
            grads = self._gradients([self.prepare(image)] * len(images), self._classes(class_index, len(images)), name)
            return grads
        images, single = _as_batch(image)
        grads = self._gradients([self.prepare(im) for im in images], self._classes(class_index, len(images)), name)
        return grads[0] if single else grads

    def _gradients(self, prepared: list[tuple[str, np.ndarray]], classes: list[int], layer: str) -> np.ndarray:
        sz = self.input_size
        with self._lock:
            out: list[np.ndarray | None] = [
                self._cache.get(("gradients", key, sz, layer, c)) for (key, _), c in zip(prepared, classes, strict=True)
            ]
            todo = [i for i, g in enumerate(out) if g is None]
            self._counts["hits"] += len(out) - len(todo)
            self._counts["misses"] += len(todo)
            if todo:
                first: dict[tuple[str, int], int] = {}  # each distinct (image, class) once per pass
                for i in todo:
                    first.setdefault((prepared[i][0], classes[i]), i)
                rows = list(first.values())
                inputs: dict[str, np.ndarray] = {}  # one resize + preprocess per distinct image
                for i in rows:
                    if prepared[i][0] not in inputs:
                        inputs[prepared[i][0]] = self._model_input(prepared[i][1])
                x = np.stack([inputs[prepared[i][0]] for i in rows])
                cls = np.asarray([classes[i] for i in rows], np.int32)
                logits, feats, grads = self._call_model(self._gradient_fn(layer), x, cls)
                self._counts["gradient_passes"] += 1
                fresh: dict[tuple[str, int], np.ndarray] = {}
                for j, (pair, _) in enumerate(first.items()):
                    key = pair[0]
                    g = np.array(grads[j], np.float32)  # own arrays: the cache must not pin the whole batch
                    self._cache.put(("gradients", key, sz, layer, pair[1]), g)
                    if not self._frozen_forward:  # frozen: cached logits and features come from the frozen pass only
                        self._cache.put(("logits", key, sz), np.array(logits[j], np.float32))
                        self._cache.put(("features", key, sz, layer), np.array(feats[j], np.float32))
                    fresh[pair] = g
                for i in todo:
                    out[i] = fresh[(prepared[i][0], classes[i])]
        return out[0][None] if len(out) == 1 else np.stack(out)  # one pair: a view of the cached array

    def scores(
        self,
        batch: np.ndarray | Sequence[ImageSource],
        class_index: int | str | Sequence[int | str] | None = None,
        *,
        output: str = "logits",
        batch_size: int = 64,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> np.ndarray:
        """An UNCACHED batched forward pass, for modified inputs (masked, perturbed, augmented).

        ``batch``: a float array ``(n, h, w, c)`` of model inputs (as :meth:`model_input` makes them, e.g.
        masked), or a list of images (each resized and preprocessed).  ``output``: ``"logits"`` or
        ``"probability"``.  Returns ``(n, num_classes)``, or ``(n,)`` with ``class_index`` (one class for all
        rows, or one per row).  Runs in batches of ``batch_size``; ``progress(done, total)`` after each,
        :class:`cam_widget.errors.CancelledError` before the next when ``cancel`` is set."""
        if output not in ("logits", "probability"):
            raise CAMError(f"output must be 'logits' or 'probability'; got {output!r}.")
        inputs = isinstance(batch, np.ndarray) and batch.ndim == 4 and batch.dtype.kind == "f"
        if inputs:
            want = (*self.input_size, self._channels)
            if tuple(batch.shape[1:]) != want:
                raise CAMError(f"Model inputs must have shape (n, {', '.join(map(str, want))}); got {batch.shape}.")
        else:
            batch = list(batch)
        n = len(batch)
        if n == 0:
            raise CAMError("scores() needs at least one input.")
        fn = self._forward_fn(())
        step = max(1, int(batch_size))
        chunks = []
        for start in range(0, n, step):
            check_cancel(cancel)
            part = batch[start : start + step]
            x = part.astype(np.float32, copy=False) if inputs else np.stack([self.model_input(im) for im in part])
            chunks.append(self._timed(fn, x)[0])
            with self._lock:
                self._counts["forward_passes"] += 1
            if progress is not None:
                progress(min(n, start + step), n)
        logits = np.concatenate(chunks).astype(np.float32, copy=False)
        values = self._probabilities(logits) if output == "probability" else logits
        if class_index is None:
            return values
        return values[np.arange(n), self._classes(class_index, n)]

    def masked_scores(
        self,
        image: ImageSource,
        maps: np.ndarray,
        *,
        align_corners: bool = False,
        output: str = "probability",
        batch_size: int = 32,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> np.ndarray:
        """Scores ``(m, num_classes)`` of the model input of ``image`` multiplied by each of ``maps``
        ``(m, mh, mw)`` (e.g. a layer's channel maps), each map upsampled bilinearly to the input size
        (pixel-centre aligned; corner-aligned with ``align_corners=True``) and min-max normalised to [0, 1]
        (a constant map gives a zero mask): Score-CAM's masked inputs.  ``output``: ``"probability"`` (the
        model's softmax/sigmoid) or ``"logits"``.  Uncached; ``batch_size`` masked inputs per forward pass,
        built inside one compiled TensorFlow graph with the model's weights folded in (:mod:`cam_widget.passes`);
        ``progress(done, m)`` after each batch, :class:`cam_widget.errors.CancelledError` before the next
        when ``cancel`` is set.  Needs the TensorFlow backend."""
        if output not in ("logits", "probability"):
            raise CAMError(f"output must be 'logits' or 'probability'; got {output!r}.")
        maps = np.asarray(maps, np.float32)
        if maps.ndim != 3 or len(maps) == 0 or min(maps.shape[1:]) < 1:
            raise CAMError(f"maps must have shape (m, h, w) with m >= 1; got {maps.shape}.")
        x = self.model_input(image)
        fn = self._passes.masked(bool(align_corners))[0]
        step = max(1, int(batch_size))
        chunks = []
        for start in range(0, len(maps), step):
            check_cancel(cancel)
            chunks.append(self._timed(fn, maps[start : start + step], x))
            with self._lock:
                self._counts["forward_passes"] += 1
            if progress is not None:
                progress(min(len(maps), start + step), len(maps))
        logits = np.concatenate(chunks).astype(np.float32, copy=False)
        return self._probabilities(logits) if output == "probability" else logits

    def can_split(self, layer: str | None = None) -> bool:
        """Whether the network splits at ``layer``: every path to the logits passes through it, so the rest
        of the network can run on (modified) cached features alone.  False when a skip connection jumps
        over the layer (e.g. inside a residual block)."""
        name = self._resolve_layer(layer, False)
        return self._tail_fn(name) is not None

    def channel_ablation_logits(
        self,
        image: ImageSource,
        layer: str | None,
        scales: np.ndarray,
        *,
        batch_size: int = 64,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> np.ndarray:
        """Logits ``(m, num_classes)`` with ``layer``'s features multiplied channel-wise by each row of
        ``scales`` ``(m, k)`` (a 0 ablates a channel).  Where :meth:`can_split`, the cached features run
        through the rest of the network only (counted in ``cache_info()["tail_passes"]``); elsewhere each row
        is a full forward pass with the scaling applied at the layer.  Uncached; batched."""
        name = self._resolve_layer(layer, False)
        k = self._layer_map[name].shape[2]
        scales = np.asarray(scales, np.float32)
        if scales.ndim != 2 or scales.shape[1] != k or len(scales) == 0:
            raise CAMError(f"scales must have shape (m, {k}) for layer {name!r}; got {scales.shape}.")
        tail = self._tail_fn(name)
        if tail is not None:
            feats = self.features(image, name)
        else:
            x = self.model_input(image)
            scaled = self._scaled_fn(name)
        step = max(1, int(batch_size))
        chunks = []
        for start in range(0, len(scales), step):
            check_cancel(cancel)
            s = scales[start : start + step]
            if tail is not None:
                chunks.append(self._call_model(tail, feats[None] * s[:, None, None, :]))
                counter = "tail_passes"
            else:
                chunks.append(self._timed(scaled, np.repeat(x[None], len(s), axis=0), s))
                counter = "forward_passes"
            with self._lock:
                self._counts[counter] += 1
            if progress is not None:
                progress(min(len(scales), start + step), len(scales))
        return np.concatenate(chunks).astype(np.float32, copy=False)

    # ------------------------------------------------------------------ maps
    def cam(
        self,
        image: ImageSource | list[ImageSource],
        class_index: int | str | Sequence[int | str],
        layer: str | None = None,
        method: str = "cam",
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> np.ndarray:
        """The raw class activation map for ``class_index`` at ``layer``'s resolution (float32, no final ReLU,
        no normalisation).

        ``method``: any name of :func:`cam_widget.methods` (``"cam"``, ``"gradcam"``, ``"gradcam++"``,
        ``"xgradcam"``, ``"hirescam"``, ``"layercam"``, ``"eigencam"``, ``"scorecam"``, ``"ablationcam"``);
        ``options`` are the method's own (e.g. ``max_channels=`` for Score-CAM, ``variant=`` for Grad-CAM++)
        plus ``smooth=None|"aug"|"eigen"`` for every method.  ``method="cam"`` is exactly
        ``sum_k w_k^c f_k(x, y)`` with the head's weights, so ``mean(cam) + bias[c] == logit[c]``; it needs a
        GAP -> Dense head at ``layer`` (default: :attr:`cam_layer`).  The others work at any spatial layer
        (default: the CAM layer, else the last spatial layer).

        ``class_index``: an int or a class name (exact, else a unique case-insensitive prefix).  A list of
        images gives ``(n, h, w)`` from one forward (or gradient) pass; ``class_index`` may then be one for
        all or one per image.  Long methods call ``progress(done, total)`` and stop with
        :class:`cam_widget.errors.CancelledError` when ``cancel`` (a ``threading.Event``) is set.
        Maps of every method but the head's (``cam``) are cached per (image, layer, class, options).
        """
        m = lookup_method(method)
        m.check_options(options)
        images, single = _as_batch(image)
        classes = self._classes(class_index, len(images))
        name = self._resolve_layer(layer, m.needs_head)
        if m.needs_head:
            self.head(name)
        once: dict[int, PreparedImage] = {}  # the panel passes one photo k times for its top-k: hash it once
        rgbs = [once[id(im)] if id(im) in once else once.setdefault(id(im), self.prepared(im)) for im in images]
        prepared = [(p.key, p.rgb) for p in rgbs]
        # Head maps are one matrix-vector product (as cheap as a lookup) and depend on a head that can be
        # refitted, so they are never cached; every other map is cached per (image, layer, class, options):
        # a gradient method's first map costs numpy on the cached gradients, flipping back costs a lookup.
        if m.needs_head and not (m.expensive or options.get("smooth") == "aug"):
            maps = run_method(self, m, rgbs, classes, name, options, progress, cancel)
        else:
            keys = self._map_keys(m, options, [key for key, _ in prepared], classes, name)
            out: list[Any] = [self._cache.get(k) for k in keys]
            todo = [i for i, o in enumerate(out) if o is None]
            if todo:
                fresh = run_method(
                    self, m, [rgbs[i] for i in todo], [classes[i] for i in todo], name, options, progress, cancel
                )
                for j, i in enumerate(todo):
                    out[i] = np.array(fresh[j], np.float32)
                    self._cache.put(keys[i], out[i])
                self._cache_companions(m, options, [rgbs[i] for i in todo], [classes[i] for i in todo], name)
            maps = np.stack(out)
        return maps[0] if single else maps

    def _map_keys(self, m: Method, options: dict[str, Any], keys: list[str], classes: list[int], layer: str) -> list:
        """Cache keys of ``m``'s maps (its options completed with their defaults, so omitting an option and
        passing its default share one entry)."""
        opts = tuple(sorted((k, repr(v)) for k, v in {"smooth": None, **dict(m.defaults), **options}.items()))
        return [("map", m.name, opts, key, self.input_size, layer, c) for key, c in zip(keys, classes, strict=True)]

    def _cache_companions(
        self, m: Method, options: dict[str, Any], rgbs: list[PreparedImage], classes: list[int], layer: str
    ) -> None:
        """Cache the maps of the registry's cheap companions of ``m`` (:func:`cam_widget.methods.companions`)
        for the pairs just computed: numpy on the ingredients now cached, so a first switch to one is a lookup.
        The companions take their default options and ``m``'s smoothing (none after aug smoothing: 6x cost).
        Only for a request on one image (the panel's: one photo, its top-k classes): a batch over many images
        computes what it asks for and nothing else."""
        smooth = options.get("smooth")
        keys = [p.key for p in rgbs]
        if smooth == "aug" or len(set(keys)) > 1:
            return
        extra = {"smooth": smooth} if smooth else {}
        todo = []
        for c in companions(m):
            ckeys = self._map_keys(c, extra, keys, classes, layer)
            if not all(self._cache.peek(k) for k in ckeys):
                todo.append((c, ckeys))
        if not todo:
            return
        maps = run_quietly(self, [c for c, _ in todo], rgbs, classes, layer, smooth)
        for c, ckeys in todo:
            for k, cam in zip(ckeys, maps[c.name], strict=True):
                if cam is not None:
                    self._cache.put(k, cam)

    def _no_head_message(self, layer: str) -> str:
        return self._index.no_head_message(layer)

    def _gradient_fn(self, layer: str) -> Callable[[np.ndarray, np.ndarray], tuple]:
        return self._passes.gradient(layer)

    def _tail_fn(self, layer: str) -> Callable[[np.ndarray], np.ndarray] | None:
        return self._passes.tail(layer)

    def _scaled_fn(self, layer: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return self._passes.scaled(layer)

    # ------------------------------------------------------------------ validation
    def _resolve_layer(self, layer: str | None, needs_head: bool) -> str:
        return self._index.resolve(layer, needs_head)

    def class_index(self, name: int | str) -> int:
        """The index of a class given by index or by name: the exact name, else a unique case-insensitive
        prefix (``"tabby"`` -> ``"tabby cat"``).  :class:`ClassIndexError` with the closest names otherwise."""
        return self._names.index(name)

    def _classes(self, class_index: int | str | Sequence[int | str], n: int) -> list[int]:
        return self._names.many(class_index, n)

    # ------------------------------------------------------------------ cache
    def cache_info(self) -> dict[str, int]:
        """Cache counters: ``hits``/``misses`` (feature/logit/gradient lookups served from cache / needing the
        network), ``forward_passes`` (full, batched), ``gradient_passes``, ``tail_passes`` (the network run from
        a layer on cached features), ``bytes``, ``entries``, ``max_bytes``, ``evictions``."""
        info = self._cache.info()
        return {**self._counts, **{k: info[k] for k in ("bytes", "entries", "max_bytes", "evictions")}}

    def clear_cache(self) -> None:
        """Drop every cached logit, feature map and Grad-CAM map (counters are kept)."""
        self._cache.clear()

    def __repr__(self) -> str:
        return (
            f"CAMEngine(model={self._model.name!r}, input_size={self.input_size}, classes={self.num_classes}, "
            f"cam_layer={self._cam_layer!r}, spatial_layers={len(self._layers)})"
        )


def _as_batch(image: Any) -> tuple[list[Any], bool]:
    if isinstance(image, (list, tuple)):
        if not image:
            raise CAMError("An empty list of images was given; pass at least one image.")
        return list(image), False
    return [image], True
