"""All scoring of maps: localisation (box, pointing game, IoU) and evaluation over labelled cases.

Scoring functions are pure numpy/OpenCV: they take maps and boxes and know nothing of Keras or widgets.
Functions that need a model (``evaluate``) take an engine as an argument.
"""

from __future__ import annotations

from .evaluate import evaluate, load_cases
from .localize import iou, localize, peak, pointing_game

__all__ = ["evaluate", "iou", "load_cases", "localize", "peak", "pointing_game"]
