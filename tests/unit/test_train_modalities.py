"""Training support for modality tokens: labeled rows with audio/biosignals (and no text)
train the modality projections through the same loss; the model then tells them apart
from the modality token alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
import torch

from pipeline.config import SMALL
from pipeline.model import RedHeartNet
from training.data.dataset import PRESETS, build_corpus, net_inputs
from training.data.user_labels import LabelsFileError
from training.train import batch_loss
from worker import samples


def _rows() -> list[dict]:
    rows = []
    for i in range(8):
        rows.append({"audio": samples.voice_wav(pitch_hz=260.0 + 5 * i, seconds=1.0), "emotion": "joy"})
        rows.append({"audio": samples.voice_wav(pitch_hz=90.0 + 5 * i, seconds=1.0), "emotion": "sadness"})
        rows.append({"biosignals": {"ecg": samples.ecg(120.0 + i, seed=i)}, "emotion": "fear"})
    rows.append({"text": "a text row still works next to them", "emotion": "love",
                 "image": samples.image_png((30, 200, 60))})
    return rows


def test_multimodal_rows_train_the_modality_tokens(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in _rows()))
    corpus = build_corpus(PRESETS["tiny"], path)
    user = np.nonzero(corpus.source == "user_labels")[0]
    assert len(user) == 25
    assert set(corpus.modal) == {"audio", "biosignals", "image"}
    assert not corpus.text_present[user[:24]].any() and corpus.text_present[user[24]]
    # encoder features do not matter for rows without text (masked); zeros keep the test fast
    features = [np.zeros((len(corpus.texts), e.dim), dtype=np.float32) for e in SMALL.encoders]
    torch.manual_seed(0)  # dropout masks during training: a fixed seed, so the test is repeatable
    net = RedHeartNet(SMALL)
    before = {k: v.clone() for k, v in net.modalities.state_dict().items()}
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    rows = user[:24]
    net.train()
    losses = []
    for _ in range(120):
        loss, _ = batch_loss(net, corpus, features, rows)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert any(not torch.equal(before[k], v) for k, v in net.modalities.state_dict().items())
    net.eval()
    with torch.inference_mode():
        out = net(*net_inputs(corpus, features, rows, net.cfg.lexical))["emotion.emotions"].argmax(dim=1).tolist()
    want = [["joy", "sadness", "fear"][i % 3] for i in range(24)]
    from schemas import labels as L

    assert [L.EMOTIONS[j] for j in out] == want


def test_an_unusable_part_stops_training_with_its_row(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    bad = {"biosignals": {"ecg": {"sample_rate": 250.0, "values": [0.0] * 2500}}, "emotion": "joy"}
    path.write_bytes(orjson.dumps({"text": "fine", "emotion": "joy"}) + b"\n" + orjson.dumps(bad))
    with pytest.raises(LabelsFileError, match="row 2: ecg"):
        build_corpus(PRESETS["tiny"], path)
