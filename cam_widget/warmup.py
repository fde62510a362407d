"""``python -m cam_widget.warmup``: convert and cache the default weights, trace the graph once.

Used by ``make lab`` and Binder's ``postBuild`` so that the first notebook cell is fast.
"""

from __future__ import annotations

import time


def main() -> None:
    """Build the default engine once (converting the weights on first use) and run one photo."""
    start = time.perf_counter()
    from .defaults import default_engine
    from .samples import sample_images

    engine = default_engine()
    name, image = next(iter(sample_images().items()))
    _idx, label, prob = engine.top_k(image, 1)[0]
    print(
        f"cam-widget ready in {time.perf_counter() - start:.1f} s: default model {engine.model.name!r}, "
        f"{name} -> {label} ({prob:.1%})"
    )


if __name__ == "__main__":
    main()
