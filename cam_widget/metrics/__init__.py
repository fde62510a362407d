"""All scoring of maps: localisation, faithfulness, sanity checks, evaluation over labelled cases.

* :mod:`.scoring` - pure numpy/OpenCV: curves, areas, rank correlation, SSIM, ROAD's imputation,
  random-map baselines, bootstrap intervals.  No Keras, no engine.
* :mod:`.localize` - the paper's 20 % box, pointing game, IoU (pure numpy/OpenCV).
* :mod:`.faithfulness` - deletion/insertion (RISE), Average Drop / Increase, ROAD: build perturbed
  images with :mod:`.scoring`, score them with an engine's batched forward passes.
* :mod:`.sanity` - model parameter randomisation (Adebayo et al. 2018) on a clone of the model.
* :mod:`.evaluate`, :mod:`.translation` - localisation over labelled cases.

Functions that need a model take an engine as an argument; only :mod:`.sanity` imports Keras (lazily).
"""

from __future__ import annotations

from .evaluate import evaluate, load_cases
from .faithfulness import confidence_change, deletion_insertion, road
from .localize import iou, localize, peak, pointing_game

__all__ = [
    "confidence_change",
    "deletion_insertion",
    "evaluate",
    "iou",
    "load_cases",
    "localize",
    "peak",
    "pointing_game",
    "road",
]
