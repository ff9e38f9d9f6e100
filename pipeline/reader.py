"""The emotion reader: one linear emotion read-out per language over the text sources' pooled
vectors, added to the emotion analyzer's logits (docs/PIPELINE.md, "Step 4: the emotion reader").

Why it exists: the network reads the text through a 128-wide fusion shared by both languages and
learns emotion from every corpus it trains on (Reddit and Korean online comments, weak labels on
tweets and reviews). On sentences that describe a situation, a plain logistic regression on the
frozen encoders' vectors, fitted on the authored set of one language only, is right more often
than the network (docs/BENCHMARKS.md, "The emotion reader"): it sees all 800 dimensions, only
that language, and only that kind of text. Added to the network's logits, the two disagree
where each is weak, and the sum is right more often than either.

What it computes, per row with text: `scale * (W[lang] @ x + b[lang])`, where `x` is the
concatenation of each source's L2-normalised pooled vector (the frozen encoders', then the
lexical encoder's) and `lang` is the row's reader (`READER_LANGS`; a row of another language,
or without text, gets nothing). The Korean reader's MiniLM block is zero: MiniLM reads Hangul
as jamo pieces, and a read-out on it does worse than one without it.

`W`, `b` and `scale` are buffers, not parameters: `training.reader` fits `W` and `b` (logistic
regression) after the network has trained and chooses `scale` on validation rows. Until then
`scale` is 0 and the reader adds nothing, which is also what every network trains with.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

READER_LANGS: tuple[str, ...] = ("en", "ko")
NO_READER = -1
# Sources (encoder names) a language's reader does not read: their block of `weight` stays zero.
READER_SKIPS: dict[str, tuple[str, ...]] = {"ko": ("minilm",)}


def reader_index(lang: str) -> int:
    """The reader of a resolved event language ('ko', 'en-US', ...), or `NO_READER`."""
    base = lang.split("-")[0].lower()
    return READER_LANGS.index(base) if base in READER_LANGS else NO_READER


def reader_indices(langs: list[str], device: torch.device | str | None = None) -> torch.Tensor:
    return torch.tensor([reader_index(lang) for lang in langs], dtype=torch.long, device=device)


def reader_features(pooled: list[torch.Tensor]) -> torch.Tensor:
    """`[B, sum(dims)]`: each source's vector L2-normalised, so no source dominates by scale."""
    return torch.cat([F.normalize(p.float(), dim=1) for p in pooled], dim=1)


class EmotionReader(nn.Module):
    def __init__(self, source_dims: list[int], n_out: int) -> None:
        super().__init__()
        self.source_dims = list(source_dims)
        self.register_buffer("weight", torch.zeros(len(READER_LANGS), n_out, sum(source_dims)))
        self.register_buffer("bias", torch.zeros(len(READER_LANGS), n_out))
        self.register_buffer("scale", torch.zeros(()))

    @property
    def fitted(self) -> bool:
        return bool(self.scale != 0)

    def forward(self, pooled: list[torch.Tensor], lang: torch.Tensor) -> torch.Tensor:
        """`pooled`: every source's `[B, dim_i]` (zeros for a row without text); `lang` `[B]`
        reader indices (`reader_indices`). Returns logits `[B, n_out]`, zero where no reader applies."""
        x = reader_features(pooled)
        which = lang.clamp(min=0)
        logits = torch.einsum("bd,bod->bo", x, self.weight[which]) + self.bias[which]
        has = (lang >= 0) & (x.abs().sum(dim=1) > 0)
        return (logits * has.unsqueeze(1).to(logits.dtype) * self.scale).to(pooled[0].dtype)
