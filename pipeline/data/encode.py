"""Encoder outputs cached on disk, so epochs (and `pipeline.eval`) never re-encode.

One `.npy` per (encoder, dataset): `<cache>/encodings/<encoder>/<dataset>-<key>.npy`,
where `key` hashes the encoder's name and location and every text in order. A changed
text, order or encoder gives another file; a stale file can never be read for new
texts. The cache root is `$REDHEART_CACHE_DIR`, else `$XDG_CACHE_HOME/redheart`, else
`~/.cache/redheart` (outside the repository, so nothing large lands in git).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.config import EncoderSpec, ProfileConfig
from pipeline.encoders import Encoder

BATCH = 64


def cache_root() -> Path:
    explicit = os.environ.get("REDHEART_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "redheart"


def cache_path(root: Path, spec: EncoderSpec, dataset: str, texts: list[str]) -> Path:
    digest = hashlib.sha256(f"{spec.name}\0{spec.kind}\0{spec.id_or_path}\0{spec.max_tokens}".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return root / "encodings" / spec.name / f"{dataset}-{digest.hexdigest()[:20]}.npy"


def encode_texts(encoder: Encoder, texts: list[str], desc: str) -> np.ndarray:
    """`[N, dim]` float32. Texts are batched by length (less padding, faster) and the
    result is put back in input order; the batching is fixed by the texts alone."""
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), BATCH), desc=desc, unit="batch", leave=False):
            idx = order[start : start + BATCH]
            out[idx] = encoder.encode([texts[i] for i in idx]).float().cpu().numpy()
    return out


def cached_encodings(
    specs: tuple[EncoderSpec, ...],
    get_encoder: Callable[[int], Encoder],
    dataset: str,
    texts: list[str],
    root: Path | None = None,
) -> list[np.ndarray]:
    """One `[N, dim]` array per encoder, from the cache or computed and stored.
    `get_encoder(i)` builds encoder i lazily: with a warm cache no model loads."""
    root = root or cache_root()
    arrays = []
    for i, spec in enumerate(specs):
        path = cache_path(root, spec, dataset, texts)
        if path.is_file():
            array = np.load(path)
            if array.shape != (len(texts), spec.dim):
                raise ValueError(f"cached encodings {path} have shape {array.shape}, expected {(len(texts), spec.dim)}")
        else:
            array = encode_texts(get_encoder(i), texts, f"encode {dataset} [{spec.name}]")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, array)
            os.replace(tmp, path)
        arrays.append(array)
    return arrays


def encode_corpus(cfg: ProfileConfig, parts: list, device: torch.device, num_threads: int | None) -> list[np.ndarray]:
    """Row-aligned `[N, dim]` per encoder of `cfg` for every part of a corpus (cached).
    Encoders are built only if some part is not cached yet."""
    from pipeline.encoders import build_encoder

    built: dict[int, Encoder] = {}

    def get_encoder(i: int) -> Encoder:
        if i not in built:
            built[i] = build_encoder(cfg.encoders[i], device, num_threads)
        return built[i]

    per_part = [cached_encodings(cfg.encoders, get_encoder, part.name, part.texts) for part in parts]
    return [np.concatenate([arrays[i] for arrays in per_part]) for i in range(len(cfg.encoders))]
