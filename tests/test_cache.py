import numpy as np
import pytest

from cam_widget.cache import ByteLRU


def arr(n_bytes: int) -> np.ndarray:
    return np.zeros(n_bytes, np.uint8)


def test_evicts_least_recently_used_to_respect_bound():
    lru = ByteLRU(max_bytes=300)
    lru.put("a", arr(100))
    lru.put("b", arr(100))
    lru.put("c", arr(100))
    assert lru.get("a") is not None  # a becomes most recent
    lru.put("d", arr(100))  # evicts b, the least recently used
    assert not lru.peek("b") and lru.peek("a") and lru.peek("c") and lru.peek("d")
    assert lru.nbytes == 300 and lru.evictions == 1


def test_oversized_entry_is_not_stored_and_replacement_updates_bytes():
    lru = ByteLRU(max_bytes=100)
    assert lru.put("big", arr(101)) is False and len(lru) == 0
    lru.put("k", arr(60))
    lru.put("k", arr(10))
    assert lru.nbytes == 10 and len(lru) == 1


def test_counts_hits_misses_and_nested_values():
    lru = ByteLRU(max_bytes=1000)
    lru.put("t", (arr(10), [arr(20)], {"x": arr(30)}))
    assert lru.nbytes == 60
    assert lru.get("t") is not None and lru.get("nope") is None
    info = lru.info()
    assert (info["hits"], info["misses"], info["entries"]) == (1, 1, 1)
    assert lru.discard(lambda k: k == "t") == 1 and lru.nbytes == 0


def test_negative_bound_is_refused():
    with pytest.raises(ValueError):
        ByteLRU(-1)
