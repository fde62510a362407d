"""The compiled network passes a :class:`cam_widget.engine.CAMEngine` runs, each built once and reused.

* ``forward(layers, frozen)`` -- input batch -> ``[logits, *features of layers]``;
* ``gradient(layer)`` -- (inputs, one class per row) -> ``(logits, features, d logit_c / d features)``;
* ``tail(layer)`` -- a layer's features -> logits (the rest of the network), ``None`` where the graph does
  not split at the layer;
* ``scaled(layer)`` -- (inputs, channel scales) -> logits with the layer's channels scaled;
* ``masked(align_corners)`` -- (low-resolution maps, one model input) -> logits of the input multiplied by each
  map upsampled and min-max normalised (Score-CAM's masked inputs), masks built inside the graph.

Each is a ``tf.function`` with a fixed input signature (one trace per layer set) on the flattened graph of
:mod:`cam_widget.keras_graph`.  The masked pass, and the forward pass when asked (``frozen=True``: the
engine's ``frozen_forward``, which batch jobs turn on), are also *frozen* (the weights become graph
constants, so TensorFlow's graph optimiser folds the batch normalisations into the convolutions, and
:func:`fold_depthwise_scales` those after depthwise convolutions: about 0.5-0.7x the time per input on
EfficientNet-Lite0); they then hold a copy of the weights, which :meth:`CompiledPasses.forget_weights`
drops after the model's weights change in place.  Where a model cannot be frozen the unfrozen function runs.
No cache and no counters live here: the engine owns those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import CAMError
from .keras_graph import Trace, channel_scaled_model, feature_model, tail_model
from .tf_import import keras

__all__ = ["CompiledPasses", "fold_depthwise_scales", "freeze", "require_tensorflow"]

Forward = Callable[[np.ndarray], list[np.ndarray]]
_log = logging.getLogger(__name__)


class _OwnTracingFilter(logging.Filter):
    """Drop TensorFlow's "frequent retracing" warning about the engine's own functions.

    Each feature model gets its own ``tf.function`` with a fixed input signature, so each traces
    exactly once; TensorFlow's detector counts traces per *source line*, so exploring a few
    layers would otherwise print a misleading warning about "expensive retracing".
    """

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("triggered tf.function retracing" in msg and ("CompiledPasses." in msg or "CAMEngine." in msg))


logging.getLogger("tensorflow").addFilter(_OwnTracingFilter())


def require_tensorflow(what: str) -> None:
    """:class:`CAMError` unless Keras runs on TensorFlow (gradients and compiled sub-graphs need it)."""
    if keras.backend.backend() != "tensorflow":
        raise CAMError(
            f"{what} needs the TensorFlow backend; Keras is running on {keras.backend.backend()!r}. "
            "Set KERAS_BACKEND=tensorflow before importing keras."
        )


def freeze(function: Any, *specs: Any) -> tuple[Callable[..., Any], bool]:
    """``(callable, frozen)``: the concrete function of ``function`` (a ``tf.function``) at ``specs`` with its
    variables turned into constants, so that Grappler can fold them (batch normalisation into the preceding
    convolution, constant sub-expressions), and the batch normalisations after depthwise convolutions, which
    Grappler leaves, folded by :func:`fold_depthwise_scales`; ``frozen`` is False, and the unfrozen concrete
    function is returned, when freezing fails (a graph above protobuf's 2 GB limit, resources that are not plain
    variables, ...).  The frozen function computes the same values to float rounding, from the weights as they
    were at freezing."""
    concrete = function.get_concrete_function(*specs)
    try:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        frozen = convert_variables_to_constants_v2(concrete)
    except Exception as exc:  # any model the converter cannot handle runs unfrozen, at the usual speed
        _log.info("cam_widget: running a pass unfrozen (%s: %s)", type(exc).__name__, exc)
        return concrete, False
    run: Callable[..., Any] = frozen
    try:
        graph_def = frozen.graph.as_graph_def()
        if fold_depthwise_scales(graph_def):
            run = _graph_function(graph_def, [t.name for t in frozen.inputs], [t.name for t in frozen.outputs])
    except Exception as exc:  # the plain frozen function is correct, only slower
        _log.info("cam_widget: depthwise batch norms left unfolded (%s: %s)", type(exc).__name__, exc)

    def call(*args: Any) -> Any:
        out = run(*args)
        return out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out

    return call, True


def fold_depthwise_scales(graph_def: Any) -> int:
    """Fold ``BiasAdd``-able batch normalisations into depthwise convolutions, in place, in a frozen ``graph_def``:
    ``AddV2(Mul(DepthwiseConv2dNative(x, W), s), b)`` with constant per-channel ``s`` and ``b`` (Keras'
    inference-mode batch normalisation) becomes ``BiasAdd(DepthwiseConv2dNative(x, W * s), b)``, which Grappler
    then fuses with the activation into one oneDNN kernel (it folds such scales into ``Conv2D`` itself, not
    into depthwise convolutions).  Exact up to float rounding.  Returns the number of convolutions folded."""
    import tensorflow as tf
    from tensorflow.python.framework import tensor_util

    def base(name: str) -> str:
        return name.split(":")[0].lstrip("^")

    nodes = {n.name: n for n in graph_def.node}
    consumers: dict[str, list[Any]] = {}
    for n in graph_def.node:
        for i in n.input:
            consumers.setdefault(base(i), []).append(n)
    constant: dict[str, bool] = {}

    def is_constant(name: str) -> bool:  # depends on Const nodes only (iterative: graphs can be deep)
        todo = [base(name)]
        while todo:
            top = todo[-1]
            if top in constant:
                todo.pop()
                continue
            node = nodes[top]
            if node.op == "Const":
                constant[top] = True
            elif not node.input or node.op in ("Placeholder", "VarHandleOp", "ReadVariableOp"):
                constant[top] = False
            else:
                pending = [base(i) for i in node.input if base(i) not in constant]
                if pending:
                    todo.extend(pending)
                    continue
                constant[top] = all(constant[base(i)] for i in node.input)
            todo.pop()
        return constant[base(name)]

    def only_consumer(name: str, op: str) -> Any:
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op == op else None

    matches = []
    for conv in [n for n in graph_def.node if n.op == "DepthwiseConv2dNative"]:
        if conv.attr["data_format"].s not in (b"", b"NHWC") or not is_constant(conv.input[1]):
            continue
        mul = only_consumer(conv.name, "Mul")
        add = only_consumer(mul.name, "AddV2") if mul is not None else None
        if add is None:
            continue
        scale = [i for i in mul.input if base(i) != conv.name]
        shift = [i for i in add.input if base(i) != mul.name]
        if len(scale) == 1 and len(shift) == 1 and is_constant(scale[0]) and is_constant(shift[0]):
            matches.append((conv, mul, add, scale[0], shift[0]))
    if not matches:
        return 0
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        values = session.run(
            [graph.get_tensor_by_name(base(t) + ":0") for m in matches for t in (m[0].input[1], m[3], m[4])]
        )
    folded = 0
    for j, (conv, _mul, add, _, _) in enumerate(matches):
        w, s, b = (np.asarray(v) for v in values[3 * j : 3 * j + 3])
        if w.ndim != 4 or s.shape != (w.shape[2] * w.shape[3],) or b.shape != s.shape or w.dtype != np.float32:
            continue  # not one scale and one shift per output channel: left as it is
        for suffix, value in (("cam_folded_filter", w * s.reshape(w.shape[2], w.shape[3])), ("cam_folded_bias", b)):
            node = graph_def.node.add()
            node.name, node.op = f"{conv.name}/{suffix}", "Const"
            node.attr["dtype"].type = tf.float32.as_datatype_enum
            node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value.astype(np.float32)))
        conv.input[1] = f"{conv.name}/cam_folded_filter"
        # the Mul is left without consumers (pruned); the AddV2 becomes the BiasAdd on the folded convolution
        add.op = "BiasAdd"
        del add.input[:]
        add.input.extend([conv.name, f"{conv.name}/cam_folded_bias"])
        add.attr["data_format"].s = b"NHWC"
        folded += 1
    return folded


def _graph_function(graph_def: Any, inputs: list[str], outputs: list[str]) -> Callable[..., Any]:
    """A callable running ``graph_def`` from the tensors named ``inputs`` to those named ``outputs``."""
    import tensorflow as tf

    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    get = wrapped.graph.get_tensor_by_name
    return wrapped.prune([get(n) for n in inputs], [get(n) for n in outputs])


class CompiledPasses:
    """The engine's compiled passes over ``trace`` (the flattened ``model`` at ``input_size``), one per layer
    (set), built on first use.  ``layer_shape(name)`` gives a spatial layer's ``(h, w, k)``."""

    def __init__(
        self,
        model: keras.Model,
        trace: Trace,
        input_size: tuple[int, int],
        channels: int,
        layer_shape: Callable[[str], tuple[int, int, int]],
    ) -> None:
        self._model = model
        self._trace = trace
        self._input_size = input_size
        self._channels = channels
        self._layer_shape = layer_shape
        self._feature_models: dict[tuple[str, ...], keras.Model] = {}
        self._forward: dict[tuple[tuple[str, ...], bool], Forward] = {}
        self._gradient: dict[str, Callable[[np.ndarray, np.ndarray], tuple]] = {}
        self._tail: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {}
        self._scaled: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
        self._masked: dict[tuple[bool, bool], tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], bool]] = {}

    def _input_spec(self) -> Any:
        import tensorflow as tf

        return tf.TensorSpec((None, *self._input_size, self._channels), tf.float32)

    def feature_model(self, layers: tuple[str, ...]) -> keras.Model:
        """One ``keras.Model`` per layer set, shared by the forward and the gradient functions."""
        model = self._feature_models.get(layers)
        if model is None:
            model = self._feature_models[layers] = feature_model(self._trace, list(layers))
        return model

    def forward(self, layers: tuple[str, ...], frozen: bool = False) -> Forward:
        """``x -> [logits, *features of layers]`` as float arrays (``predict_on_batch`` off TensorFlow).

        ``frozen=True`` runs a copy of the graph with the weights as constants (:func:`freeze`: batch norms
        folded into the convolutions), about 1.7x faster per batch on the embedded model, equal to float
        rounding; building it takes seconds per layer set and holds a second copy of the weights.  Off
        TensorFlow, or when freezing fails, it is the ordinary pass."""
        frozen = bool(frozen) and keras.backend.backend() == "tensorflow"
        key = (layers, frozen)
        fn = self._forward.get(key)
        if fn is None:
            model = self.feature_model(layers)
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                function = tf.function(lambda x: model(x, training=False), input_signature=[self._input_spec()])
                compiled = freeze(function, self._input_spec())[0] if frozen else function

                def fn(x: np.ndarray) -> list[np.ndarray]:
                    return [np.asarray(o) for o in keras.tree.flatten(compiled(tf.constant(x, tf.float32)))]
            else:

                def fn(x: np.ndarray) -> list[np.ndarray]:
                    return [np.asarray(o) for o in keras.tree.flatten(model.predict_on_batch(x))]

            self._forward[key] = fn
        return fn

    def gradient(self, layer: str) -> Callable[[np.ndarray, np.ndarray], tuple]:
        """``(x, cls) -> (logits, features, d logit[row, cls[row]] / d features)`` for each row of ``x``."""
        fn = self._gradient.get(layer)
        if fn is None:
            require_tensorflow("Gradients (the gradient-family methods)")
            import tensorflow as tf

            model = self.feature_model((layer,))

            @tf.function(input_signature=[self._input_spec(), tf.TensorSpec((None,), tf.int32)])
            def compiled(x: Any, cls: Any) -> tuple:
                with tf.GradientTape() as tape:
                    logits, feats = model(x, training=False)
                    chosen = tf.gather(logits, cls, axis=1, batch_dims=1)
                # each row's logit depends on its own row only, so one gradient of the sum is per-row exact
                grads = tape.gradient(chosen, feats, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                return logits, feats, grads

            def fn(x: np.ndarray, cls: np.ndarray) -> tuple:
                return tuple(np.asarray(t) for t in compiled(x, cls))

            self._gradient[layer] = fn
        return fn

    def tail(self, layer: str) -> Callable[[np.ndarray], np.ndarray] | None:
        """The compiled rest of the network from ``layer``'s features to the logits, or ``None`` where the
        graph does not split at ``layer``."""
        if layer not in self._tail:
            tail = tail_model(self._trace, layer)
            fn = None
            if tail is not None:
                require_tensorflow("Running the network from a layer")
                import tensorflow as tf

                spec = tf.TensorSpec((None, *self._layer_shape(layer)), tf.float32)
                compiled = tf.function(lambda f: tail(f, training=False), input_signature=[spec])

                def fn(f: np.ndarray) -> np.ndarray:
                    return np.asarray(compiled(f))

            self._tail[layer] = fn
        return self._tail[layer]

    def scaled(self, layer: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``(x, scales (n, k)) -> logits`` with ``layer``'s channels multiplied by each row of scales: a full
        forward pass, valid at any layer (skip connections included)."""
        fn = self._scaled.get(layer)
        if fn is None:
            require_tensorflow("Channel ablation")
            import tensorflow as tf

            model = channel_scaled_model(self._model, self._input_size, layer)
            k = self._layer_shape(layer)[2]
            compiled = tf.function(
                lambda x, s: model([x, s], training=False),
                input_signature=[self._input_spec(), tf.TensorSpec((None, k), tf.float32)],
            )

            def fn(x: np.ndarray, s: np.ndarray) -> np.ndarray:
                return np.asarray(compiled(x, s))

            self._scaled[layer] = fn
        return fn

    def masked(
        self, align_corners: bool = False, freeze_weights: bool = True
    ) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], bool]:
        """``(fn, frozen)`` with ``fn(maps (m, mh, mw), x (h, w, c)) -> logits (m, classes)``: the model on
        ``x * mask_i`` for each map, ``mask_i`` the map upsampled bilinearly to the input size (pixel-centre
        aligned, or corner-aligned with ``align_corners``) and min-max normalised to [0, 1] (a constant map
        gives a zero mask).  The masks are built inside the graph, so only ``x`` and the small maps cross into
        TensorFlow; ``frozen`` says whether the weights were folded into the graph (:func:`freeze`;
        ``freeze_weights=False`` keeps them variables, for comparison)."""
        key = (bool(align_corners), bool(freeze_weights))
        if key not in self._masked:
            require_tensorflow("Masked-input passes (Score-CAM)")
            import tensorflow as tf

            model = self.feature_model(())
            height, width = self._input_size

            def masked_logits(x: Any, maps: Any) -> Any:
                # (m, mh, mw) -> (1, mh, mw, m): every map upsampled in one resize
                up = tf.raw_ops.ResizeBilinear(
                    images=tf.transpose(maps, [1, 2, 0])[None], size=[height, width],
                    align_corners=align_corners, half_pixel_centers=not align_corners,
                )[0]
                lo = tf.reduce_min(up, axis=[0, 1])
                span = tf.reduce_max(up, axis=[0, 1]) - lo
                masks = tf.math.divide_no_nan(up - lo, span)  # a constant map (span 0) gives a zero mask
                return model(tf.transpose(masks, [2, 0, 1])[..., None] * x[None], training=False)

            specs = (
                tf.TensorSpec((height, width, self._channels), tf.float32),
                tf.TensorSpec((None, None, None), tf.float32),
            )
            if freeze_weights:
                compiled, frozen = freeze(tf.function(masked_logits), *specs)
            else:
                compiled, frozen = tf.function(masked_logits).get_concrete_function(*specs), False

            def fn(maps: np.ndarray, x: np.ndarray) -> np.ndarray:  # maps first: the engine times per row
                return np.asarray(compiled(tf.constant(x, tf.float32), tf.constant(maps, tf.float32)))

            self._masked[key] = (fn, frozen)
        return self._masked[key]

    def forget_weights(self) -> None:
        """Drop the passes holding a copy of the model's weights (the frozen masked and forward passes), after
        the weights were assigned in place; they are rebuilt, from the new weights, on next use."""
        self._masked.clear()
        for key in [k for k in self._forward if k[1]]:
            del self._forward[key]
