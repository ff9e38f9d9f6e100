"""The network's weights directory: `DIR/model.safetensors` + `DIR/manifest.json` (docs/PIPELINE.md).

(Not to be confused with `worker.checkpoint`, the Kafka offsets checkpoint.)

The manifest says what the weights are for: the profile, the encoders the fusion
layer was trained on, the label names of every output layer (in unit order), and the
sha256 of the weights file. Loading verifies all of it before a single weight is used,
and refuses with a `CheckpointError` that names the mismatch: a model trained on other
labels, another profile, or a file altered after training must never answer silently.
Training adds what it knows (data, supervision per head, metrics) as extra keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pipeline.config import ProfileConfig
from pipeline.errors import CheckpointError
from pipeline.lexical import SCHEME as LEXICAL_SCHEME
from pipeline.model import OUTPUT_LABELS, RedHeartNet
from schemas import labels as L

WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
# Manifest key of a checkpoint whose encoders' top layers were tuned: {file, sha256, encoders, ...}.
ADAPTERS_KEY = "encoder_adapters"
FORMAT_VERSION = 1
RESERVED_KEYS = frozenset({"format_version", "profile", "encoders", "labels", "sha256", "weights_file", "parameter_counts"})


def save_tensors(tensors: dict[str, torch.Tensor], path: Path | str, metadata: dict[str, str]) -> None:
    """Write a safetensors file whose bytes depend only on its content, atomically.

    safetensors serialises the metadata from a hash map in a random order per call, so a file
    with two metadata keys differs in bytes (and in the sha256 its manifest vouches for) from
    one saved from the very same tensors a moment later; one key keeps a seeded run's files,
    and their sha256, identical."""
    if len(metadata) > 1:
        raise ValueError(f"one metadata key at most (got {sorted(metadata)}): more are written in random order")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _encoders_of(cfg: ProfileConfig) -> list[dict[str, Any]]:
    # Names and widths, not paths: the same model may be mounted at another path. The lexical
    # encoder's weights are ours, so its hashing scheme is part of what they mean.
    frozen: list[dict[str, Any]] = [{"name": e.name, "kind": e.kind, "dim": e.dim} for e in cfg.encoders]
    if cfg.lexical is None:
        return frozen
    lex = cfg.lexical
    return [*frozen, {"name": "lexical", "kind": "hashed-ngrams", "dim": lex.dim, "buckets": lex.buckets,
                      "max_ids": lex.max_ids, "scheme": LEXICAL_SCHEME}]


def _labels() -> dict[str, list[str]]:
    return {key: list(names) for key, names in OUTPUT_LABELS.items()}


def save_checkpoint(
    net: RedHeartNet, cfg: ProfileConfig, directory: Path | str, extra_manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write weights, then the manifest that vouches for them; returns the manifest.

    The manifest is written last (via a temporary file and rename) so a directory
    with a manifest always has the weights it describes."""
    extra = dict(extra_manifest or {})
    clash = sorted(RESERVED_KEYS & set(extra))
    if clash:
        raise ValueError(f"extra_manifest may not set reserved keys {clash}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_tensors(state, weights, metadata={"profile": cfg.name})  # the format version is the manifest's
    manifest = {
        "format_version": FORMAT_VERSION,
        "profile": cfg.name,
        "schema_version": L.SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "encoders": _encoders_of(cfg),
        "labels": _labels(),
        "parameter_counts": net.parameter_counts(),
        "weights_file": WEIGHTS_FILE,
        "sha256": sha256_file(weights),
        **extra,
    }
    tmp = directory / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False))
    os.replace(tmp, directory / MANIFEST_FILE)
    return manifest


