"""Keras-specific graph work: flatten a (possibly nested) model, find its spatial layers, its
pre-softmax logits and its CAM head, and build feature models on one shared input.

Why flatten: tools that build ``keras.Model(model.inputs, inner_layer.output)`` fail with
"Graph disconnected" / "layer has never been called" as soon as the backbone is a nested
submodel (``Sequential([base, GAP, Dense])`` or a functional model calling ``base(x)``).  Here
every layer of every nested Functional / Sequential model is called again, in graph order, on
the tensors of ONE new ``keras.Input``.  The layers (and their weights) are shared with the
user's model, nothing is copied, and every intermediate tensor - however deeply nested - lives
in one connected graph, so any set of them can be the outputs of a feature model.

Nothing here knows about widgets, images or rendering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelError
from .tf_import import keras

__all__ = ["Call", "Head", "LayerInfo", "Trace", "channel_scaled_model", "find_head", "tail_model", "trace_model"]

# Layers that pass their input through unchanged at inference (or only change its shape).
_TRANSPARENT = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.Identity,
    keras.layers.Flatten,
    keras.layers.Reshape,
)
_PROB_ACTIVATIONS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class LayerInfo:
    """A layer with a spatial output: readable unique ``name`` (``"base/block5c_add"``),
    ``shape`` ``(h, w, c)`` at the engine's input size, and the Keras class name."""

    name: str
    shape: tuple[int, int, int]
    class_name: str

    def __str__(self) -> str:
        h, w, c = self.shape
        return f"{self.name} ({h}x{w}x{c})"


@dataclass
class Call:
    """One call of a leaf layer/operation in the flattened graph."""

    name: str
    layer: Any
    inputs: list[Any]
    outputs: list[Any]


@dataclass(frozen=True)
class Head:
    """A linear classifier over the GAP of ``layer``: ``logit_c = b_c + sum_k W[k, c] mean_xy f_k``.

    ``kind`` says where it came from: ``"dense"`` (GAP -> Dense), ``"conv1x1"`` (a 1x1-conv
    classifier followed by GAP), ``"classmap"`` (the layer's channels are the class maps),
    or ``"refit"`` (fitted by :meth:`CAMEngine.refit_head`).
    """

    layer: str
    weights: np.ndarray  # (k, num_classes) float32
    bias: np.ndarray  # (num_classes,) float32
    kind: str


@dataclass
class Trace:
    """The flattened graph of a model at one input size."""

    input: Any
    output: Any
    logits: Any
    probability: str  # "softmax", "sigmoid" (the model's own) or "softmax-added" (model gives raw logits)
    calls: list[Call] = field(default_factory=list)
    by_name: dict[str, Call] = field(default_factory=dict)
    producer: dict[int, Call] = field(default_factory=dict)
    logits_source: Call | None = None  # the layer computing the logits (before any re-applied reshape)

    def spatial(self) -> list[LayerInfo]:
        """Every call with a single 4-D output, in graph order."""
        infos = []
        for call in self.calls:
            if len(call.outputs) != 1:
                continue
            shape = tuple(call.outputs[0].shape)
            if len(shape) == 4 and all(isinstance(d, int) for d in shape[1:]):
                infos.append(LayerInfo(call.name, (shape[1], shape[2], shape[3]), type(call.layer).__name__))
        return infos


def _activation_name(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "") if act is not None else ""


def _is_model(op: Any) -> bool:
    """A model whose graph can be walked (Functional or Sequential); subclassed models stay opaque leaves."""
    return isinstance(op, keras.Sequential) or (isinstance(op, keras.Model) and hasattr(op, "_nodes_by_depth"))


def _names_in(model: Any) -> set[str]:
    """The names of every layer of ``model``, nested models' layers included (a flattened graph's op names)."""
    names: set[str] = set()
    for layer in getattr(model, "layers", []):
        names.add(layer.name)
        if _is_model(layer):
            names |= _names_in(layer)
    return names


def _fresh_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``... : the first not in ``taken`` (which it joins).  Keras refuses a
    model in which two operations share a name, and the user's layers may be called anything ("add")."""
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


