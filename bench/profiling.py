"""cProfile helper: where the time of a repeated call goes (top functions by own time)."""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from typing import Any


def profile_calls(fn: Callable[[int], Any], calls: int, top: int = 8) -> list[dict[str, Any]]:
    """Run ``fn(i)`` ``calls`` times under cProfile; return the ``top`` functions by total own time, with
    milliseconds per call of ``fn``."""
    prof = cProfile.Profile()
    prof.enable()
    for i in range(calls):
        fn(i)
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({func})",
                "calls_per_op": round(ncalls / calls, 2),
                "own_ms_per_op": round(tottime * 1e3 / calls, 4),
                "cum_ms_per_op": round(cumtime * 1e3 / calls, 4),
            }
        )
    rows.sort(key=lambda r: r["own_ms_per_op"], reverse=True)
    return rows[:top]


def _short(filename: str) -> str:
    for marker in ("site-packages/", "cam_widget/", "bench/"):
        if marker in filename:
            return (marker if marker != "site-packages/" else "") + filename.split(marker, 1)[1]
    return filename
