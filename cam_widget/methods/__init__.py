"""The CAM methods: a registry of :class:`Method` records, one small function per method, by family.

Families (as torchcam splits them):

* ``head`` -- needs a GAP -> linear head at the layer: ``cam``.
* ``gradient`` -- functions of the features ``A`` and the gradients ``G = d logit_c / d A``; ONE batched
  gradient pass (cached per image, layer and class) serves all of them: ``gradcam``, ``gradcam++``,
  ``xgradcam``, ``hirescam``, ``layercam``.
* ``activation`` -- the features alone: ``eigencam``.
* ``perturbation`` -- forward passes on masked inputs / ablated features: ``scorecam``, ``ablationcam``.

Every method also takes ``smooth=None | "aug" | "eigen"`` (see :mod:`cam_widget.methods.smoothing`).
Maps are RAW: layer resolution, float32, no final ReLU, no normalisation.

Uninformative maps (e.g. all-zero gradients at a dead ReLU layer, or non-finite ingredients): never an
error.  The map is returned (non-finite values replaced by 0, so typically all zeros), an
:class:`cam_widget.errors.UninformativeMapWarning` (a ``UserWarning``) is issued, and
:func:`is_uninformative` ``(map) -> bool`` tells a caller (the panel) to show "uninformative map" instead of
a heat map.  Long methods take ``progress(done, total)`` and a ``threading.Event`` ``cancel``; a set event
raises :class:`cam_widget.errors.CancelledError` at the next batch.

Adding a method: write ``def mymethod(ing: Ingredients, **options) -> np.ndarray`` in the family's module
(return channel weights ``(n, k)``, per-channel terms ``(n, h, w, k)`` or maps ``(n, h, w)``), add one
:class:`Method` entry to ``_REGISTRY`` below, and one test in ``tests/methods/``.  Nothing in the engine or
the panel changes.

This module imports no Keras/TensorFlow: ``cam_widget.methods()`` is cheap.
"""

from __future__ import annotations

import difflib

from ..errors import MethodError
from . import activation, gradient, head, perturbation
from .base import FAMILIES, Ingredients, Method, is_uninformative, pca_projection

__all__ = [
    "FAMILIES", "Ingredients", "Method", "companions", "is_uninformative", "method", "methods", "names", "pca_projection",
]