def read_manifest(directory: Path | str) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise CheckpointError(f"checkpoint {directory}: no {MANIFEST_FILE}")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {directory}: {MANIFEST_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise CheckpointError(f"checkpoint {directory}: {MANIFEST_FILE} is not a JSON object")
    return manifest


def verify_manifest(manifest: dict[str, Any], cfg: ProfileConfig, directory: Path | str) -> None:
    """Profile, encoders and label names must match what this code would build."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {directory}: format_version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    if manifest.get("profile") != cfg.name:
        raise CheckpointError(
            f"checkpoint {directory}: trained for profile {manifest.get('profile')!r}, not {cfg.name!r}"
        )
    if manifest.get("encoders") != _encoders_of(cfg):
        raise CheckpointError(
            f"checkpoint {directory}: encoders {manifest.get('encoders')!r} differ from profile "
            f"{cfg.name!r}'s {_encoders_of(cfg)!r}"
        )
    theirs = manifest.get("labels")
    ours = _labels()
    if not isinstance(theirs, dict):
        raise CheckpointError(f"checkpoint {directory}: manifest has no label names")
    for key in sorted(set(ours) | set(theirs)):
        if theirs.get(key) != ours.get(key):
            raise CheckpointError(
                f"checkpoint {directory}: labels of output {key!r} are {theirs.get(key)!r}, "
                f"this code expects {ours.get(key)!r}"
            )


def load_checkpoint(directory: Path | str, cfg: ProfileConfig) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verified `(state_dict, manifest)`; raises `CheckpointError` on any mismatch."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint {directory}: not a directory")
    manifest = read_manifest(directory)
    verify_manifest(manifest, cfg, directory)
    weights = directory / manifest.get("weights_file", WEIGHTS_FILE)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {directory}: weights file {weights.name} is missing")
    actual = sha256_file(weights)
    if actual != manifest.get("sha256"):
        raise CheckpointError(
            f"checkpoint {directory}: sha256 of {weights.name} is {actual}, manifest says {manifest.get('sha256')!r} "
            "(altered or partially written weights)"
        )
    adapter_file(manifest, directory)  # verified here too, before anything loads
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # re-raised as the named error, with the cause chained
        raise CheckpointError(f"checkpoint {directory}: cannot read {weights.name}: {exc}") from exc
    return state, manifest


def adapter_file(manifest: dict[str, Any], directory: Path | str) -> tuple[str | None, list[str]]:
    """The checkpoint's tuned-encoder file (`pipeline.adapters`) and the encoders it tunes,
    verified against the manifest's sha256; (None, []) for a checkpoint over frozen encoders."""
    entry = manifest.get(ADAPTERS_KEY)
    if entry is None:
        return None, []
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(entry.get("encoders"), list):
        raise CheckpointError(f"checkpoint {directory}: manifest {ADAPTERS_KEY!r} needs 'file', 'sha256' and 'encoders'")
    if Path(entry["file"]).name != entry["file"]:
        raise CheckpointError(f"checkpoint {directory}: adapter file {entry['file']!r} must be a file in the checkpoint")
    path = Path(directory) / entry["file"]
    if not path.is_file():
        raise CheckpointError(f"checkpoint {directory}: adapter file {entry['file']} is missing")
    actual = sha256_file(path)
    if actual != entry.get("sha256"):
        raise CheckpointError(f"checkpoint {directory}: sha256 of {entry['file']} is {actual}, manifest says "
                              f"{entry.get('sha256')!r} (altered or partially written adapters)")
    return str(path), [str(name) for name in entry["encoders"]]


def checkpoint_id(manifest: dict[str, Any]) -> str:
    """What results name the checkpoint by (`model.checkpoint_id`, and the worker's result cache
    key): the weights' sha256, or, where the checkpoint also tunes encoder layers, the sha256 of
    both files' sha256s, since the same network weights over other adapters answer differently."""
    entry = manifest.get(ADAPTERS_KEY)
    if not isinstance(entry, dict):
        return str(manifest["sha256"])
    return hashlib.sha256(f"{manifest['sha256']}+{entry['sha256']}".encode()).hexdigest()


def with_checkpoint_adapters(cfg: ProfileConfig, manifest: dict[str, Any], directory: Path | str) -> ProfileConfig:
    """`cfg` with the encoders the checkpoint tuned reading its adapter file."""
    path, names = adapter_file(manifest, directory)
    try:
        return cfg.with_adapters(path, names)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {directory}: {exc}") from exc


def upgraded(state: dict[str, torch.Tensor], net: RedHeartNet) -> dict[str, torch.Tensor]:
    """`state` in today's layout, serving exactly what it served:
    - a checkpoint written before the emotion reader chose per language (2026-12-03) has one
      `reader.scale` for every language and no `reader.mix` or `reader.net_temperature`: it
      summed, which is today's reader with that scale for every language and nothing mixed in;
    - one written before the reader read n-grams (2026-12-03) has no `reader.ngram_weight` or
      `reader.ngram_idf`: a zero n-gram block reads nothing."""
    if "reader.scale" in state and state["reader.scale"].dim() == 0 and "reader.mix" not in state:
        n = net.reader.scale.numel()
        state = {**state, "reader.scale": state["reader.scale"].expand(n).clone(),
                 "reader.mix": torch.zeros(n, dtype=state["reader.scale"].dtype),
                 "reader.net_temperature": torch.ones(n, dtype=state["reader.scale"].dtype)}
    reader = net.reader
    if reader.ngram_weight is not None and "reader.weight" in state and "reader.ngram_weight" not in state:
        dtype = state["reader.weight"].dtype
        state = {**state, "reader.ngram_weight": torch.zeros(reader.ngram_weight.shape, dtype=dtype),
                 "reader.ngram_idf": torch.ones(reader.ngram_idf.shape, dtype=dtype)}
    return state


def load_into(net: RedHeartNet, state: dict[str, torch.Tensor], directory: Path | str) -> None:
    """`load_state_dict(strict=True)` of `upgraded(state)`, with shape or name mismatches as
    `CheckpointError`."""
    try:
        net.load_state_dict(upgraded(state, net), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {directory}: weights do not fit profile {net.cfg.name!r}: {exc}") from exc
