"""CAMEngine: forward passes, feature caches, exact CAM and Grad-CAM for any Keras classifier.

The engine wraps a built ``keras.Model`` (Functional or Sequential, nested backbones included),
flattens it once (:mod:`cam_widget.keras_graph`) and answers questions about images:

* ``logits`` / ``predict`` - pre-softmax scores and probabilities;
* ``cam`` - the raw class activation map ``sum_k w_k^c f_k(x, y)`` at a layer with a
  GAP -> Dense head (the model's own or a refitted one), or Grad-CAM at any spatial layer.

One forward pass per (image, input size, layer) captures the logits and that layer's features;
every later call, for any class, is a matrix-vector product on the cached features.  The cache
is an LRU bounded in bytes.  The engine knows nothing about widgets or rendering.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .cache import ByteLRU
from .errors import CAMError, ClassIndexError, LayerError, NoCAMHeadError
from .imaging import ImageSource, load_image, resize_to
from .keras_graph import Head, LayerInfo, feature_model, find_head, trace_model
from .tf_import import keras

__all__ = ["CAMEngine"]

METHODS = ("cam", "gradcam")

Preprocess = Callable[[np.ndarray], Any]


class _OwnTracingFilter(logging.Filter):
    """Drop TensorFlow's "frequent retracing" warning about the engine's own functions.

    Each feature model gets its own ``tf.function`` with a fixed input signature, so each traces
    exactly once; TensorFlow's detector counts traces per *source line*, so exploring a few
    layers would otherwise print a misleading warning about "expensive retracing".
    """

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("triggered tf.function retracing" in msg and "CAMEngine." in msg)


logging.getLogger("tensorflow").addFilter(_OwnTracingFilter())


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
        if class_names is None:
            names = [f"class {i}" for i in range(self.num_classes)]
        else:
            names = [str(n) for n in class_names]
            if len(names) != self.num_classes:
                raise CAMError(
                    f"class_names has {len(names)} entries but the model has {self.num_classes} classes; "
                    "pass one name per output unit, in output order."
                )
        self.class_names: list[str] = names
        self._layers = self._trace.spatial()
        self._layer_map = {info.name: info for info in self._layers}
        head = find_head(self._trace)
        self._cam_layer = head.layer if head is not None else None
        self._heads: dict[str, Head] = {head.layer: head} if head is not None else {}
        self._cache = ByteLRU(cache_bytes)
        self._lock = threading.RLock()
        self._forward_fns: dict[tuple[str, ...], Callable[[np.ndarray], list[np.ndarray]]] = {}
        self._gradcam_fns: dict[str, Callable[[np.ndarray, np.ndarray], tuple]] = {}
        self._feature_models: dict[tuple[str, ...], keras.Model] = {}
        self._keys: dict[int, tuple[weakref.ref, str]] = {}
        self._counts = {"hits": 0, "misses": 0, "forward_passes": 0, "gradient_passes": 0}

    # ------------------------------------------------------------------ model facts
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
        return self._layer_map[self._resolve_layer(name, "gradcam")]

    def heads(self) -> dict[str, Head]:
        """Layers with an exact-CAM head (the model's own, plus any refitted ones)."""
        return dict(self._heads)

    def has_cam(self, layer: str) -> bool:
        """Whether exact CAM (``method="cam"``) is available at ``layer``."""
        return layer in self._heads

    def register_head(self, layer: str, weights: np.ndarray, bias: np.ndarray, kind: str = "refit") -> Head:
        """Attach a linear GAP head ``(weights (k, classes), bias (classes,))`` to ``layer``,
        making exact CAM available there.  The model's own head cannot be replaced."""
        name = self._resolve_layer(layer, "gradcam")
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
        are copied at construction), and drop every cached result, which belonged to the old weights."""
        head = find_head(self._trace)
        if head is not None:
            self._heads[head.layer] = head
        self.clear_cache()

    # ------------------------------------------------------------------ images
    def prepare(self, image: ImageSource) -> tuple[str, np.ndarray]:
        """``(key, rgb)``: the image as RGB uint8 and its content hash (the cache key).

        The hash of a read-only array that owns its pixels (``arr.setflags(write=False)``; not a
        view, whose base could still change) is remembered, so repeated calls with the same frozen
        photo skip hashing its pixels."""
        frozen = _is_rgb(image) and not image.flags.writeable and image.base is None
        if frozen:
            memo = self._keys.get(id(image))
            if memo is not None and memo[0]() is image:
                return memo[1], image
        rgb = _as_rgb(image)
        digest = hashlib.blake2b(memoryview(np.ascontiguousarray(rgb)).cast("B"), digest_size=16)
        digest.update(str(rgb.shape).encode())
        key = digest.hexdigest()
        if frozen:
            if len(self._keys) > 256:
                self._keys = {k: v for k, v in self._keys.items() if v[0]() is not None}
            self._keys[id(image)] = (weakref.ref(image), key)
        return key, rgb

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
        fn = self._forward_fns.get(layers)
        if fn is None:
            model = self._feature_model(layers)
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                spec = tf.TensorSpec((None, *self.input_size, self._channels), tf.float32)
                compiled = tf.function(lambda x: model(x, training=False), input_signature=[spec])

                def fn(x: np.ndarray) -> list[np.ndarray]:
                    return [np.asarray(o) for o in keras.tree.flatten(compiled(x))]
            else:

                def fn(x: np.ndarray) -> list[np.ndarray]:
                    return [np.asarray(o) for o in keras.tree.flatten(model.predict_on_batch(x))]

            self._forward_fns[layers] = fn
        return fn

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
            chunks.append(self._call_model(fn, np.stack([self._model_input(rgb) for rgb in rgbs[i : i + step]])))
            with self._lock:
                self._counts["forward_passes"] += 1
        return [np.concatenate([c[j] for c in chunks]).astype(np.float32, copy=False) for j in range(len(chunks[0]))]

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
        lg = self.logits(image)
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
        name = self._resolve_layer(layer, "gradcam")
        feats = self._run(images, (name,))[2][name]
        return feats[0] if single else np.stack(feats)

    def features_many(
        self, images: list[ImageSource], layers: Sequence[str], *, cache: bool = True, batch_size: int = 64
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Logits ``(n, classes)`` and the features of several layers ``{name: (n, h, w, k)}``.

        With ``cache=True`` (default) this is at most one forward pass over the images that miss the
        cache, and the results are cached.  ``cache=False`` is for throw-away images (augmented
        crops): batches of ``batch_size``, nothing read from or written to the cache."""
        names = tuple(dict.fromkeys(self._resolve_layer(n, "gradcam") for n in layers))
        if cache:
            _, lg, feats = self._run(list(images), names)
            return lg, {n: np.stack(feats[n]) for n in names}
        images = list(images)
        if not images:
            raise CAMError("features_many needs at least one image.")
        outs = self._forward([_as_rgb(im) for im in images], names, max(1, batch_size))
        return outs[0], dict(zip(names, outs[1:], strict=True))

    # ------------------------------------------------------------------ maps
    def cam(
        self,
        image: ImageSource | list[ImageSource],
        class_index: int | Sequence[int],
        layer: str | None = None,
        method: str = "cam",
    ) -> np.ndarray:
        """The raw class activation map for ``class_index`` at ``layer``'s resolution (float32).

        ``method="cam"``: exactly ``sum_k w_k^c f_k(x, y)`` with the head's weights (no bias, no
        ReLU, no normalisation), so ``mean(cam) + bias[c] == logit[c]``.  Needs a GAP -> Dense head
        at ``layer`` (default: :attr:`cam_layer`).
        ``method="gradcam"``: ``sum_k alpha_k A_k`` with ``alpha_k`` the spatial mean of
        ``d logit_c / d A_k`` (no ReLU), at any spatial layer (default: the CAM layer, else the
        last spatial layer).

        A list of images gives an ``(n, h, w)`` array from one forward pass; ``class_index`` may then
        be one int for all or one per image.
        """
        if method not in METHODS:
            raise CAMError(f"method must be one of {METHODS}; got {method!r}.")
        images, single = _as_batch(image)
        classes = self._classes(class_index, len(images))
        name = self._resolve_layer(layer, method)
        if method == "cam":
            head = self._heads.get(name)
            if head is None:
                raise NoCAMHeadError(self._no_head_message(name))
            feats = self._run(images, (name,))[2][name]
            maps = np.stack([f @ head.weights[:, c] for f, c in zip(feats, classes, strict=False)]).astype(np.float32)
        else:
            maps = self._gradcam(images, classes, name)
        return maps[0] if single else maps

    def _no_head_message(self, layer: str) -> str:
        if self._cam_layer is None:
            where = "This model has no GAP -> Dense head at all (e.g. Flatten + fully connected layers)"
        else:
            where = f"Layer {layer!r} has no GAP -> Dense head (the model's own is on {self._cam_layer!r})"
        return (
            f"{where}, so exact CAM is not defined there. Use method='gradcam' (works at any spatial layer), "
            f"or fit a head first with engine.refit_head({layer!r}, images)."
        )

    def _gradcam(self, images: list[ImageSource], classes: list[int], layer: str) -> np.ndarray:
        if keras.backend.backend() != "tensorflow":
            raise CAMError(
                f"Grad-CAM needs the TensorFlow backend; Keras is running on {keras.backend.backend()!r}. "
                "Set KERAS_BACKEND=tensorflow before importing keras."
            )
        prepared = [self.prepare(im) for im in images]
        sz = self.input_size
        out: list[np.ndarray | None] = []
        with self._lock:
            for (key, _), c in zip(prepared, classes, strict=False):
                out.append(self._cache.get(("gradcam", key, sz, layer, c)))
            todo = [i for i, m in enumerate(out) if m is None]
            self._counts["hits"] += len(images) - len(todo)
            self._counts["misses"] += len(todo)
            if todo:
                x = np.stack([self._model_input(prepared[i][1]) for i in todo])
                cls = np.asarray([classes[i] for i in todo], np.int32)
                logits, feats, maps = self._call_model(self._gradcam_fn(layer), x, cls)
                self._counts["gradient_passes"] += 1
                for j, i in enumerate(todo):
                    key = prepared[i][0]
                    m = np.array(maps[j], np.float32)
                    self._cache.put(("gradcam", key, sz, layer, classes[i]), m)
                    self._cache.put(("logits", key, sz), np.array(logits[j], np.float32))
                    self._cache.put(("features", key, sz, layer), np.array(feats[j], np.float32))
                    out[i] = m
        return np.stack(out)

    def _feature_model(self, layers: tuple[str, ...]) -> keras.Model:
        """One ``keras.Model`` per layer set, shared by the forward and the Grad-CAM functions."""
        model = self._feature_models.get(layers)
        if model is None:
            model = self._feature_models[layers] = feature_model(self._trace, list(layers))
        return model

    def _gradcam_fn(self, layer: str) -> Callable[[np.ndarray, np.ndarray], tuple]:
        fn = self._gradcam_fns.get(layer)
        if fn is None:
            import tensorflow as tf

            model = self._feature_model((layer,))
            spec = tf.TensorSpec((None, *self.input_size, self._channels), tf.float32)

            @tf.function(input_signature=[spec, tf.TensorSpec((None,), tf.int32)])
            def compiled(x: Any, cls: Any) -> tuple:
                with tf.GradientTape() as tape:
                    logits, feats = model(x, training=False)
                    chosen = tf.gather(logits, cls, axis=1, batch_dims=1)
                grads = tape.gradient(chosen, feats)
                alpha = tf.reduce_mean(grads, axis=[1, 2])
                return logits, feats, tf.einsum("bhwk,bk->bhw", feats, alpha)

            def fn(x: np.ndarray, cls: np.ndarray) -> tuple:
                return tuple(np.asarray(t) for t in compiled(x, cls))

            self._gradcam_fns[layer] = fn
        return fn

    # ------------------------------------------------------------------ validation
    def _resolve_layer(self, layer: str | None, method: str) -> str:
        if layer is None:
            if self._cam_layer is not None:
                return self._cam_layer
            if method == "cam":
                raise NoCAMHeadError(self._no_head_message(self._layers[-1].name))
            return self._layers[-1].name
        if not isinstance(layer, str):
            raise LayerError(f"layer must be a layer name (str); got {type(layer).__name__}.")
        if layer in self._layer_map:
            return layer
        close = difflib.get_close_matches(layer, list(self._layer_map), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        traced = self._trace.by_name.get(layer)
        if traced is not None:
            shape = tuple(traced.outputs[0].shape)
            raise LayerError(
                f"Layer {layer!r} has output shape {shape}, not a spatial (batch, h, w, c) map, so it cannot be "
                f"mapped. Pick one of engine.layers() (e.g. {self._layers[-1].name!r}).{hint}"
            )
        raise LayerError(
            f"No spatial layer named {layer!r} in model {self._model.name!r}. Names of nested layers carry their "
            f"model as a prefix, e.g. {self._layers[-1].name!r}; see engine.layers().{hint}"
        )

    def _classes(self, class_index: int | Sequence[int], n: int) -> list[int]:
        if isinstance(class_index, (int, np.integer)) and not isinstance(class_index, bool):
            classes = [int(class_index)] * n
        elif isinstance(class_index, (list, tuple, np.ndarray)) and len(class_index) == n:
            classes = [int(c) for c in class_index]
        else:
            raise ClassIndexError(
                f"class_index must be an int (or one int per image); got {class_index!r}. "
                "Find indices with engine.top_k(image) or engine.class_names.index(name)."
            )
        for c in classes:
            if not 0 <= c < self.num_classes:
                raise ClassIndexError(
                    f"class_index {c} is out of range: the model has {self.num_classes} classes "
                    f"(0..{self.num_classes - 1})."
                )
        return classes

    # ------------------------------------------------------------------ cache
    def cache_info(self) -> dict[str, int]:
        """Cache counters: ``hits``/``misses`` (lookups served from cache / needing the network),
        ``forward_passes``, ``gradient_passes``, ``bytes``, ``entries``, ``max_bytes``, ``evictions``."""
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


def _is_rgb(image: Any) -> bool:
    return isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def _as_rgb(image: Any) -> np.ndarray:
    return image if _is_rgb(image) else load_image(image)


def _as_batch(image: Any) -> tuple[list[Any], bool]:
    if isinstance(image, (list, tuple)):
        if not image:
            raise CAMError("An empty list of images was given; pass at least one image.")
        return list(image), False
    return [image], True