_REGISTRY: tuple[Method, ...] = (
    Method(
        name="cam",
        label="CAM",
        family="head",
        needs_head=True,
        cost="none",
        description="Exact class activation map: the head's class weights times the layer's features.",
        paper="Zhou et al. 2016, Learning Deep Features for Discriminative Localization (CVPR)",
        compute=head.cam,
    ),
    Method(
        name="gradcam",
        label="Grad-CAM",
        family="gradient",
        needs_head=False,
        cost="gradient pass",
        description="Features weighted by the spatial mean of the class logit's gradient; any spatial layer.",
        paper="Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization (ICCV)",
        compute=gradient.gradcam,
        needs_gradients=True,
    ),
    Method(
        name="gradcam++",
        label="Grad-CAM++",
        family="gradient",
        needs_head=False,
        cost="gradient pass",
        description="Grad-CAM with per-position weights from higher gradient powers; better for several objects.",
        paper="Chattopadhay et al. 2018, Grad-CAM++: Generalized Gradient-based Visual Explanations (WACV)",
        compute=gradient.gradcam_plus_plus,
        options=("variant",),
        needs_gradients=True,
        defaults=(("variant", "paper"),),
    ),
    Method(
        name="xgradcam",
        label="XGrad-CAM",
        family="gradient",
        needs_head=False,
        cost="gradient pass",
        description="Gradients weighted by normalised activations (an axiom-derived Grad-CAM).",
        paper="Fu et al. 2020, Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs (BMVC)",
        compute=gradient.xgradcam,
        needs_gradients=True,
    ),
    Method(
        name="hirescam",
        label="HiResCAM",
        family="gradient",
        needs_head=False,
        cost="gradient pass",
        description="Element-wise gradient times activation: what the score actually used at each position.",
        paper="Draelos & Carin 2020, Use HiResCAM instead of Grad-CAM for faithful explanations (arXiv:2011.08891)",
        compute=gradient.hirescam,
        needs_gradients=True,
    ),
    Method(
        name="layercam",
        label="Layer-CAM",
        family="gradient",
        needs_head=False,
        cost="gradient pass",
        description="Positive gradients times activations, element-wise; stays sharp at early layers.",
        paper="Jiang et al. 2021, LayerCAM: Exploring Hierarchical Class Activation Maps for Localization (IEEE TIP)",
        compute=gradient.layercam,
        needs_gradients=True,
    ),
    Method(
        name="eigencam",
        label="Eigen-CAM",
        family="activation",
        needs_head=False,
        cost="none",
        description="First principal component of the layer's activations; class-independent, no gradients.",
        paper="Muhammad & Yeasin 2020, Eigen-CAM: Class Activation Map using Principal Components (IJCNN)",
        compute=activation.eigencam,
    ),
    Method(
        name="scorecam",
        label="Score-CAM",
        family="perturbation",
        needs_head=False,
        cost="N forward passes",
        description="Channels weighted by the class probability of the input masked with each channel's map.",
        paper="Wang et al. 2020, Score-CAM: Score-Weighted Visual Explanations for CNNs (CVPR Workshops)",
        compute=perturbation.scorecam,
        options=("max_channels", "batch_size", "allow_slow", "align_corners"),
        expensive=True,
        estimator=perturbation.estimate_scorecam,
        defaults=(
            ("max_channels", perturbation.SCORECAM_MAX_CHANNELS), ("batch_size", 32), ("allow_slow", False),
            ("align_corners", False),
        ),
    ),
    Method(
        name="ablationcam",
        label="Ablation-CAM",
        family="perturbation",
        needs_head=False,
        cost="N forward passes",
        description="Channels weighted by how much the class logit drops when each channel is zeroed.",
        paper="Desai & Ramaswamy 2020, Ablation-CAM: Visual Explanations for Deep CNNs via Gradient-free Localization (WACV)",
        compute=perturbation.ablationcam,
        options=("batch_size", "max_channels"),
        expensive=True,
        estimator=perturbation.estimate_ablationcam,
        defaults=(("batch_size", 64), ("max_channels", None)),
    ),
)
_BY_NAME = {m.name: m for m in _REGISTRY}


def methods() -> tuple[Method, ...]:
    """Every registered method, in display order (grouped by family)."""
    return _REGISTRY


def companions(of: Method) -> tuple[Method, ...]:
    """The cheap methods whose maps come from the ingredients a map of ``of`` has just fetched (numpy on the
    cached features, and gradients if ``of`` used them; no network): the engine computes and caches them with
    it, so the first switch to one of them for that (image, class) is a cache lookup.  Empty for head and
    expensive methods."""
    if of.needs_head or of.expensive:
        return ()
    return tuple(
        m for m in _REGISTRY
        if m is not of and not m.needs_head and not m.expensive and (of.needs_gradients or not m.needs_gradients)
    )


def names() -> tuple[str, ...]:
    """The method names ``engine.cam(..., method=...)`` accepts."""
    return tuple(_BY_NAME)


def method(name: str) -> Method:
    """The :class:`Method` called ``name``; :class:`MethodError` listing every name and the closest match."""
    found = _BY_NAME.get(name) if isinstance(name, str) else None
    if found is not None:
        return found
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "") if isinstance(name, str) else ""
    for m in _REGISTRY:  # "Grad-CAM++", "grad_cam" and "ScoreCAM" mean the obvious thing
        if key and key in (m.name, m.label.lower().replace("-", "")):
            return m
    close = difflib.get_close_matches(key or str(name), list(_BY_NAME), n=1, cutoff=0.4)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise MethodError(f"Unknown method {name!r}; available: {', '.join(_BY_NAME)}.{hint}")
