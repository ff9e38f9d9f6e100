"""`TransformersEncoder` tokenizes with private copies of the Rust tokenizer (speed): the
batches and counts must be exactly what the `transformers` wrapper gives."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import SMALL
from pipeline.encoders import TransformersEncoder

TEXTS = [
    "I finally got the job!",
    "그때 엄마한테 화내지 말았어야 했는데, 너무 후회돼요.",
    "word " * 700,  # truncated at max_length
    "émojis 🎉 and Ünïcödé, tabs\tand\nnewlines",
    "a",
    "",
]


@pytest.fixture(scope="module")
def minilm() -> TransformersEncoder:
    return TransformersEncoder(SMALL.encoders[0], torch.device("cpu"))


def test_batches_equal_the_wrapper(minilm: TransformersEncoder) -> None:
    want = minilm.tokenizer(TEXTS, padding=True, truncation=True, max_length=minilm.max_length, return_tensors="pt")
    got = minilm.tokenize(TEXTS)
    assert set(got) == set(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    assert got["input_ids"].shape[1] == minilm.max_length


def test_counts_equal_the_wrapper_and_settings_stay_private(minilm: TransformersEncoder) -> None:
    for text in TEXTS:
        # a wrapper call with other settings in between must not change what the copies do
        minilm.tokenizer(text, padding="max_length", max_length=7, truncation=True)
        assert minilm.count_tokens(text) == len(minilm.tokenizer(text, truncation=True, max_length=minilm.max_length)["input_ids"])
    assert minilm.token_counts(minilm.tokenize(TEXTS)) == [minilm.count_tokens(t) for t in TEXTS]


def test_cuda_batches_pad_to_multiples_of_8_in_pinned_memory(
    minilm: TransformersEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CUDA path's batches, checked on a CPU copy (no GPU needed): padded to multiples
    of 8, and handed to `pin_memory` (recorded here; pinning itself needs a CUDA driver)."""
    pinned: list[tuple[int, ...]] = []

    def pin(t: torch.Tensor) -> torch.Tensor:
        pinned.append(tuple(t.shape))
        return t

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    enc = TransformersEncoder.__new__(TransformersEncoder)
    enc.__dict__.update(minilm.__dict__)
    enc.device = torch.device("cuda")
    enc._init_fast_tokenizers()
    want = minilm.tokenizer(TEXTS[:2], padding=True, truncation=True, max_length=minilm.max_length,
                            return_tensors="pt", pad_to_multiple_of=8)
    got = enc.tokenize(TEXTS[:2])
    assert got["input_ids"].shape[1] % 8 == 0
    assert len(pinned) == len(got) and all(shape == tuple(got["input_ids"].shape) for shape in pinned)
    for key in want:
        assert torch.equal(got[key], want[key]), key
