"""The `small` profile end to end on the real MiniLM and multilingual-e5 weights.

The pipeline is loaded once per module (about 2 s); everything else reuses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import CheckpointError, ModelLoadError, Pipeline, get_profile
from pipeline import weights as ckpt
from pipeline.analysis import Analyzed
from pipeline.model import OUTPUT_LABELS, RedHeartNet
from schemas import labels as L
from schemas.input import InputEvent
from schemas.result import EventAnalysis

TEXTS = [
    "오늘 정말 행복해요. 친구들과 좋은 시간을 보냈어요.",
    "I am furious that they cancelled the project without asking anyone.",
    "친구가 나를 배신해서 너무 화가 난다",
    "The weather is fine today; nothing special happened at work.",
    "I regret not calling my mother before she went into hospital.",
    "그때 다른 선택을 했더라면 좋았을 텐데 후회된다",
]


def event(i: int, text: str, **kw) -> InputEvent:
    return InputEvent(event_id=f"e{i}", stream_id="s1", text=text, **kw)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.load("small", checkpoint=None, allow_untrained=True, device="cpu", num_threads=2)


@pytest.fixture(scope="module")
def batch_results(pipe) -> list[EventAnalysis]:
    return pipe.analyze([event(i, t) for i, t in enumerate(TEXTS)])


def test_results_are_valid_event_analyses(batch_results):
    assert len(batch_results) == len(TEXTS)
    for r in batch_results:
        EventAnalysis.model_validate(r.model_dump())  # round trip through the schema
        assert set(r.analysis.emotion.emotions) == set(L.EMOTIONS)
        assert sum(r.analysis.emotion.emotions.values()) == pytest.approx(1.0, abs=1e-5)
        assert sum(r.analysis.surd.kinds.values()) == pytest.approx(1.0, abs=1e-5)
        assert len(r.analysis.bentham.context_weights) == 36
        assert len(r.auxiliary.dsp.frequency) == L.DSP_BINS and min(r.auxiliary.dsp.resonance) >= 0
        assert r.tokens > 2


def test_integrated_scores_follow_the_formulas(batch_results):
    for r in batch_results:
        e = r.analysis.emotion.emotions
        pos = sum(e[k] for k in L.POSITIVE_EMOTIONS)
        neg = sum(e[k] for k in L.NEGATIVE_EMOTIONS)
        assert r.integrated.overall_sentiment == pytest.approx(pos - neg, abs=1e-5)
        assert r.integrated.ethical_score == pytest.approx(np.mean(list(r.analysis.bentham.scores.values())), abs=1e-5)
        assert r.integrated.regret_potential == r.analysis.regret.regret_potential
        # the stream's figure, which the worker fills in: an event alone has no stream history
        assert r.integrated.causal_clarity == L.INSUFFICIENT_HISTORY
        assert 0.0 <= r.integrated.confidence <= 1.0
        assert r.analysis.emotion.dominant == max(e, key=e.get)


def test_languages_detected_and_given(pipe, batch_results):
    assert [r.lang for r in batch_results] == ["ko", "en", "ko", "en", "en", "ko"]
    assert pipe.analyze([event(0, "Bonjour", lang="fr")])[0].lang == "fr"


def test_different_texts_give_different_outputs(batch_results):
    vectors = [np.array(list(r.analysis.emotion.emotions.values())) for r in batch_results]
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            assert np.abs(vectors[i] - vectors[j]).max() > 1e-4, (TEXTS[i], TEXTS[j])


def test_batching_does_not_change_answers(pipe, batch_results):
    for i, text in enumerate(TEXTS):
        alone = pipe.analyze([event(i, text)])[0]
        a, b = alone.model_dump(), batch_results[i].model_dump()
        assert a["tokens"] == b["tokens"] and a["lang"] == b["lang"]
        for x, y in zip(_floats(a), _floats(b)):
            assert x == pytest.approx(y, abs=1e-4)


def _floats(tree) -> list[float]:
    if isinstance(tree, dict):
        return [f for k in sorted(tree) for f in _floats(tree[k])]
    if isinstance(tree, list):
        return [f for v in tree for f in _floats(v)]
    return [tree] if isinstance(tree, float) else []


def test_padding_does_not_change_the_pooled_vector(pipe):
    minilm = pipe.encoders[0]
    short = "I am happy."
    alone = minilm.encode([short])
    padded_batch = minilm.tokenize([short, "a much longer sentence " * 20])
    assert padded_batch["attention_mask"][0].sum() < padded_batch["attention_mask"].shape[1]
    with torch.inference_mode():
        padded = minilm.forward(padded_batch)
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=1e-4)


def test_korean_is_encoded_not_collapsed(pipe):
    minilm, e5 = pipe.encoders
    # MiniLM's English vocabulary breaks Hangul into jamo pieces and [UNK];
    # it is kept for English, and Korean meaning comes from the multilingual encoder.
    pieces = minilm.tokenizer.tokenize("오늘 정말 후회된다")
    assert "[UNK]" in pieces
    assert any("\u1100" <= ch <= "\u11ff" for piece in pieces for ch in piece)  # jamo
    # ... while multilingual e5 separates Korean sentences of different meaning.
    v = e5.encode(["오늘 정말 행복해요", "친구가 나를 배신해서 너무 화가 난다"])
    assert v.shape == (2, 384)
    assert float(v[0] @ v[1]) < 0.95


def test_count_tokens_matches_what_the_first_encoder_sees(pipe, batch_results):
    for text, r in zip(TEXTS, batch_results):
        assert pipe.count_tokens(text) == r.tokens
    assert pipe.count_tokens("word " * 2000) == 512


def test_modalities_are_measured_and_bad_parts_refused(pipe):
    from pipeline.errors import ModalityError
    from worker import samples

    assert pipe.reject_reason(event(0, "hello")) is None
    broken = InputEvent(event_id="i", stream_id="s", text="hi", image={"format": "png", "data": "aGVsbG8="})
    with pytest.raises(ModalityError, match="image"):
        pipe.extract(broken)
    low = InputEvent(event_id="b", stream_id="s", biosignals={"ecg": {"sample_rate": 50.0, "values": [0.1] * 600}})
    with pytest.raises(ModalityError, match="ecg"):
        pipe.extract(low)
    only_image = InputEvent(event_id="o", stream_id="s", image=samples.image_png((20, 200, 40)))
    mixed = InputEvent(event_id="m", stream_id="s", text="What a day", biosignals={"eeg": samples.eeg(6.0)})
    alone, with_parts = pipe.analyze([event(0, "What a day")]), pipe.analyze([event(0, "What a day"), only_image, mixed])
    assert with_parts[1].lang == "und" and with_parts[1].tokens == 0
    hues = {k: v for k, v in with_parts[1].analysis.image.items() if k.startswith("hue_")}
    assert max(hues, key=hues.__getitem__) == "hue_green"
    eeg = with_parts[2].analysis.biosignals.eeg
    assert max(eeg, key=eeg.__getitem__) == "theta"
    assert with_parts[2].auxiliary.spectra.eeg is not None
    # a text-only event's answer does not depend on the parts other events of its batch carry
    assert alone[0].integrated.overall_sentiment == pytest.approx(with_parts[0].integrated.overall_sentiment, abs=1e-5)
    assert alone[0].analysis.image is None and alone[0].auxiliary.spectra is None


def test_status_and_parameter_counts(pipe):
    status = pipe.status()
    assert status["profile"] == "small" and status["trained"] is False and status["checkpoint_id"] is None
    assert [e["name"] for e in status["encoders"]] == ["minilm", "e5-small"]
    assert status["encoders"][0]["parameters"] == 22_713_216
    counts = pipe.parameter_counts()
    assert {"backbone", "task_heads", "emotion", "bentham", "regret", "surd", "dsp", "utility", "fusion"} <= set(counts)
    assert "kalman" not in counts  # no unsupervised noise head: the filter uses KalmanConfig's defaults
    json.dumps(status)


def test_run_gives_each_result_with_its_observation(pipe, batch_results):
    """`run`'s observation is the event's point in the stream's state space: the emotions and
    integrated scores of its result, with the event's own causal clarity (redundant + unique
    of analysis.surd.kinds), in labels.STATE_VECTOR order. The observation keeps the network's
    precision; the result shows it rounded to labels.DECIMALS (so clarity, compared as the sum
    of two shown shares, can differ from the rounded observation by 1.5 units of those decimals:
    half a unit for its own rounding, one for the two shares')."""
    out = pipe.run(pipe.prepare([event(i, t) for i, t in enumerate(TEXTS)]))
    assert [a.result for a in out] == batch_results
    for a in out:
        obs, r = a.observation, a.result
        assert isinstance(a, Analyzed) and obs.dtype == np.float64 and obs.shape == (len(L.STATE_VECTOR),)
        assert not obs.flags.writeable
        k, i = r.analysis.surd.kinds, r.integrated
        want = [r.analysis.emotion.emotions[e] for e in L.EMOTIONS] + [
            i.overall_sentiment, i.ethical_score, i.regret_potential, min(1.0, k["redundant"] + k["unique"])
        ]
        shown = np.round(obs, L.DECIMALS).tolist()
        assert shown[:-1] == want[:-1]
        assert shown[-1] == pytest.approx(want[-1], abs=1.5 * 10.0**-L.DECIMALS + 1e-12)
        with pytest.raises(AttributeError):
            a.observation = obs  # type: ignore[misc]
    assert set(pipe.run_raw(pipe.prepare([event(0, TEXTS[0])]))) == set(OUTPUT_LABELS)


def test_thirty_two_events_in_one_batch(pipe):
    """Speed is bench/'s business (python -m bench.model); here only that a full batch of
    mixed lengths comes back complete and in order."""
    events = [event(i, TEXTS[i % len(TEXTS)] + " ok" * (i % 7)) for i in range(32)]
    results = pipe.analyze(events)
    assert len(results) == 32
    assert [r.tokens for r in results] == [pipe.count_tokens(e.text) for e in events]


def test_empty_batch(pipe):
    assert pipe.analyze([]) == []


# ---- refusal and loading errors ----------------------------------------------------


def test_refuses_without_checkpoint_unless_allowed():
    with pytest.raises(CheckpointError, match="untrained"):
        Pipeline.load("small", checkpoint=None, allow_untrained=False)


def test_missing_encoder_path_raises_model_load_error():
    with pytest.raises(ModelLoadError, match=r"minilm.*/nonexistent/minilm.*not an existing model directory"):
        Pipeline.load("small", None, True, encoder_paths={"minilm": "/nonexistent/minilm"})
    with pytest.raises(ModelLoadError, match=r"e5-small.*/nonexistent/e5.bin"):
        Pipeline.load("small", None, True, encoder_paths={"e5-small": "/nonexistent/e5.bin"})


def test_directory_without_a_model_raises_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="minilm"):
        Pipeline.load("small", None, True, encoder_paths={"minilm": str(tmp_path)})


