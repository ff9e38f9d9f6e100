"""The emotion reader: one linear emotion read-out per language over the text sources' pooled
vectors and the text's hashed n-grams, added to the emotion analyzer's logits where the text reads like a situation or a
comment, not like a review or a tweet (docs/PIPELINE.md, "Step 3", the emotion reader).

Why it exists: the network reads the text through a 128-wide fusion shared by both languages and
learns emotion from every corpus it trains on (Reddit and Korean online comments, weak labels on
tweets and reviews). On sentences that describe a situation, a plain logistic regression on the
frozen encoders' vectors, fitted on the authored set of one language, is right more often than
the network (docs/BENCHMARKS.md, "The gated emotion reader"): it sees all 800 dimensions, only that
language, and mostly that kind of text. Added to the network's logits, the two disagree where
each is weak, and the sum is right more often than either.

Why a gate: the same read-out, added to a movie review or a tweet, pulls its sentiment the wrong
way (NSMC -4 points, tweets -12 at the scale that helps situations most). So what it adds is
weighted, per row, by `gate(x)`: a logistic regression telling the kinds of text the read-out
was fitted on (the human emotion sets) from the review and tweet corpora that teach sentiment
only. A review gets little of the reader (its sentiment stays the network's); a situation gets
all of it.

What it computes, per row with text and a reader: the read-out `r = W[lang] @ x + b[lang] +
N[lang] @ n` and its weight `w = gate(x)` (`gate(x) = sigmoid(g @ x + g0)`), where `x` is the
concatenation of each source's L2-normalised pooled vector (the frozen encoders', then the
lexical encoder's), `n` the text's n-gram vector (below) and `lang` the row's reader
(`READER_LANGS`); then, from the network's emotion logits `z`, with three
numbers per language (`scale` s, `mix` a, `net_temperature` T):

    z' = z + s * w * r                                           (the read-out added to the logits)
    p  = (1 - a * w) * softmax(z' / T) + a * w * softmax(r)      (the read-out's own distribution mixed in)

and the emotion layer's softmax (with its calibrated temperature) reads `log p`. A sum alone
(a = 0) lets a confident read-out override the network and vice versa; the mixture keeps each
distribution's shape and, where the read-out is sure and the network is not, lets the read-out
decide without the network's logits' scale mattering (docs/BENCHMARKS.md, "The emotion reader as
a gated mixture"). With a = 0 the output is exactly the sum's (the softmax of `log softmax(z')`
is the softmax of `z'`), so a row with nothing mixed in is served `z'` itself. A row of another
language, or without text, gets nothing. The Korean reader's MiniLM block is zero: MiniLM reads
Hangul as jamo pieces, and a read-out on it does worse than one without it. Until the gate is
fitted (`gated` = 0) it is 1 everywhere.

Why the n-gram vector: the lexical encoder hands the network the *mean* of its n-grams' 32-d
embeddings, which keeps little of which words were there. Read directly, the same hashed ids
(`pipeline.lexical`: words, character 1-3-grams of `<word>`, word pairs) carry the feeling words
of a sentence ("서운", "기뻤", "furious") to the read-out: on the hand-labeled sentences a linear
read-out of e5 and the n-grams together is right for far more Korean sentences than one of e5
alone (docs/BENCHMARKS.md, "The n-gram read-out"). `n` is the text's sublinear tf-idf vector over
the lexical buckets, L2-normalised: `(1 + log count) * idf[id]` per distinct id, `idf` fitted on
the reader's training rows (`ngram_features`). `N` is stored `[buckets, language, emotion]`; a
profile without a lexical encoder has no `N`.

Every number here is a buffer, not a parameter: `training.reader` fits `W`, `b` and the gate
(logistic regressions) after the network has trained and chooses `scale`, `mix` and
`net_temperature` per language on validation rows. Until then `scale` and `mix` are 0 and the
reader changes nothing, which is also what every network trains with.
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


def ngram_features(ids: torch.Tensor, offsets: torch.Tensor, idf: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The n-gram vectors of packed bags (`pipeline.lexical.pack`), sparse: (row, bucket, value)
    per distinct id of each row, value = (1 + log count) * idf[bucket], L2-normalised per row.
    Training builds its design matrix from this same function, so what is fitted is what serves."""
    n = offsets.numel()
    buckets = idf.numel()
    lengths = torch.diff(offsets, append=torch.tensor([ids.numel()], dtype=offsets.dtype, device=offsets.device))
    seg = torch.repeat_interleave(torch.arange(n, device=ids.device), lengths)
    key, count = torch.unique(seg * buckets + ids, return_counts=True)
    row, col = key // buckets, key % buckets
    value = (1.0 + torch.log(count.float())) * idf[col].float()
    norm = torch.zeros(n, device=ids.device).index_add_(0, row, value * value).sqrt()
    return row, col, value / norm[row]


