"""Stage 1 of training: tune the text encoders' top layers (LoRA) on the human-labeled rows.

Why: over frozen encoders the heads were near their ceiling (docs/MODEL_CARD.md): a logistic
regression on the frozen pooled vectors, trained on every authored Korean sentence, gets 0.64
of the hand-labeled Korean set. The encoders were never asked to tell regret from anger, so
their pooled vectors do not separate them well. Tuning the top layers lets the reader change
what it pools.

How, per BERT-family encoder of the profile that the preset names (`Preset.tune_encoders`; none
named: all of them):
- **rows**: the corpus's human-labeled training rows (of `Preset.tune_langs`, if given). Every
  authored one, plus `Preset.tune_rows` of each other set in use, chosen by the seed. Each row is read as its
  first `TUNE_TOKENS` tokens (`Encoder.first_window`).
- **bottom layers, once**: all but the top `Preset.tune_layers` layers stay frozen. Their
  output is computed once per row and kept, so an epoch runs only the tuned layers.
- **tuned layers**: LoRA factors (`peft`, rank `Preset.tune_rank`, alpha twice the rank) on
  the six matrices of each top layer. A throwaway reader (LayerNorm, then a linear map to
  seven emotion logits and one sentiment logit) reads the pooled vector the encoder serves.
  Losses: soft cross-entropy to the human emotion distribution, and binary cross-entropy to
  the human sentiment (`Corpus.pos_target`). AdamW for `Preset.tune_epochs` epochs over
  length-sorted batches in seeded order.
- **kept**: only the factors, in one safetensors file (`pipeline.adapters`). Stage 2 (the
  rest of `training.train`) encodes the corpus with the factors merged and trains the network
  over those vectors exactly as over frozen ones. The reader is discarded.

The record (rows per set, losses per epoch, seconds, and the reader's emotion accuracy on the
human validation rows after its one warm-up pass over the frozen layers and after tuning; the
reader trains longer in the second, so the difference bounds what tuning bought from above) goes
to the manifest's `encoder_adapters`.
Deterministic for a seed on one machine and thread count: fixed row choice, batches, LoRA
initialization, dropout masks and order, and the file's very bytes (`pipeline.weights.save_tensors`).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.adapters import ADAPTER_FILE, TARGETS, bert_of, key
from pipeline.config import ProfileConfig
from pipeline.encoders import Encoder, build_encoder
from pipeline.weights import save_tensors, sha256_file
from schemas import labels as L
from training.data import authored_set
from training.data.dataset import Corpus, Preset

TUNE_TOKENS = 128  # tokens of a row that tuning reads (its first window)
ALPHA_PER_RANK = 2  # LoRA alpha = 2 x rank, so the merged scale alpha / rank is 2 at any rank
BATCH = 32
LR = 1e-3
VALIDATION_ROWS = 600  # per set, of its rows with an emotion: the reader's accuracy before and after tuning


def tuning_rows(corpus: Corpus, preset: Preset, seed: int, split: str = "train", cap: int | None = None) -> np.ndarray:
    """Human-labeled rows of `split` (in `preset.tune_langs`, if any) with an emotion distribution or
    a sentiment: every authored row and at most `cap` (default `preset.tune_rows`) of each other
    set, chosen by the seed."""
    cap = preset.tune_rows if cap is None else cap
    has_target = corpus.human_emotion_mask | ~np.isnan(corpus.pos_target)
    if preset.tune_langs:
        has_target &= np.isin(corpus.langs, list(preset.tune_langs))
    chosen = []
    for name in sorted(set(corpus.human_set.tolist()) - {""}):
        rows = np.nonzero((corpus.split == split) & (corpus.human_set == name) & has_target)[0]
        if name != authored_set.DATASET and len(rows) > cap:
            rng = np.random.default_rng([seed, len(name), *name.encode()])
            rows = np.sort(rng.choice(rows, cap, replace=False))
        chosen.append(rows)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _batches(encoder: Encoder, texts: list[str], rows: np.ndarray) -> list[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Length-sorted batches of `BATCH` rows, each with its first-window inputs."""
    inputs = encoder.first_window([texts[i] for i in rows], TUNE_TOKENS)
    lengths = inputs["attention_mask"].sum(dim=1).numpy()
    order = np.argsort(lengths, kind="stable")
    out = []
    for start in range(0, len(order), BATCH):
        idx = order[start : start + BATCH]
        width = int(lengths[idx].max())
        out.append((rows[idx], {k: v[idx, :width] for k, v in inputs.items()}))
    return out


