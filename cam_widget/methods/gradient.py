"""Gradient family: every method here is a function of the features ``A`` and the gradients
``G = d logit_c / d A`` (both ``(n, h, w, k)``), so ONE batched gradient pass serves them all.

Gradients are those of the pre-softmax logit.  No final ReLU: a ReLU that is part of a method's
definition (Layer-CAM's ``relu(G)``, Grad-CAM++'s ``relu(G)`` weights) is kept, nothing else.
"""

from __future__ import annotations

import numpy as np

from ..errors import MethodError
from .base import Ingredients

__all__ = ["gradcam", "gradcam_plus_plus", "hirescam", "layercam", "xgradcam"]


def gradcam(ing: Ingredients) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): ``w_k = mean_xy G_k``; the map is ``sum_k w_k A_k``."""
    # float64 mean: at a GAP head every gradient is W[k, c] / (h w), and an exact mean keeps Grad-CAM exactly
    # CAM / (h w) there (for power-of-two grids, bit for bit after normalising)
    return ing.gradients.mean(axis=(1, 2), dtype=np.float64)


def gradcam_plus_plus(ing: Ingredients, variant: str = "paper") -> np.ndarray:
    """Grad-CAM++ (Chattopadhay et al. 2018): ``w_k = sum_xy alpha_kxy relu(G_kxy)`` with the paper's
    closed form for an exponential score, ``alpha = G^2 / (2 G^2 + sum_ab A_kab G^3)`` (0 where that is
    0/0; no eps, which next to squared gradients would distort the alphas).

    ``variant="authors"``: the authors' code (as tf-keras-vis runs it) also divides each channel's alphas
    by their spatial sum.  Both drop the positive per-class factor ``exp(S_c)`` the code multiplies in."""
    if variant not in ("paper", "authors"):
        raise MethodError(f"gradcam++ variant must be 'paper' or 'authors'; got {variant!r}.")
    # 2 G^2 + S G^3 = G^2 (2 + S G), so alpha = 1 / (2 + S G) where G != 0 (float32 is plenty: no G^3 formed)
    g = ing.gradients
    d = 2.0 + ing.features.sum(axis=(1, 2), keepdims=True) * g
    relu_g = np.maximum(g, 0.0)
    if variant == "paper":  # alpha * relu(G) = relu(G) / d: where G <= 0 it is 0 whatever alpha is
        return np.divide(relu_g, d, out=np.zeros_like(d), where=d != 0).sum(axis=(1, 2), dtype=np.float64)
    alpha = np.divide(1.0, d, out=np.zeros_like(d), where=(g != 0) & (d != 0))
    total = alpha.sum(axis=(1, 2), keepdims=True)
    alpha = np.divide(alpha, total, out=np.zeros_like(alpha), where=total != 0)
    return (alpha * relu_g).sum(axis=(1, 2), dtype=np.float64)


def xgradcam(ing: Ingredients) -> np.ndarray:
    """XGrad-CAM (Fu et al. 2020): ``w_k = sum_xy (A_kxy / sum_ab A_kab) G_kxy`` (0 for a channel whose
    activations sum to 0)."""
    a = ing.features
    total = a.sum(axis=(1, 2))
    num = (a * ing.gradients).sum(axis=(1, 2))
    return np.divide(num, total, out=np.zeros_like(num), where=total != 0)


def hirescam(ing: Ingredients) -> np.ndarray:
    """HiResCAM (Draelos & Carin 2020): element-wise ``sum_k G_k * A_k`` (no spatial averaging of G)."""
    return ing.gradients * ing.features


def layercam(ing: Ingredients) -> np.ndarray:
    """Layer-CAM (Jiang et al. 2021): ``sum_k relu(G_k) * A_k``; stays sharp at early layers."""
    return np.maximum(ing.gradients, 0.0) * ing.features
