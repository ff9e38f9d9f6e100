"""Tuned encoder layers: low-rank deltas (LoRA) merged into a text encoder's weights at load.

Why: frozen encoders cap what the heads can learn (docs/MODEL_CARD.md): a linear reader over
their pooled vectors cannot separate "regret" from "anger" in a sentence the encoder was never
asked to tell apart. `training.tune` therefore tunes the top layers of each BERT-family text
encoder on the human-labeled rows, as low-rank updates `W + (alpha / rank) * B @ A` of the
attention and feed-forward matrices. Only the factors ship with the checkpoint
(`ADAPTER_FILE`, ~1 MB for both `small` encoders where the tuned layers themselves would be
~14 MB), and they are merged into the weights when the encoder loads, so serving runs the
very same network, at the same cost, as an untuned encoder.

The file is a safetensors file: per tuned matrix, `<encoder>.layer.<i>.<module>.lora_A`
`[rank, in]` and `.lora_B` `[out, rank]`; its metadata holds `scale` (alpha / rank). The
checkpoint's manifest records the file's sha256 (`pipeline.weights`), and any mismatch (a
missing module, a wrong shape, an encoder the file does not know) is a `ModelLoadError`:
an adapter that does not fit its encoder must never load half-way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from pipeline.errors import ModelLoadError

ADAPTER_FILE = "encoder_adapters.safetensors"
# The BERT layer's six matrices (their module paths inside `encoder.layer.<i>`).
TARGETS: tuple[str, ...] = ("attention.self.query", "attention.self.key", "attention.self.value",
                            "attention.output.dense", "intermediate.dense", "output.dense")


def bert_of(model: nn.Module) -> nn.Module:
    """The `BertModel` inside an encoder's model (`TorchE5` wraps one as `.bert`)."""
    inner = getattr(model, "bert", model)
    if not hasattr(inner, "encoder") or not hasattr(inner.encoder, "layer"):
        raise ModelLoadError(f"{type(model).__name__} is not a BERT-family encoder; it cannot take adapters")
    return inner


def key(encoder: str, layer: int, target: str, factor: str) -> str:
    return f"{encoder}.layer.{layer}.{target}.lora_{factor}"


def read_adapters(path: str | Path, encoder: str) -> tuple[dict[str, torch.Tensor], float]:
    """This encoder's factors (keys without the encoder's prefix) and the file's scale."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            prefix = encoder + "."
            tensors = {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    except Exception as exc:  # re-raised as the named error, with the cause chained
        raise ModelLoadError(f"encoder {encoder!r}: cannot read adapters {str(path)!r}: {exc}") from exc
    if not tensors:
        raise ModelLoadError(f"encoder {encoder!r}: adapter file {str(path)!r} has no layers for it")
    try:
        scale = float(meta["scale"])
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(f"adapter file {str(path)!r}: metadata has no numeric 'scale'") from exc
    return tensors, scale


def merge_adapters(model: nn.Module, path: str | Path, encoder: str) -> int:
    """Add `scale * B @ A` to every matrix the file tunes; returns how many. Runs in float32,
    before the encoder is cast to its serving dtype, so the merge itself loses nothing."""
    tensors, scale = read_adapters(path, encoder)
    bert = bert_of(model)
    merged = 0
    for name in sorted(k for k in tensors if k.endswith(".lora_A")):
        module_path = name[: -len(".lora_A")]
        a, b = tensors[name], tensors.get(module_path + ".lora_B")
        if b is None:
            raise ModelLoadError(f"encoder {encoder!r}: adapter {module_path!r} has lora_A but no lora_B")
        try:
            linear = bert.get_submodule("encoder." + module_path)
        except AttributeError as exc:
            raise ModelLoadError(f"encoder {encoder!r}: adapter names {module_path!r}, which the model lacks") from exc
        weight = getattr(linear, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.shape != (b.shape[0], a.shape[1]) or a.shape[0] != b.shape[1]:
            raise ModelLoadError(f"encoder {encoder!r}: adapter {module_path!r} has shapes A {tuple(a.shape)}, "
                                 f"B {tuple(b.shape)}; the weight is {tuple(getattr(weight, 'shape', ()))}")
        with torch.no_grad():
            weight += (scale * (b.float() @ a.float())).to(weight.dtype)
        merged += 1
    if merged * 2 != len(tensors):
        raise ModelLoadError(f"encoder {encoder!r}: adapter file {str(path)!r} has unpaired factors")
    return merged
