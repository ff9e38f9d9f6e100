"""The bench's random-weight stand-in for a production encoder (the hub weights are not
obtainable here) runs the architecture it claims: the kept config's shape, SDPA attention,
the dtype asked for, and the pipeline's pooling contract."""

from __future__ import annotations

import json

import torch

from bench.stand_ins import RandomWeightEncoder
from pipeline.config import PRODUCTION, SMALL
from pipeline.encoders import CONFIG_DIR, resolve_location


def test_stand_in_encoder_is_the_configured_architecture() -> None:
    from transformers import AutoTokenizer

    spec = next(e for e in PRODUCTION.encoders if e.name == "roberta")
    tokenizer = AutoTokenizer.from_pretrained(resolve_location(SMALL.encoders[0]), local_files_only=True)
    enc = RandomWeightEncoder(spec, torch.device("cpu"), tokenizer, torch.bfloat16)
    kept = json.loads((CONFIG_DIR / spec.config_file).read_text())  # type: ignore[operator]
    cfg = enc.model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size) == (
        kept["num_hidden_layers"], kept["hidden_size"], kept["vocab_size"]
    )
    assert cfg._attn_implementation == "sdpa"
    assert 120e6 < enc.parameter_count < 130e6  # roberta-base: 124.6M
    assert {p.dtype for p in enc.model.parameters()} == {torch.bfloat16}
    with torch.inference_mode():
        out = enc.encode(["a short text", "a somewhat longer text that has more tokens in it"])
    assert out.shape == (2, spec.dim) and out.dtype == torch.float32 and torch.isfinite(out).all()
