"""Activation family: maps from the features alone (no gradient, no class)."""

from __future__ import annotations

import numpy as np

from .base import Ingredients, pca_projection

__all__ = ["eigencam"]


def eigencam(ing: Ingredients) -> np.ndarray:
    """Eigen-CAM (Muhammad & Yeasin 2020): the ``(h*w, k)`` activations, centred over positions, projected
    on their first principal direction.  The SVD's sign is arbitrary (pytorch-grad-cam leaves it, so some of
    its maps come out flipped); here it is fixed so the map correlates positively with the activations'
    channel mean.  The same map for every class."""
    feats = ing.features
    # class-independent: one projection per distinct image (the panel asks for one photo's top-k classes)
    first: dict[object, int] = {}
    rows = [first.setdefault(getattr(im, "key", id(im)), i) for i, im in enumerate(ing.images)]
    if len(first) == len(rows):
        return pca_projection(feats, feats.mean(axis=-1))
    unique = list(first.values())
    maps = pca_projection(feats[unique], feats[unique].mean(axis=-1))
    return maps[[unique.index(r) for r in rows]]
