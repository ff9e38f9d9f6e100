"""bfloat16 weights and activations (REDHEART_DTYPE; `auto` picks it on CUDA), exercised on
the CPU: the same code path as on a GPU — every tensor the pipeline builds must follow the
network's dtype, or a matmul refuses mixed inputs — and answers close to float32's. On the
shipped checkpoint: its fitted emotion reader is part of what must run in bfloat16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline import Pipeline
from pipeline.api import Advanced, PipelineError, _resolve_dtype
from schemas.input import InputEvent
from worker import samples
from worker.__main__ import shipped_checkpoint


def events() -> list[InputEvent]:
    return [
        InputEvent(event_id="en", stream_id="s", text="I finally got the job and I am so happy"),
        InputEvent(event_id="ko", stream_id="s", text="그때 화내지 말았어야 했는데 너무 후회돼요"),
        InputEvent.model_validate(
            {"event_id": "img", "stream_id": "s", "text": "look at this", "image": samples.image_png()}
        ),
        InputEvent.model_validate({"event_id": "bio", "stream_id": "s", "biosignals": {"eeg": samples.eeg()}}),
    ]


@pytest.fixture(scope="module")
def pipes() -> tuple[Pipeline, Pipeline]:
    """The shipped checkpoint (what `python -m worker run` serves), emotion reader included:
    an untrained network skips nothing either, but only trained buffers make the answers mean anything."""
    checkpoint = shipped_checkpoint("small")
    assert checkpoint is not None, "checkpoints/small ships with the repository"
    fp32 = Pipeline.load("small", checkpoint=checkpoint, allow_untrained=False, device="cpu", num_threads=2,
                         dtype="float32")
    bf16 = Pipeline.load("small", checkpoint=checkpoint, allow_untrained=False, device="cpu", num_threads=2,
                         dtype="bfloat16")
    assert fp32.net.reader.fitted and bool(fp32.net.reader.gated)
    return fp32, bf16


def test_auto_is_bfloat16_on_cuda_and_float32_on_cpu() -> None:
    assert _resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert _resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    with pytest.raises(PipelineError, match="float16"):
        _resolve_dtype("float16", torch.device("cpu"))


def test_bfloat16_weights_everywhere_and_answers_close_to_float32(pipes: tuple[Pipeline, Pipeline]) -> None:
    fp32, bf16 = pipes
    assert {p.dtype for p in bf16.net.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in bf16.encoders[0].model.parameters()} == {torch.bfloat16}  # type: ignore[attr-defined]
    assert bf16.status()["dtype"] == "bfloat16" and fp32.status()["dtype"] == "float32"
    a, b = fp32.analyze(events()), bf16.analyze(events())
    for x, y in zip(a, b):
        ex = np.array(list(x.analysis.emotion.emotions.values()))
        ey = np.array(list(y.analysis.emotion.emotions.values()))
        assert np.abs(ex - ey).max() < 0.05, (x.event_id, ex, ey)
        assert abs(x.integrated.overall_sentiment - y.integrated.overall_sentiment) < 0.05
        assert abs(x.integrated.ethical_score - y.integrated.ethical_score) < 0.05
        assert x.analysis.emotion.dominant == y.analysis.emotion.dominant or np.sort(ex)[-1] - np.sort(ex)[-2] < 0.05


def test_advanced_mode_runs_in_bfloat16(pipes: tuple[Pipeline, Pipeline]) -> None:
    """MC dropout and gradient explanations through a bfloat16 encoder and network."""
    _, bf16 = pipes
    bf16.advanced = Advanced(passes=4, top_k=3)
    try:
        out = bf16.analyze(events()[:1])
    finally:
        bf16.advanced = None
    assert out[0].uncertainty is not None and out[0].uncertainty.passes == 4
    assert out[0].explanation is not None
    assert all(np.isfinite(w.weight) for e in out[0].explanation.scores.values() for w in e)  # type: ignore[union-attr]
