"""EfficientNet-Lite0 as a Keras 3 functional model, at any input size.

The architecture is the TF-Lite-friendly variant of EfficientNet-B0 (no squeeze-and-excitation,
ReLU6 everywhere, fixed 32-channel stem and 1280-channel head).  Layer names follow
``keras.applications.EfficientNetB0`` (``stem_conv``, ``block1a_dwconv``, ``block5c_add``,
``top_activation``, ``avg_pool``, ``predictions`` ...) so CAM code and users can address them the
same way.  ``padding="same"`` reproduces TensorFlow's asymmetric padding, which is what the
ImageNet weights were trained with.

The network is fully convolutional up to ``avg_pool``: build it at 448 x 448 and the last
convolutional map is 14 x 14 instead of 7 x 7; build it at ``None`` to accept any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ModelError

__all__ = [
    "BATCH_NORM_EPSILON",
    "BLOCKS",
    "NUM_CLASSES",
    "BlockSpec",
    "block_names",
    "build_efficientnet_lite0",
    "normalize_input_size",
]

NUM_CLASSES = 1000
BATCH_NORM_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280
DROPOUT_RATE = 0.2


@dataclass(frozen=True)
class BlockSpec:
    """One stage of MBConv blocks: the first block may stride, the repeats keep the resolution."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters: int


#: The seven stages of EfficientNet-Lite0 (16 MBConv blocks in all).
BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(1, 3, 1, 1, 16),
    BlockSpec(2, 3, 2, 6, 24),
    BlockSpec(2, 5, 2, 6, 40),
    BlockSpec(3, 3, 2, 6, 80),
    BlockSpec(3, 5, 1, 6, 112),
    BlockSpec(4, 5, 2, 6, 192),
    BlockSpec(1, 3, 1, 6, 320),
)


def block_names() -> list[str]:
    """Keras-style block prefixes in network order: ``block1a``, ``block2a``, ``block2b``, ..."""
    return [
        f"block{stage}{chr(ord('a') + i)}"
        for stage, spec in enumerate(BLOCKS, start=1)
        for i in range(spec.repeats)
    ]


def normalize_input_size(input_size: int | tuple[int | None, int | None] | None) -> tuple[int | None, int | None]:
    """``224`` -> ``(224, 224)``; ``(h, w)`` unchanged; ``None`` -> ``(None, None)`` (any size)."""
    if input_size is None:
        return (None, None)
    if isinstance(input_size, bool):
        raise ModelError(f"input_size must be an int, (height, width) or None, got {input_size!r}")
    if isinstance(input_size, int):
        size: tuple[Any, ...] = (input_size, input_size)
    else:
        try:
            size = tuple(input_size)
        except TypeError:
            raise ModelError(f"input_size must be an int, (height, width) or None, got {input_size!r}") from None
    if len(size) != 2:
        raise ModelError(f"input_size must be an int, (height, width) or None, got {input_size!r}")
    for s in size:
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 32):
            raise ModelError(f"input sizes must be ints >= 32 (the network strides by 32), got {input_size!r}")
    return (size[0], size[1])


def build_efficientnet_lite0(
    input_size: int | tuple[int | None, int | None] | None = 224,
    *,
    num_classes: int = NUM_CLASSES,
    name: str = "efficientnet_lite0",
) -> Any:
    """Build an untrained EfficientNet-Lite0 ``keras.Model`` (load weights separately).

    ``input_size`` is an int, ``(height, width)`` or ``None`` for ``None x None`` inputs.  The input
    is an RGB float tensor already preprocessed as ``(x - 127) / 128``.  The output layer
    ``predictions`` is ``Dense(num_classes, activation="softmax")``.
    """
    from ..tf_import import keras

    layers = keras.layers

    height, width = normalize_input_size(input_size)
    inputs = keras.Input(shape=(height, width, 3), name="input_layer")

    def conv_bn_act(x: Any, filters: int, kernel: int, stride: int, prefix: str, act: bool = True) -> Any:
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}conv"
        )(x)
        x = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{prefix}bn")(x)
        if act:
            x = layers.ReLU(max_value=6.0, name=f"{prefix}activation")(x)
        return x

    x = conv_bn_act(inputs, STEM_FILTERS, 3, 2, "stem_")

    in_filters = STEM_FILTERS
    names = iter(block_names())
    for spec in BLOCKS:
        for repeat in range(spec.repeats):
            prefix = next(names) + "_"
            stride = spec.stride if repeat == 0 else 1
            shortcut = x
            if spec.expand != 1:
                x = conv_bn_act(x, in_filters * spec.expand, 1, 1, prefix + "expand_")
            x = layers.DepthwiseConv2D(
                spec.kernel, strides=stride, padding="same", use_bias=False, name=prefix + "dwconv"
            )(x)
            x = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=prefix + "bn")(x)
            x = layers.ReLU(max_value=6.0, name=prefix + "activation")(x)
            x = conv_bn_act(x, spec.filters, 1, 1, prefix + "project_", act=False)
            if stride == 1 and in_filters == spec.filters:
                x = layers.Add(name=prefix + "add")([x, shortcut])
            in_filters = spec.filters

    x = conv_bn_act(x, HEAD_FILTERS, 1, 1, "top_")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(DROPOUT_RATE, name="top_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)
