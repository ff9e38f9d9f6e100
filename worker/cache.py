"""Result cache: LRU keyed by a hash of the normalized input and the model.

A hit skips the model, never the stream's temporal state: the cached value is the
per-event analysis only, and the worker still applies it to the stream in order.
The model identity (profile + checkpoint id) is part of the key, so a new checkpoint
never serves results of the old one.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


def normalize(text: str) -> str:
    """NFC + collapsed whitespace: the same words typed twice hit the same entry. (`split()`
    splits on exactly the characters `\\s` matches; ASCII is NFC already.)"""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def cache_key(text: str, lang: str | None, model_id: str) -> bytes:
    return hashlib.blake2b(f"{model_id}\x00{lang or ''}\x00{normalize(text)}\x00".encode(), digest_size=16).digest()


class CacheKeys:
    """`cache_key` for one model, remembered per (text, lang) for short texts: a cache-heavy
    stream repeats its texts, and normalizing and hashing a text again costs more than
    looking it up. Bounded: texts up to `max_chars` only, forgotten all at once when
    `capacity` are held (at most ~`capacity` x `max_chars` characters)."""

    def __init__(self, model_id: str, capacity: int = 4096, max_chars: int = 512) -> None:
        self.model_id = model_id
        self.capacity = capacity
        self.max_chars = max_chars
        self._keys: dict[tuple[str, str | None], bytes] = {}

    def __call__(self, text: str, lang: str | None) -> bytes:
        key = self._keys.get((text, lang))
        if key is None:
            key = cache_key(text, lang, self.model_id)
            if len(text) <= self.max_chars:
                if len(self._keys) >= self.capacity:
                    self._keys.clear()
                self._keys[(text, lang)] = key
        return key


class ResultCache(Generic[V]):
    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("cache capacity must be >= 0 (0 disables the cache)")
        self.capacity = capacity
        self._data: OrderedDict[bytes, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> V | None:
        if self.capacity == 0:
            return None
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def peek(self, key: bytes) -> V | None:
        """The entry without counting a lookup or refreshing its age (admission's look)."""
        return self._data.get(key)

    def put(self, key: bytes, value: V) -> None:
        if self.capacity == 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict[str, float | int]:
        looked = self.hits + self.misses
        return {
            "capacity": self.capacity,
            "entries": len(self._data),
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / looked if looked else 0.0,
        }
