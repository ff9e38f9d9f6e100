"""LRU result cache: normalization, model identity in the key, eviction order, stats."""

from __future__ import annotations

import pytest

from worker.cache import ResultCache, cache_key


def test_key_normalizes_whitespace_and_unicode_but_not_model_or_lang() -> None:
    a = cache_key("오늘  정말\t행복해요 ", "ko", "small:abc")
    assert a == cache_key("오늘 정말 행복해요", "ko", "small:abc")
    # NFD (decomposed jamo) and NFC forms of the same Korean text are one entry
    import unicodedata

    assert a == cache_key(unicodedata.normalize("NFD", "오늘 정말 행복해요"), "ko", "small:abc")
    assert a != cache_key("오늘 정말 행복해요", "ko", "small:def")
    assert a != cache_key("오늘 정말 행복해요", None, "small:abc")


def test_lru_eviction_and_stats() -> None:
    c: ResultCache[str] = ResultCache(2)
    c.put(b"a", "A")
    c.put(b"b", "B")
    assert c.get(b"a") == "A"  # a is now most recent
    c.put(b"c", "C")  # evicts b
    assert c.get(b"b") is None
    assert c.get(b"c") == "C"
    assert c.stats() == {"capacity": 2, "entries": 2, "hits": 2, "misses": 1, "hit_rate": pytest.approx(2 / 3)}


def test_zero_capacity_disables() -> None:
    c: ResultCache[str] = ResultCache(0)
    c.put(b"a", "A")
    assert c.get(b"a") is None and len(c) == 0 and c.stats()["misses"] == 0
