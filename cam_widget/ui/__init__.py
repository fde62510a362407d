"""The interactive panel, in one module per job:

* ``panel.py``     CAMExplorer: composes the parts below; computes nothing itself
* ``controls.py``  every control (the class dropdown, the layer and method pickers, ...), their DOM classes, layout
* ``caption.py``   the legend (colour bar, scope) and the status line, one HTML widget
* ``frames.py``    the pipeline from a request to a frame: view -> maps -> scope -> grid -> output
* ``views/``       single, layers, methods, classes; ``views/grid.py`` composes a grid into one picture
* ``maps.py``      raw and index maps, the method fall-back and the top-k batching, in one byte-bounded LRU
* ``scope.py``     the normalisation scope (per map, shared, signed)
* ``output.py``    the picture's front end (``ipywidgets.Image`` by default)
* ``photos.py``    the photos, their display-size copies, uploads
* ``catalog.py``   the methods offered (the methods registry's records)
* ``jobs.py``      long methods in a background thread, with progress and cancellation
* ``export.py``    Save (full-resolution PNG of the view) and ``figure()`` (matplotlib)
* ``render_loop.py`` the coalescing worker: renders only the newest request
* ``state.py``     the dataclasses they pass around

``cam_widget.ui.CAMExplorer`` is imported on first use (it needs ipywidgets).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CAMExplorer"]


def __getattr__(name: str) -> Any:
    if name == "CAMExplorer":
        from .panel import CAMExplorer

        return CAMExplorer
    raise AttributeError(f"module 'cam_widget.ui' has no attribute {name!r}")