class EmotionReader(nn.Module):
    def __init__(self, source_dims: list[int], n_out: int, ngram_buckets: int | None = None) -> None:
        super().__init__()
        self.source_dims = list(source_dims)
        width = sum(source_dims)
        n_langs = len(READER_LANGS)
        self.n_out = n_out
        self.ngram_weight: torch.Tensor | None
        self.ngram_idf: torch.Tensor | None
        if ngram_buckets:
            self.register_buffer("ngram_weight", torch.zeros(ngram_buckets, n_langs, n_out))
            self.register_buffer("ngram_idf", torch.ones(ngram_buckets))
        else:
            self.ngram_weight = self.ngram_idf = None
        self.register_buffer("weight", torch.zeros(n_langs, n_out, width))
        self.register_buffer("bias", torch.zeros(n_langs, n_out))
        self.register_buffer("scale", torch.zeros(n_langs))
        self.register_buffer("mix", torch.zeros(n_langs))
        self.register_buffer("net_temperature", torch.ones(n_langs))
        self.register_buffer("gate_weight", torch.zeros(width))
        self.register_buffer("gate_bias", torch.zeros(()))
        self.register_buffer("gated", torch.zeros(()))

    @property
    def fitted(self) -> bool:
        """For reports and training, not for the forward pass: reading a buffer's value on the
        host would wait for the device on every batch."""
        return bool((self.scale != 0).any() or (self.mix != 0).any())

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """`[B]` in (0, 1): how much of the reader a row of features `x` (`reader_features`) gets.
        Chosen on the device (`where`, not an `if` on `gated`) so serving never syncs for it."""
        g = torch.sigmoid(x @ self.gate_weight.float() + self.gate_bias.float())
        return torch.where(self.gated != 0, g, torch.ones_like(g))

    def ngram_read(self, ids: torch.Tensor, offsets: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        """`N[lang] @ n` of packed bags, `[B, n_out]` float32: each row's n-gram vector
        (`ngram_features`) read by its language's block (zeros for a row of no reader, for an
        empty bag, and in a profile without n-gram buffers)."""
        n = offsets.numel()
        out = torch.zeros(n, self.n_out, device=lang.device)
        if self.ngram_weight is None or self.ngram_idf is None or not ids.numel():
            return out
        row, col, value = ngram_features(ids.to(lang.device), offsets.to(lang.device), self.ngram_idf)
        which = lang.clamp(min=0)[row]
        out.index_add_(0, row, value.unsqueeze(1) * self.ngram_weight[col, which].float())
        return out * (lang >= 0).unsqueeze(1).to(out.dtype)

    def read(self, x: torch.Tensor, lang: torch.Tensor, ngram: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """From the features `x` (`reader_features`) and the n-gram read-out `ngram` (`ngram_read`;
        None: none): the read-out `r` `[B, n_out]` and its weight `w` `[B]` (the gate; 0 where no
        reader applies), both float32 whatever the network's dtype (a bfloat16 network has
        bfloat16 buffers)."""
        which = lang.clamp(min=0)
        out = torch.einsum("bd,bod->bo", x, self.weight[which].float()) + self.bias[which].float()
        if ngram is not None:
            out = out + ngram.float()
        has = ((lang >= 0) & (x.abs().sum(dim=1) > 0)).to(out.dtype)
        return out * has.unsqueeze(1), has * self.gate(x)

    def combine(self, z: torch.Tensor, r: torch.Tensor, w: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        """The network's emotion logits `z` `[B, n_out]` with the read-out `r` and weight `w`
        (`read`) of rows of readers `lang`: `log p` of the module docstring where something is
        mixed in, `z'` elsewhere (the same softmax, and bit for bit `z` where the reader adds
        nothing). Every step stays on the device: no host sync per batch."""
        which = lang.clamp(min=0)
        zf = z.float() + (self.scale[which].float() * w).unsqueeze(1) * r
        a = (self.mix[which].float() * w).clamp(0.0, 1.0)
        mixed = a > 0
        # Safe logs: the branch `where` drops must stay finite, or its gradient (explanations
        # run under autograd) would be NaN.
        keep = torch.log1p(-a.clamp(max=1.0 - 1e-6)).unsqueeze(1)
        take = torch.log(torch.where(mixed, a, torch.ones_like(a))).unsqueeze(1)
        t = torch.where(mixed, self.net_temperature[which].float(), torch.ones_like(a)).unsqueeze(1)
        logp = torch.logaddexp(keep + F.log_softmax(zf / t, dim=1), take + F.log_softmax(r, dim=1))
        return torch.where(mixed.unsqueeze(1), logp, zf).to(z.dtype)

    def forward(self, z: torch.Tensor, pooled: list[torch.Tensor], lang: torch.Tensor,
                ngram: torch.Tensor | None = None) -> torch.Tensor:
        """`z`: the network's emotion logits `[B, n_out]`; `pooled`: every source's `[B, dim_i]`
        (zeros for a row without text); `lang` `[B]` reader indices (`reader_indices`); `ngram`
        the rows' n-gram read-out (`ngram_read`). Returns the logits the emotion softmax reads
        (`combine`)."""
        r, w = self.read(reader_features(pooled), lang, ngram)
        return self.combine(z, r, w, lang)
