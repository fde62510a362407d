"""The compiled network passes a :class:`cam_widget.engine.CAMEngine` runs, each built once and reused.

* ``forward(layers)`` -- input batch -> ``[logits, *features of layers]``;
* ``gradient(layer)`` -- (inputs, one class per row) -> ``(logits, features, d logit_c / d features)``;
* ``tail(layer)`` -- a layer's features -> logits (the rest of the network), ``None`` where the graph does
  not split at the layer;
* ``scaled(layer)`` -- (inputs, channel scales) -> logits with the layer's channels scaled.

Each is a ``tf.function`` with a fixed input signature (one trace per layer set) on the flattened graph of
:mod:`cam_widget.keras_graph`.  No cache and no counters live here: the engine owns those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import CAMError
from .keras_graph import Trace, channel_scaled_model, feature_model, tail_model
from .tf_import import keras

__all__ = ["CompiledPasses", "require_tensorflow"]

Forward = Callable[[np.ndarray], list[np.ndarray]]


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
        self._forward: dict[tuple[str, ...], Forward] = {}
        self._gradient: dict[str, Callable[[np.ndarray, np.ndarray], tuple]] = {}
        self._tail: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {}
        self._scaled: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}

    def _input_spec(self) -> Any:
        import tensorflow as tf

        return tf.TensorSpec((None, *self._input_size, self._channels), tf.float32)

    def feature_model(self, layers: tuple[str, ...]) -> keras.Model:
        """One ``keras.Model`` per layer set, shared by the forward and the gradient functions."""
        model = self._feature_models.get(layers)
        if model is None:
            model = self._feature_models[layers] = feature_model(self._trace, list(layers))
        return model

    def forward(self, layers: tuple[str, ...]) -> Forward:
        """``x -> [logits, *features of layers]`` as float arrays (``predict_on_batch`` off TensorFlow)."""
        fn = self._forward.get(layers)
        if fn is None:
            model = self.feature_model(layers)
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                compiled = tf.function(lambda x: model(x, training=False), input_signature=[self._input_spec()])

                def fn(x: np.ndarray) -> list[np.ndarray]:
                    return [np.asarray(o) for o in keras.tree.flatten(compiled(x))]
            else:

                def fn(x: np.ndarray) -> list[np.ndarray]:
                    return [np.asarray(o) for o in keras.tree.flatten(model.predict_on_batch(x))]

            self._forward[layers] = fn
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