class _TopLayers(nn.Module):
    """The tuned top layers (LoRA inside) plus the throwaway reader; reads kept bottom states."""

    def __init__(self, encoder: Encoder, layers: nn.ModuleList) -> None:
        super().__init__()
        self.encoder_pool = encoder.pool
        self.layers = layers
        dim = encoder.dim
        self.reader = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, len(L.EMOTIONS) + 1))

    def pooled(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The vector the encoder serves, from the kept bottom states of one batch."""
        attend = mask.bool()[:, None, None, :]  # True = attend (SDPA's boolean mask)
        for layer in self.layers:
            hidden = layer(hidden, attend)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return self.encoder_pool(hidden, mask)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.reader(self.pooled(hidden, mask))


def _loss(logits: torch.Tensor, corpus: Corpus, rows: np.ndarray) -> torch.Tensor:
    terms = []
    has_emotion = torch.from_numpy(corpus.human_emotion_mask[rows])
    if has_emotion.any():
        target = torch.from_numpy(corpus.human_emotion[rows])[has_emotion]
        terms.append(-(target * torch.log_softmax(logits[has_emotion, :-1], dim=1)).sum(dim=1).mean())
    pos = torch.from_numpy(corpus.pos_target[rows].astype(np.float32))
    has_sign = ~torch.isnan(pos)
    if has_sign.any():
        terms.append(nn.functional.binary_cross_entropy_with_logits(logits[has_sign, -1], pos[has_sign]))
    return torch.stack(terms).sum()


def _accuracy(model: _TopLayers, corpus: Corpus, kept: list[tuple[np.ndarray, torch.Tensor, torch.Tensor]]) -> float | None:
    right, n = 0, 0
    with torch.no_grad():
        for rows, hidden, mask in kept:
            has = corpus.human_emotion_mask[rows]
            if not has.any():
                continue
            pred = model(hidden, mask)[:, :-1].argmax(dim=1).numpy()
            right += int((pred[has] == corpus.human_emotion[rows][has].argmax(axis=1)).sum())
            n += int(has.sum())
    return round(right / n, 4) if n else None


def _bottom(encoder: Encoder, bert: nn.Module, cut: int,
            batches: list[tuple[np.ndarray, dict[str, torch.Tensor]]], desc: str) -> list[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Each batch's hidden states after the frozen bottom `cut` layers (computed once)."""
    layers = bert.encoder.layer
    bert.encoder.layer = layers[:cut]
    try:
        with torch.no_grad():
            return [(rows, bert(**inputs).last_hidden_state, inputs["attention_mask"])
                    for rows, inputs in tqdm(batches, desc=desc, unit="batch", leave=False)]
    finally:
        bert.encoder.layer = layers


def tune_encoder(encoder: Encoder, corpus: Corpus, preset: Preset, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One encoder's LoRA factors (keys of `pipeline.adapters`) and its record."""
    from peft import LoraConfig, get_peft_model

    started = time.perf_counter()
    bert = bert_of(encoder.model)  # type: ignore[attr-defined]
    n_layers = len(bert.encoder.layer)
    if not 0 < preset.tune_layers <= n_layers:
        raise ValueError(f"preset {preset.name!r}: tune_layers {preset.tune_layers} not in 1..{n_layers} for {encoder.name!r}")
    cut = n_layers - preset.tune_layers
    train = _bottom(encoder, bert, cut, _batches(encoder, corpus.texts, tuning_rows(corpus, preset, seed)),
                    f"tune {encoder.name}: bottom layers")
    val_rows = tuning_rows(corpus, preset, seed, "val", VALIDATION_ROWS)
    val_rows = val_rows[corpus.human_emotion_mask[val_rows]]  # only these are scored (`_accuracy`)
    val = _bottom(encoder, bert, cut, _batches(encoder, corpus.texts, val_rows), f"tune {encoder.name}: validation")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft asks transformers a deprecated question
            peft_model = get_peft_model(bert, LoraConfig(
                r=preset.tune_rank, lora_alpha=ALPHA_PER_RANK * preset.tune_rank, lora_dropout=0.0, target_modules=list(TARGETS),
                layers_to_transform=list(range(cut, n_layers)), layers_pattern="layer"))
        model = _TopLayers(encoder, peft_model.base_model.model.encoder.layer[cut:])
    model.requires_grad_(False)
    params = [p for name, p in model.named_parameters() if "lora_" in name or name.startswith("reader.")]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    steps = preset.tune_epochs * len(train)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - 0.9 * step / max(1, steps))
    # The reader alone first (one pass over the frozen layers' vectors), so the factors start from a
    # reader that already points somewhere; its accuracy then is the record's "frozen" figure.
    rng_state = torch.random.get_rng_state()  # restored below: tuning leaves the caller's RNG as it found it
    model.eval()  # peft leaves the wrapped layers in training mode: no dropout (unseeded) while warming and scoring
    before = _warm_reader(model, corpus, train, seed)
    accuracy_before = _accuracy(model, corpus, val)
    history = []
    for epoch in range(preset.tune_epochs):
        model.train()
        # the tuned layers' dropout masks: drawn from the seed and the epoch, never from the caller's RNG
        torch.manual_seed(seed * 1000 + epoch)
        order = np.random.default_rng([seed, 1 + epoch]).permutation(len(train))
        losses = []
        for b in tqdm(order, desc=f"tune {encoder.name}: epoch {epoch + 1}/{preset.tune_epochs}", unit="batch", leave=False):
            rows, hidden, mask = train[b]
            loss = _loss(model(hidden, mask), corpus, rows)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        history.append(round(float(np.mean(losses)), 5))
    model.eval()
    torch.random.set_rng_state(rng_state)
    factors: dict[str, torch.Tensor] = {}
    for i in range(cut, n_layers):
        layer = peft_model.base_model.model.encoder.layer[i]
        for target in TARGETS:
            lora = layer.get_submodule(target)
            factors[key(encoder.name, i, target, "A")] = lora.lora_A["default"].weight.detach().clone().contiguous()
            factors[key(encoder.name, i, target, "B")] = lora.lora_B["default"].weight.detach().clone().contiguous()
    used = {name: int((corpus.human_set[np.concatenate([r for r, _, _ in train])] == name).sum())
            for name in sorted(set(corpus.human_set.tolist()) - {""})}
    return factors, {
        "layers": list(range(cut, n_layers)),
        "rows": used,
        "reader_warmup_loss": before,
        "loss_history": history,
        "validation_emotion_accuracy": {"frozen": accuracy_before, "tuned": _accuracy(model, corpus, val)},
        "seconds": round(time.perf_counter() - started, 1),
    }


def _warm_reader(model: _TopLayers, corpus: Corpus, train: list[tuple[np.ndarray, torch.Tensor, torch.Tensor]],
                 seed: int) -> float:
    """Train the reader alone for one pass over the kept bottom states; returns its last loss."""
    optimizer = torch.optim.AdamW(model.reader.parameters(), lr=LR * 3, weight_decay=0.0)
    with torch.no_grad():  # the frozen top layers' pooled vectors, once
        pooled = [(rows, model.pooled(hidden, mask)) for rows, hidden, mask in train]
    losses = []
    for b in np.random.default_rng([seed, 0]).permutation(len(pooled)):
        rows, vectors = pooled[b]
        loss = _loss(model.reader(vectors), corpus, rows)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return round(float(np.mean(losses[-max(1, len(losses) // 10):])), 5)


def tune_encoders(cfg: ProfileConfig, corpus: Corpus, preset: Preset, seed: int, out: Path,
                  device: torch.device) -> tuple[ProfileConfig, dict[str, Any]]:
    """Tune every encoder of the profile, write `out/ADAPTER_FILE`, and return the profile
    reading it plus the manifest entry (`pipeline.weights.ADAPTERS_KEY`)."""
    started = time.perf_counter()
    factors: dict[str, torch.Tensor] = {}
    records: dict[str, Any] = {}
    unknown = sorted(set(preset.tune_encoders) - {spec.name for spec in cfg.encoders})
    if unknown:
        raise ValueError(f"preset {preset.name!r}: tune_encoders names unknown encoders {unknown}")
    specs = [spec for spec in cfg.encoders if not preset.tune_encoders or spec.name in preset.tune_encoders]
    for spec in specs:
        encoder = build_encoder(spec, device)
        f, record = tune_encoder(encoder, corpus, preset, seed)
        factors |= f
        records[spec.name] = record
        del encoder
    out.mkdir(parents=True, exist_ok=True)
    path = out / ADAPTER_FILE
    save_tensors(factors, path, metadata={"scale": repr(float(ALPHA_PER_RANK))})  # the rank is the factors' shape
    names = [spec.name for spec in specs]
    entry = {"file": ADAPTER_FILE, "sha256": sha256_file(path), "encoders": names, "rank": preset.tune_rank,
             "languages": list(preset.tune_langs) or "all",
             "alpha": ALPHA_PER_RANK * preset.tune_rank, "targets": list(TARGETS), "tokens": TUNE_TOKENS, "batch": BATCH, "lr": LR,
             "epochs": preset.tune_epochs, "per_encoder": records, "seconds": round(time.perf_counter() - started, 1)}
    return cfg.with_adapters(str(path), names), entry
