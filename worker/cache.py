"""Result cache (SPEC §4): LRU keyed by a hash of the normalized input and the model.

A hit skips the model, never the stream's temporal state: the cached value is the
per-event analysis only, and the worker still applies it to the stream in order.
The model identity (profile + checkpoint id) is part of the key, so a new checkpoint
never serves results of the old one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFC + collapsed whitespace: the same words typed twice hit the same entry."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def cache_key(text: str, lang: str | None, model_id: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (model_id, lang or "", normalize(text)):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.digest()


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
