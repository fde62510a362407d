"""A thread-safe LRU cache bounded by the bytes of the numpy arrays it holds."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

__all__ = ["ByteLRU", "nbytes_of"]


def nbytes_of(value: Any) -> int:
    """Bytes held by ``value``: numpy arrays (also inside tuples, lists and dicts) are counted."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(nbytes_of(v) for v in value)
    if isinstance(value, dict):
        return sum(nbytes_of(v) for v in value.values())
    return 64  # small Python objects: a nominal cost so that counts still bound the cache


class ByteLRU:
    """Least-recently-used mapping whose total ``nbytes`` never exceeds ``max_bytes``.

    An entry larger than the whole budget is not stored (``put`` returns ``False``).
    ``hits``/``misses`` count ``get`` calls; ``evictions`` counts entries dropped for space.
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        """Return the value for ``key`` (marking it most recently used) or ``default``."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return item[0]

    def peek(self, key: Hashable) -> bool:
        """Whether ``key`` is cached, without touching counters or recency."""
        with self._lock:
            return key in self._data

    def put(self, key: Hashable, value: Any) -> bool:
        """Store ``value``; evict least-recently-used entries until the byte bound holds."""
        size = nbytes_of(value)
        with self._lock:
            if key in self._data:
                self._bytes -= self._data.pop(key)[1]
            if size > self.max_bytes:
                return False
            while self._data and self._bytes + size > self.max_bytes:
                _, (_, old) = self._data.popitem(last=False)
                self._bytes -= old
                self.evictions += 1
            self._data[key] = (value, size)
            self._bytes += size
            return True

    def discard(self, predicate: Any) -> int:
        """Remove every entry whose key satisfies ``predicate(key)``; return how many."""
        with self._lock:
            doomed = [k for k in self._data if predicate(k)]
            for k in doomed:
                self._bytes -= self._data.pop(k)[1]
            return len(doomed)

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        with self._lock:
            self._data.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def info(self) -> dict[str, int]:
        """Counters and sizes as a plain dict."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "entries": len(self._data),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
            }