class _Op(keras.layers.Layer):
    """A function of tensors as one graph operation with a name of our choosing: the engine's own symbolic ops
    (pre-activation logits, channel scaling) would otherwise get Keras' automatic names ("add", "matmul",
    "multiply"), which collide with user layers of those names in the flattened graph."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        super().__init__(name=name)
        self._fn = fn

    def call(self, *args: Any) -> Any:
        return self._fn(*args)


def _has_tensor(value: Any) -> bool:
    return any(isinstance(t, keras.KerasTensor) for t in keras.tree.flatten(value))


def _pre_activation(layer: Any, x: Any, taken: set[str]) -> Any:
    """The layer's output before its softmax/sigmoid activation, as one new symbolic op (the layer's kernel and
    bias, shared) named apart from every name in ``taken``."""
    if isinstance(layer, keras.layers.Dense):
        def linear(t: Any) -> Any:
            return keras.ops.matmul(t, layer.kernel)
    elif isinstance(layer, keras.layers.Conv2D) and hasattr(layer, "convolution_op"):
        def linear(t: Any) -> Any:
            return layer.convolution_op(t, layer.kernel)
    else:
        return None
    bias = layer.bias if getattr(layer, "use_bias", False) and layer.bias is not None else None

    def pre(t: Any) -> Any:
        y = linear(t)
        return y if bias is None else y + bias

    return _Op(pre, _fresh_name(f"cam_{layer.name}_pre_activation", taken))(x)


class _Tracer:
    def __init__(self, hook: Callable[[str, Any], Any] | None = None, taken: set[str] | None = None) -> None:
        self.calls: list[Call] = []
        self.by_name: dict[str, Call] = {}
        self.hook = hook  # (unique call name, outputs) -> outputs used downstream
        self.taken = taken if taken is not None else set()  # op names the hook's own ops already use
        self.owners: dict[str, Any] = {}  # op name -> the first leaf traced under it

    def _unique(self, name: str) -> str:
        if name not in self.by_name:
            return name
        i = 1
        while f"{name}@{i}" in self.by_name:
            i += 1
        return f"{name}@{i}"

    def run(self, model: Any, inputs: Any, prefix: str) -> Any:
        if isinstance(model, keras.Sequential):
            functional = getattr(model, "_functional", None)
            if functional is not None:
                return self._run_functional(functional, inputs, prefix)
            x = inputs
            for layer in model.layers:
                x = self.call(layer, prefix, (x,), {})
            return x
        return self._run_functional(model, inputs, prefix)

    def _run_functional(self, model: Any, inputs: Any, prefix: str) -> Any:
        # Keras' own graph walker (every Keras 3 release has ``operation_fn``): each node's operation
        # is replaced by a wrapper that records the call, or recurses into a nested model.
        def operation_fn(op: Any) -> Any:
            return lambda *args, **kwargs: self.call(op, prefix, args, kwargs)

        return model._run_through_graph(inputs, operation_fn=operation_fn)

    def _runner(self, op: Any, kwargs: dict) -> Any:
        """``op`` itself, or -- when another leaf of the same name was traced already (two nested models with a
        layer "conv" each: legal in Keras, but one flattened graph must not have two ops of one name) -- ``op``
        called through an :class:`_Op` of a fresh name (same layer, same weights)."""
        if self.owners.setdefault(op.name, op) is op:
            return op
        static = {k: v for k, v in kwargs.items() if not _has_tensor(v)}
        return _Op(lambda *a, **k: op(*a, **k, **static), _fresh_name(op.name, self.taken))

    def call(self, op: Any, prefix: str, args: tuple, kwargs: dict) -> Any:
        name = prefix + op.name
        if _is_model(op):
            inner_inputs = args[0] if len(args) == 1 else list(args)
            return self.run(op, inner_inputs, name + "/")
        kwargs = {k: v for k, v in kwargs.items() if k != "training"}
        if getattr(op, "_call_has_training_arg", False):
            kwargs["training"] = False
        outputs = self._runner(op, kwargs)(*args, **{k: v for k, v in kwargs.items() if _has_tensor(v)})
        flat_in = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        flat_out = keras.tree.flatten(outputs)
        call = Call(self._unique(name), op, flat_in, flat_out)
        self.calls.append(call)
        self.by_name[call.name] = call
        return outputs if self.hook is None else self.hook(call.name, outputs)


def _input_spec(model: Any, input_size: tuple[int, int] | None) -> tuple[tuple[int, int], int]:
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ModelError(
            f"Model {model.name!r} has no defined inputs (it was never built). Build it with a known input "
            "shape, e.g. keras.Sequential([keras.Input((224, 224, 3)), ...]) or model.build((None, 224, 224, 3))."
        )
    if len(inputs) != 1:
        raise ModelError(f"Model {model.name!r} has {len(inputs)} inputs; cam-widget needs a single image input.")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ModelError(
            f"Model {model.name!r} takes input of shape {shape}; an image classifier takes (batch, h, w, channels)."
        )
    channels = shape[3]
    if channels not in (1, 3):
        raise ModelError(
            f"Model {model.name!r} expects {channels} input channels; cam-widget feeds RGB (3) or grayscale (1) "
            "images in channels_last layout."
        )
    static = (shape[1], shape[2])
    if input_size is None:
        if None in static:
            return (224, 224), channels
        return (int(static[0]), int(static[1])), channels
    size = (int(input_size[0]), int(input_size[1]))
    for have, want in zip(static, size, strict=False):
        if have is not None and have != want:
            raise ModelError(
                f"Model {model.name!r} has a fixed input size {static[0]}x{static[1]}; input_size={size} is not "
                "possible. Leave input_size=None, or build the model with keras.Input((None, None, 3))."
            )
    return size, channels


def trace_model(model: Any, input_size: tuple[int, int] | None = None) -> Trace:
    """Flatten ``model`` onto a new ``keras.Input`` of ``input_size`` (``None``: the model's own).

    Raises :class:`ModelError` for anything that is not a single-input, single-output image
    classifier built with the Functional or Sequential API.
    """
    if not isinstance(model, keras.Model):
        raise ModelError(
            f"Expected a keras.Model, got {type(model).__name__}. Load one with keras.saving.load_model(path) "
            "or cam_widget.load_model(path)."
        )
    if not _is_model(model):
        raise ModelError(
            f"Model {model.name!r} ({type(model).__name__}) is a subclassed model whose layers cannot be "
            "inspected. Rebuild it with the Functional API (keras.Input -> layers -> keras.Model) or "
            "keras.Sequential; a subclassed *layer* inside a functional model is fine."
        )
    return _trace(model, input_size, _Tracer())


def _trace(model: Any, input_size: tuple[int, int] | None, tracer: _Tracer) -> Trace:
    size, channels = _input_spec(model, input_size)
    taken = tracer.taken  # shared with the hook's own ops: every synthetic name is fresh
    taken |= _names_in(model)
    inp = keras.Input(shape=(size[0], size[1], channels), name=_fresh_name("cam_input", taken))
    try:
        out = tracer.run(model, inp, "")
    except ModelError:
        raise
    except Exception as exc:  # a layer refused the new input size/shape
        raise ModelError(
            f"Could not run model {model.name!r} at input size {size[0]}x{size[1]}: {exc}. "
            "If the model has a fixed input size, leave input_size=None."
        ) from exc
    outs = keras.tree.flatten(out)
    if len(outs) != 1:
        raise ModelError(f"Model {model.name!r} has {len(outs)} outputs; cam-widget needs one (class scores).")
    out = outs[0]
    if len(out.shape) != 2:
        raise ModelError(
            f"Model {model.name!r} outputs shape {tuple(out.shape)}; a classifier outputs (batch, num_classes)."
        )
    producer = {id(t): c for c in tracer.calls for t in c.outputs}
    logits, probability, logits_source = _find_logits(out, producer, taken)
    trace = Trace(inp, out, logits, probability, tracer.calls, tracer.by_name, producer, logits_source)
    if not trace.spatial():
        raise ModelError(
            f"Model {model.name!r} has no layer with a spatial (h, w, c) output, so there is nothing to map. "
            "CAM needs a convolutional model in channels_last layout."
        )
    return trace


def _find_logits(out: Any, producer: dict[int, Call], taken: set[str]) -> tuple[Any, str, Call | None]:
    """Pre-softmax logits, the probability kind, and the layer that computes the logits.

    Softmax is undone whether it is a layer's activation or its own layer, also when it sits before
    a final ``Flatten``/``Reshape`` (a 1x1-conv classifier): those are re-applied to the logits."""
    reshapes = []
    call = producer.get(id(out))
    while call is not None and isinstance(call.layer, (keras.layers.Flatten, keras.layers.Reshape)):
        reshapes.append(call.layer)
        call = producer.get(id(call.inputs[0]))
    if call is None:
        return out, "softmax-added", None
    layer = call.layer
    if isinstance(layer, keras.layers.Softmax):
        logits, probability = call.inputs[0], "softmax"
        source = _skip_back(logits, producer)[1]
    elif isinstance(layer, keras.layers.Activation) and _activation_name(layer) in _PROB_ACTIVATIONS:
        logits, probability = call.inputs[0], _activation_name(layer)
        source = _skip_back(logits, producer)[1]
    elif _activation_name(layer) in _PROB_ACTIVATIONS and (pre := _pre_activation(layer, call.inputs[0], taken)) is not None:
        logits, probability, source = pre, _activation_name(layer), call  # the activation built into Dense/Conv
    else:
        return out, "softmax-added", _skip_back(out, producer)[1]
    for reshape in reversed(reshapes):
        logits = reshape(logits)
    return logits, probability, source


def _is_global_average(call: Call) -> bool:
    layer = call.layer
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return False
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        return True
    if isinstance(layer, keras.layers.AveragePooling2D):
        in_shape, out_shape = tuple(call.inputs[0].shape), tuple(call.outputs[0].shape)
        pool = tuple(layer.pool_size)
        return out_shape[1:3] == (1, 1) and pool == in_shape[1:3] and getattr(layer, "padding", "valid") == "valid"
    return False


def _skip_back(t: Any, producer: dict[int, Call]) -> tuple[Any, Call | None]:
    """Walk back through inference-transparent layers (dropout, flatten, reshape, linear activation)."""
    call = producer.get(id(t))
    while call is not None and (
        isinstance(call.layer, _TRANSPARENT)
        or (isinstance(call.layer, keras.layers.Activation) and _activation_name(call.layer) == "linear")
    ):
        t = call.inputs[0]
        call = producer.get(id(t))
    return t, call


def _is_linear_1x1_conv(layer: Any) -> bool:
    return (
        isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D))
        and tuple(layer.kernel_size) == (1, 1)
        and tuple(layer.strides) == (1, 1)
        and getattr(layer, "groups", 1) == 1
        and getattr(layer, "data_format", "channels_last") == "channels_last"
    )


def _weights(layer: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), dtype=np.float32)
    kernel = kernel.reshape(-1, kernel.shape[-1])
    if getattr(layer, "use_bias", False) and layer.bias is not None:
        bias = np.asarray(keras.ops.convert_to_numpy(layer.bias), dtype=np.float32)
    else:
        bias = np.zeros(num_classes, np.float32)
    return kernel, bias


def _pooled_layer(t: Any, producer: dict[int, Call]) -> Call | None:
    """The call whose spatial output is globally averaged into ``t`` (possibly through transparent layers)."""
    t, call = _skip_back(t, producer)
    if call is None:
        return None
    if _is_global_average(call):
        return producer.get(id(call.inputs[0]))
    # Flatten over a 1x1 map: the "average" of a 1x1 map is the map itself.
    out_shape = tuple(t.shape)
    if len(out_shape) == 4 and out_shape[1:3] == (1, 1):
        return call
    return None


def find_head(trace: Trace) -> Head | None:
    """The exact-CAM head of a traced model, or ``None`` when there is none.

    Recognised (at inference): ``L -> GAP -> (Dropout|Flatten|Reshape)* -> Dense``, the same with
    a full-window ``AveragePooling2D`` or ``Flatten`` over a 1x1 map, a 1x1 ``Conv2D`` classifier over
    a pooled 1x1 map (keras MobileNet), and class-map networks ``L -> [1x1 conv] -> GAP``.
    """
    num_classes = int(trace.logits.shape[-1])
    producer = trace.producer
    linear = trace.logits_source
    if linear is None:
        return None
    layer = linear.layer
    is_dense = isinstance(layer, keras.layers.Dense)
    if (is_dense or _is_linear_1x1_conv(layer)) and _activation_name(layer) in ("linear", *_PROB_ACTIVATIONS):
        x = linear.inputs[0]
        if is_dense and len(x.shape) != 2:
            return None
        if not is_dense and tuple(x.shape)[1:3] != (1, 1):
            return None
        source = _pooled_layer(x, producer)
        if source is None or len(source.outputs[0].shape) != 4:
            return None
        weights, bias = _weights(layer, num_classes)
        if weights.shape[0] != source.outputs[0].shape[-1]:
            return None
        return Head(source.name, weights, bias, "dense" if is_dense else "conv1x1")
    if _is_global_average(linear):
        classmap = producer.get(id(linear.inputs[0]))
        if classmap is None or classmap.outputs[0].shape[-1] != num_classes:
            return None
        if _is_linear_1x1_conv(classmap.layer) and _activation_name(classmap.layer) == "linear":
            feature = producer.get(id(classmap.inputs[0]))
            if feature is not None:
                weights, bias = _weights(classmap.layer, num_classes)
                return Head(feature.name, weights, bias, "conv1x1")
        eye = np.eye(num_classes, dtype=np.float32)
        return Head(classmap.name, eye, np.zeros(num_classes, np.float32), "classmap")
    return None


def feature_model(trace: Trace, layers: list[str]) -> keras.Model:
    """A model on the trace's input returning ``[logits, *features_of(layers)]``."""
    outputs = [trace.logits] + [trace.by_name[name].outputs[0] for name in layers]
    return keras.Model(trace.input, outputs, name="cam_features")


def tail_model(trace: Trace, layer: str) -> keras.Model | None:
    """A model from ``layer``'s output (its own input, shape ``(h, w, k)``) to the logits, or ``None`` when
    the graph does not split there: some path to the logits bypasses the layer (a skip connection over it).

    Nested models are no obstacle: the trace is flat, so the tail runs the remaining layers of every nested
    backbone and the head.  The layers (and weights) are the user's, shared."""
    start = trace.by_name[layer].outputs[0]
    try:
        return keras.Model(start, trace.logits, name="cam_tail")
    except ValueError:  # Keras: "Output ... is not connected to `inputs`"
        return None


def channel_scaled_model(model: Any, input_size: tuple[int, int] | None, layer: str) -> keras.Model:
    """``model`` re-traced with ``layer``'s output multiplied channel-wise by a second input of shape ``(k,)``:
    ``[image, scale] -> logits``.  Works at any layer, skip connections included (a full forward pass per
    row); :func:`tail_model` is the cheaper way where the graph splits."""
    scale: list[Any] = []
    taken = _names_in(model)

    def hook(name: str, outputs: Any) -> Any:
        if name != layer:
            return outputs
        k = int(outputs.shape[-1])
        scale.append(keras.Input((k,), name=_fresh_name("cam_channel_scale", taken)))
        scaled = _Op(lambda f, s: f * keras.ops.reshape(s, (-1, 1, 1, k)), _fresh_name("cam_scaled_channels", taken))
        return scaled(outputs, scale[0])

    trace = _trace(model, input_size, _Tracer(hook, taken))
    if not scale:
        raise ModelError(f"Layer {layer!r} was not found when re-tracing model {model.name!r}.")
    return keras.Model([trace.input, scale[0]], trace.logits, name="cam_channel_scaled")
