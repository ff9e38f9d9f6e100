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


def _reference(enc: TransformersEncoder, texts: list[str]) -> dict[str, torch.Tensor]:
    """What `tokenize` gave before it padded itself: the padding Rust tokenizer's batch."""
    encodings = enc._batcher.encode_batch(texts)
    out = {
        "input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
        "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long),
    }
    if enc._with_type_ids:
        out["token_type_ids"] = torch.tensor([e.type_ids for e in encodings], dtype=torch.long)
    return out


MIXED = [
    "short",
    "a somewhat longer English sentence, with punctuation; and a clause or two.",
    "그때 엄마한테 화내지 말았어야 했는데, 너무 후회돼요.",
    "🎉🔥 party tonight 😂😂 with 친구들 🍻",
    "word " * 700,  # longer than max_length: truncated
    "",
    "short",  # the same text twice in one batch
]


def _assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key


def test_tokenize_from_counted_ids_equals_the_padding_tokenizer(minilm: TransformersEncoder) -> None:
    """Counted texts come from the memo, the others are encoded here; padded rows, mask and
    type ids equal the padding tokenizer's batch whatever the mix, and counted ids leave the memo."""
    want = _reference(minilm, MIXED)
    assert want["input_ids"].shape[1] == minilm.max_length and "token_type_ids" in want
    minilm._memo.clear()
    _assert_same(minilm.tokenize(MIXED), want)  # nothing counted
    for text in MIXED:
        minilm.count_tokens(text)
    assert set(minilm._memo) == set(MIXED)
    counter, encoded = minilm._counter, []

    class Recording:  # the counter, recording what the batch encodes again
        def encode_batch(self, texts: list[str]) -> list:
            encoded.extend(texts)
            return counter.encode_batch(texts)

    minilm._counter = Recording()  # type: ignore[assignment]
    try:
        _assert_same(minilm.tokenize(MIXED), want)  # everything counted: nothing encoded twice
    finally:
        minilm._counter = counter
    assert encoded == [] and not minilm._memo
    for text in MIXED[1::2]:
        minilm.count_tokens(text)
    _assert_same(minilm.tokenize(MIXED), want)  # some counted
    assert not minilm._memo
    for subset in (MIXED[:1], MIXED[2:4], MIXED[3:5]):  # batches of other widths
        for text in subset[:1]:
            minilm.count_tokens(text)
        _assert_same(minilm.tokenize(subset), _reference(minilm, subset))


def test_tokenize_from_counted_ids_on_cuda_pads_like_the_padding_tokenizer(
    minilm: TransformersEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CUDA path (multiples of 8), checked on a CPU copy as above."""
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: t)
    enc = TransformersEncoder.__new__(TransformersEncoder)
    enc.__dict__.update(minilm.__dict__)
    enc.device = torch.device("cuda")
    enc._init_fast_tokenizers()
    for subset in (MIXED, MIXED[:4], MIXED[:1]):
        for text in subset[::2]:
            enc.count_tokens(text)
        got = enc.tokenize(subset)
        assert got["input_ids"].shape[1] % 8 == 0
        _assert_same(got, _reference(enc, subset))


def test_the_memo_is_bounded_oldest_first(minilm: TransformersEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TransformersEncoder, "MEMO_CAPACITY", 3)
    minilm._memo.clear()
    for text in ("one", "two", "three", "four"):
        minilm.count_tokens(text)
    assert list(minilm._memo) == ["two", "three", "four"]
    minilm.count_tokens("two")  # counted again: the newest
    minilm.count_tokens("five")
    assert list(minilm._memo) == ["four", "two", "five"]
    minilm._memo.clear()
