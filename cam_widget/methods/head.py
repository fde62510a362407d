"""Head family: methods that need a GAP -> linear head at the layer (the model's own or a refitted one)."""

from __future__ import annotations

import numpy as np

from .base import Ingredients

__all__ = ["cam"]


def cam(ing: Ingredients) -> np.ndarray:
    """CAM (Zhou et al. 2016): ``M_c = sum_k w_k^c A_k`` with the head's weights, exactly (no bias, no ReLU),
    so ``mean(M_c) + b_c == logit_c``.  Returns the channel weights ``(n, k)``."""
    return ing.head.weights[:, ing.classes].T
