"""Benchmark-only stand-ins for encoder weights that are not obtainable here.

The production profile's encoders (KcELECTRA-base, RoBERTa-base, KLUE-BERT-base) live on
the model hub, which these machines cannot reach. Throughput does not depend on weight
values, so for `bench.model` / `bench.e2e --profile production` this module builds each
encoder from its architecture config kept in `pipeline/encoder_configs/` with random
weights (transformers' own init), SDPA attention, exactly as `TransformersEncoder` would
run the real one. Tokenization uses the small profile's MiniLM fast tokenizer (BERT
WordPiece, 30,522 ids: valid ids for all three vocabularies); token counts per text then
differ by a few percent from the real tokenizers', which every report states.

The worker never imports this (NO FALLBACK): a configured model that fails to load stops
it. Only a bench process builds a `Pipeline` from these and hands it to `Worker`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pipeline.api import Pipeline, _resolve_device, _resolve_dtype
from pipeline.config import ProfileConfig, get_profile
from pipeline.encoders import TransformersEncoder, architecture_config, resolve_location, usable_length
from pipeline.model import RedHeartNet

STAND_IN_NOTE = (
    "encoders built from their kept architecture configs with random weights (bench-only stand-ins: the hub "
    "weights are not obtainable here; throughput does not depend on weight values), tokenized with MiniLM's "
    "WordPiece tokenizer"
)


class RandomWeightEncoder(TransformersEncoder):
    """`TransformersEncoder` with the architecture's random init instead of hub weights."""

    def __init__(self, spec: Any, device: torch.device, tokenizer: Any, dtype: torch.dtype = torch.float32) -> None:
        from transformers import AutoModel

        config = architecture_config(spec)
        config._attn_implementation = "sdpa"
        if tokenizer.vocab_size > config.vocab_size:
            raise ValueError(f"stand-in tokenizer has {tokenizer.vocab_size} ids, {spec.name} only {config.vocab_size}")
        self.spec = spec
        self.device = device
        self.location = f"random weights from {spec.config_file}"
        self.tokenizer = tokenizer
        torch.manual_seed(0)
        with torch.device(device):  # initialised where it runs: a GPU inits 100M+ weights far faster
            model = AutoModel.from_config(config)
        self.max_length = usable_length(spec, config)
        self.model = model.eval().requires_grad_(False).to(device, dtype)
        self.parameter_count = sum(p.numel() for p in self.model.parameters())
        self.parameter_count_source = "measured (random-weight stand-in)"
        self._init_fast_tokenizers()


def stand_in_pipeline(profile: str, device: str = "auto", num_threads: int | None = None, dtype: str = "auto") -> Pipeline:
    """The profile's pipeline with random-weight encoders and an untrained network
    (`trained=false` in every result, as with `--allow-untrained`)."""
    from transformers import AutoTokenizer

    cfg: ProfileConfig = get_profile(profile)
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    resolved = _resolve_device(device)
    compute = _resolve_dtype(dtype, resolved)
    # REDHEART_BENCH_TOKENIZER: a directory with MiniLM's tokenizer files alone (bench/gpu_prepare.sh),
    # for machines without the small profile's package
    location = os.environ.get("REDHEART_BENCH_TOKENIZER") or resolve_location(get_profile("small").encoders[0])
    tokenizer = AutoTokenizer.from_pretrained(location, use_fast=True, local_files_only=True)
    encoders = [RandomWeightEncoder(spec, resolved, tokenizer, compute) for spec in cfg.encoders]
    net = RedHeartNet(cfg).to(resolved, compute).eval().requires_grad_(False)
    return Pipeline(cfg, encoders, net, resolved, None, None, compute)  # type: ignore[arg-type]


def load_bench_pipeline(profile: str, device: str, num_threads: int | None, dtype: str = "auto",
                        checkpoint: Path | None = None) -> Pipeline:
    """What a bench runs: `small` with its real encoders (and `checkpoint`'s network, else an
    untrained one), `production` with the random-weight stand-ins above."""
    if profile == "small":
        return Pipeline.load("small", checkpoint=checkpoint, allow_untrained=checkpoint is None, device=device,
                             num_threads=num_threads, dtype=dtype)
    return stand_in_pipeline(profile, device, num_threads, dtype)