# ---- checkpoints -------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, RedHeartNet]:
    cfg = get_profile("small")
    net = RedHeartNet(cfg)
    with torch.no_grad():  # a deterministic change, so loading visibly matters
        net.fusion.logits.copy_(torch.tensor([1.0, -1.0, 0.5]))
        net.analyzers["emotion"].outputs.layers["emotions"].bias.add_(torch.arange(7.0))
    directory = tmp_path_factory.mktemp("ckpt") / "small"
    ckpt.save_checkpoint(net, cfg, directory, {"metrics": {"note": "test"}, "training_data": []})
    return directory, net


def test_checkpoint_round_trip(saved, pipe):
    directory, net = saved
    loaded = Pipeline.load("small", checkpoint=directory, allow_untrained=False, device="cpu")
    manifest = json.loads((directory / "manifest.json").read_text())
    assert loaded.trained and loaded.checkpoint_id == manifest["sha256"] == ckpt.sha256_file(directory / "model.safetensors")
    for (name, a), (_, b) in zip(loaded.net.state_dict().items(), net.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.status()["checkpoint"]["metrics"] == {"note": "test"}
    ours = loaded.analyze([event(0, TEXTS[1])])[0].analysis.emotion.emotions
    untrained = pipe.analyze([event(0, TEXTS[1])])[0].analysis.emotion.emotions
    assert ours != untrained


def test_saving_the_same_weights_again_gives_the_same_bytes(saved, tmp_path):
    """A seeded run's checkpoint id is its weights' sha256, so identical weights must give an
    identical file (safetensors writes several metadata keys in a random order per call)."""
    directory, net = saved
    cfg = get_profile("small")
    ids = {ckpt.save_checkpoint(net, cfg, tmp_path / str(i), {})["sha256"] for i in range(8)}
    assert ids == {ckpt.sha256_file(directory / "model.safetensors")}
    with pytest.raises(ValueError, match="one metadata key"):
        ckpt.save_tensors({"w": torch.zeros(2)}, tmp_path / "x.safetensors", {"a": "1", "b": "2"})


def _copy(saved, tmp_path) -> Path:
    directory = tmp_path / "copy"
    directory.mkdir()
    for f in ("model.safetensors", "manifest.json"):
        (directory / f).write_bytes((saved[0] / f).read_bytes())
    return directory


def test_tampered_weights_are_refused(saved, tmp_path):
    directory = _copy(saved, tmp_path)
    data = bytearray((directory / "model.safetensors").read_bytes())
    data[-1] ^= 0x01
    (directory / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        ckpt.load_checkpoint(directory, get_profile("small"))


def test_label_mismatch_is_refused(saved, tmp_path):
    directory = _copy(saved, tmp_path)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["labels"]["emotion.emotions"] = list(reversed(manifest["labels"]["emotion.emotions"]))
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="emotion.emotions"):
        ckpt.load_checkpoint(directory, get_profile("small"))


def test_profile_mismatch_is_refused_before_loading_encoders(saved):
    with pytest.raises(CheckpointError, match="profile 'small', not 'production'"):
        Pipeline.load("production", checkpoint=saved[0], allow_untrained=False)


def test_missing_checkpoint_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="manifest.json"):
        ckpt.load_checkpoint(tmp_path, get_profile("small"))
    with pytest.raises(CheckpointError, match="not a directory"):
        ckpt.load_checkpoint(tmp_path / "nope", get_profile("small"))


def test_reserved_manifest_keys_cannot_be_overridden(tmp_path):
    cfg = get_profile("small")
    with pytest.raises(ValueError, match="sha256"):
        ckpt.save_checkpoint(RedHeartNet(cfg), cfg, tmp_path, {"sha256": "x"})


def test_length_buckets_do_not_change_the_pooled_vectors(pipe):
    from pipeline.encoders import length_buckets

    assert length_buckets([3, 40, 16, 17, 600, 5]) == [[0, 2, 5], [3], [1], [4]]
    minilm = pipe.encoders[0]
    texts = ["short", "word " * 40, "a bit longer text than the first one", "word " * 300, "ok"]
    prepared = minilm.tokenize(texts)
    assert len(length_buckets(prepared["attention_mask"].sum(dim=1).tolist())) > 1
    together = minilm.forward(prepared)
    alone = torch.cat([minilm.forward(minilm.tokenize([t])) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
