"""LRU result cache: normalization, model identity in the key, eviction order, stats."""

from __future__ import annotations

import pytest

from worker.cache import CacheKeys, ResultCache, cache_key


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


def test_remembered_keys_are_the_keys_and_stay_bounded() -> None:
    keys = CacheKeys("small:abc", capacity=3, max_chars=20)
    for text, lang in [("hello  world", None), ("hello world", "en"), ("안녕하세요", "ko"), ("hello  world", None)]:
        assert keys(text, lang) == cache_key(text, lang, "small:abc")
    assert keys("x" * 21, None) == cache_key("x" * 21, None, "small:abc")  # long texts: computed, not kept
    assert ("x" * 21, None) not in keys._keys
    for i in range(10):
        keys(f"t{i}", None)
    assert 0 < len(keys._keys) <= 3
