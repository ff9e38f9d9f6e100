"""The lexical encoder: hashed character and word n-grams, averaged (fastText-style).

Why it exists: the small profile's pretrained encoders are frozen and hand the network
one pooled sentence vector each. The words that carry sentiment and emotion in short
reviews and comments ("재밌", "후회", "disgusting") survive that pooling only weakly, and
the Korean reader is frozen too. A bag of
hashed n-grams is the cheapest reader that learns those words from labeled data: it is
differentiable and trained with the rest of our modules, costs microseconds per text on a
CPU, needs no vocabulary file, and treats every script alike.

The ids are fixed by the text alone: NFKC, lower case, whitespace words; per word its
whole form and the character 1-3-grams of `<word>`; per adjacent word pair the pair. Each
n-gram is hashed with CRC-32 of its UTF-8 bytes (stable across processes and platforms,
unlike Python's `hash`) into `buckets`. A text gives at most `max_ids` ids (bounded
cost per record); a text with no words gives an empty bag, whose mean is the zero vector.
"""

from __future__ import annotations

import functools
import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pipeline.config import LexicalSpec

CHAR_NGRAMS: tuple[int, ...] = (1, 2, 3)
# Names the id scheme above; the checkpoint manifest records it, so weights learned for other
# ids are refused at load instead of reading the wrong rows.
SCHEME = "nfkc-lower/word+char1-3+wordpair/crc32/v1"


@functools.lru_cache(maxsize=1 << 16)
def _word_ids(word: str, buckets: int) -> tuple[int, ...]:
    """A word's own ids (the word, the char n-grams of `<word>`). Cached: words repeat, and
    hashing is the whole cost of this encoder on the CPU (bounded: 65,536 words)."""
    crc = zlib.crc32
    marked = f"<{word}>"
    ids = [crc(("w " + word).encode()) % buckets]
    for n in CHAR_NGRAMS:
        ids.extend(crc(("c " + marked[i : i + n]).encode()) % buckets for i in range(len(marked) - n + 1))
    return tuple(ids)


def ngram_ids(text: str, buckets: int, max_ids: int) -> np.ndarray:
    """The bag of one text: `[n]` int64 bucket ids, `n <= max_ids`."""
    words = unicodedata.normalize("NFKC", text).lower().split()
    ids: list[int] = []
    for word in words:
        if len(ids) >= max_ids:
            break
        ids.extend(_word_ids(word, buckets))
    for first, second in zip(words, words[1:]):
        if len(ids) >= max_ids:
            break
        ids.append(zlib.crc32(f"b {first} {second}".encode()) % buckets)
    return np.asarray(ids[:max_ids], dtype=np.int64)


def bags(texts: Sequence[str], spec: LexicalSpec) -> list[np.ndarray]:
    return [ngram_ids(t, spec.buckets, spec.max_ids) for t in texts]


def pack(rows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """`nn.EmbeddingBag`'s flat form: (ids `[sum n]`, offsets `[B]`). An empty row is an empty bag."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows), dtype=np.int64)
    if len(rows) > 1:
        np.cumsum(lengths[:-1], out=offsets[1:])
    flat = np.concatenate(rows) if len(rows) and lengths.sum() else np.zeros(0, dtype=np.int64)
    return torch.from_numpy(flat), torch.from_numpy(offsets)


class LexicalEncoder(nn.Module):
    """Mean of the bag's embeddings, `[B, dim]`; learned with the network."""

    def __init__(self, spec: LexicalSpec) -> None:
        super().__init__()
        self.spec = spec
        self.bag = nn.EmbeddingBag(spec.buckets, spec.dim, mode="mean")
        nn.init.normal_(self.bag.weight, std=0.1)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.bag(ids, offsets)
