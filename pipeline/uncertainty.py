"""Uncertainty by Monte-Carlo dropout (mode `production-advanced`, docs/PIPELINE.md).

Gal & Ghahramani (2016): running a dropout network with its dropout left on samples from
an approximate posterior predictive; the spread of the outputs over passes is the
model's (epistemic) uncertainty. Here:

- **One forward for all passes.** The `B` events are repeated `N` times along the batch
  dimension (event-major: rows `b*N .. b*N+N-1` are event `b`'s passes), so `N` passes
  cost one forward of `B*N` rows, not `N` forwards: one kernel launch sequence, which a
  GPU absorbs at small `B`; a CPU has no idle width to fill (measured, small net, B=32,
  1 thread: 8 passes 6.7x one eval forward, 28 ms vs 4.2 ms). The encoders are NOT
  rerun: their pooled vectors are deterministic (frozen, no dropout in eval mode), so
  only our own network is sampled.
- **Only dropout is switched on.** `dropout_active` puts the network in eval mode and then
  sets the `training` flag of the dropout-carrying modules alone: `nn.Dropout*` and modules
  that call a functional dropout with a float `self.dropout` when `self.training`
  (`backbone.SelfAttention`, `nn.MultiheadAttention`). The flag is set on the module
  itself, never recursively, so e.g. a BatchNorm child would stay in eval mode. LayerNorm
  has no train/eval difference. Every module's previous flag is restored on exit, also
  when the forward raises.
- **Reproducible.** The dropout masks come from the device's default generator, seeded
  with `seed` inside `torch.random.fork_rng`: the same batch with the same seed gives the
  same numbers, and the caller's global RNG stream is left exactly as it was. A given
  event's masks depend on its row in the batch, so its std differs (within sampling
  noise) when it shares a batch with other events; that is inherent to batching passes.
- **One device->host copy.** Means, stds and the per-pass samples that the integrated
  scores need are concatenated on the device and copied once.
- **Integrated scores per pass.** The std of `overall_sentiment`, `ethical_score`,
  `regret_potential` and `confidence` is the std over passes of `integrate.integrate`
  applied to each pass, not a propagation of per-output stds (the seven emotion
  probabilities are correlated through the softmax, so propagating them independently
  would be wrong).

Stds are sample stds (Bessel-corrected, `N - 1`), computed on deviations from the first
pass (no cancellation when the spread is tiny next to the value; bit-identical passes give
exactly 0). With dropout p = 0 the std is at float32 rounding level (~1e-8), not exactly
0: CPU kernels are not bitwise invariant to a row's position in the batch (vectorized
loops vs their scalar tails), even in plain eval mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.integrate import integrate
from schemas import labels as L

# What `integrate.integrate` reads: kept per pass so integrated scores can be computed per pass.
INTEGRATE_INPUTS: tuple[str, ...] = (
    "emotion.emotions",
    "bentham.scores",
    "regret.regret_potential",
    "surd.kinds",
    "calibration.certainty",
)

# Integrated scores whose std the result carries. `causal_clarity` is not among them: in the
# result it is the stream-level SURD share (or "insufficient_history"), not a network output.
INTEGRATED_STD: tuple[str, ...] = ("overall_sentiment", "ethical_score", "regret_potential", "confidence")

RowForward = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


def take_rows(obj: Any, index: torch.Tensor) -> Any:
    """`obj` with every tensor's rows (dim 0) gathered by `index`, recursing into lists,
    tuples and dicts; None and non-tensors pass through. This is how a forward's inputs
    (pooled list, optional modality tensors, masks) are repeated for the MC passes or the
    integrated-gradients path without this module knowing the forward's signature."""
    if isinstance(obj, torch.Tensor):
        return obj.index_select(0, index.to(obj.device))
    if isinstance(obj, list):
        return [take_rows(v, index) for v in obj]
    if isinstance(obj, tuple):
        return tuple(take_rows(v, index) for v in obj)
    if isinstance(obj, dict):
        return {k: take_rows(v, index) for k, v in obj.items()}
    return obj


def rows_forward(net: nn.Module, *args: Any, **kwargs: Any) -> RowForward:
    """A `RowForward` for `net(*args, **kwargs)`: called with a row index, it runs the net
    on those rows of every batch-dim tensor in the arguments, e.g. `rows_forward(net,
    pooled, text_present, modalities)` (`modalities`: name -> (features, present), gathered
    inside the dict and tuples); nothing here changes when the forward gains arguments."""

    def forward(index: torch.Tensor) -> Mapping[str, torch.Tensor]:
        return net(*take_rows(args, index), **take_rows(kwargs, index))

    return forward


def _uses_dropout(module: nn.Module) -> bool:
    if isinstance(module, (nn.modules.dropout._DropoutNd, nn.MultiheadAttention)):
        return True
    # Modules that call F.dropout / SDPA's dropout_p themselves with `self.dropout if self.training`.
    p = getattr(module, "dropout", None)
    return isinstance(p, float)


@contextlib.contextmanager
def dropout_active(net: nn.Module) -> Iterator[None]:
    """Eval mode everywhere except the dropout-carrying modules (see the module docstring);
    every module's previous `training` flag is restored afterwards, exception or not."""
    saved = [(m, m.training) for m in net.modules()]
    try:
        net.eval()
        for m in net.modules():
            if _uses_dropout(m):
                m.training = True  # the flag only: `m.train()` would recurse into children
        yield
    finally:
        for m, mode in saved:
            m.training = mode


@contextlib.contextmanager
def seeded(device: torch.device, seed: int) -> Iterator[None]:
    """The device's default generator seeded with `seed`, the caller's RNG state restored
    afterwards (`fork_rng` saves and restores CPU and, for CUDA, that device's state)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index], device_type="cuda"):
            torch.default_generator.manual_seed(seed)
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
            yield
    else:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield


def _device_of(net: nn.Module) -> torch.device:
    for p in net.parameters():
        return p.device
    return torch.device("cpu")


@dataclass(frozen=True)
class MCDropout:
    """MC-dropout statistics for a batch of `B` events (numpy, on the host).

    mean, std: per output key (`model.OUTPUT_LABELS` keys), `[B, n]`.
    samples: per key of `INTEGRATE_INPUTS`, every pass, `[B, N, n]`.
    """

    passes: int
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    samples: dict[str, np.ndarray]

    def __len__(self) -> int:
        return next(iter(self.mean.values())).shape[0]


def _mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[B, N, n]` -> mean and sample std over dim 1, on deviations from the first pass."""
    first = x[:, :1]
    dev = x - first
    return first[:, 0] + dev.mean(dim=1), dev.std(dim=1, correction=1)


def mc_dropout(
    net: nn.Module,
    forward: RowForward,
    batch: int,
    passes: int,
    *,
    seed: int = 0,
    sample_keys: Sequence[str] = INTEGRATE_INPUTS,
) -> MCDropout:
    """`passes` MC-dropout passes over `batch` events, in one forward of `batch * passes` rows.

    `forward(index)` must run `net` on the rows `index` (a LongTensor on the net's device)
    of the batch's inputs; build it with `rows_forward(net, pooled, ...)`. `net` is only
    used to switch its dropout on (and to find its device): `forward` must call this `net`.
    Wrap the call in an autocast context to run it in bf16; statistics are taken in fp32.
    """
    if passes < 2:
        raise ValueError(f"MC dropout needs at least 2 passes for a std, got {passes}")
    if batch < 1:
        raise ValueError(f"empty batch ({batch})")
    device = _device_of(net)
    index = torch.arange(batch, device=device).repeat_interleave(passes)
    with torch.inference_mode(), seeded(device, seed), dropout_active(net):
        out = forward(index)
        keys = list(out)
        missing = [k for k in sample_keys if k not in out]
        if missing:
            raise KeyError(f"forward's outputs lack {missing}")
        stats = {k: _mean_std(out[k].float().view(batch, passes, -1)) for k in keys}
        widths = [out[k].shape[1] for k in keys]
        sample_widths = [out[k].shape[1] * passes for k in sample_keys]
        pieces = [stats[k][0] for k in keys] + [stats[k][1] for k in keys]
        pieces += [out[k].float().reshape(batch, -1) for k in sample_keys]
        flat = torch.cat(pieces, dim=1).cpu().numpy()  # the one device->host copy
    parts = np.split(flat, np.cumsum(widths + widths + sample_widths)[:-1], axis=1)
    n = len(keys)
    mean = dict(zip(keys, parts[:n]))
    std = dict(zip(keys, parts[n : 2 * n]))
    samples = {k: p.reshape(batch, passes, -1) for k, p in zip(sample_keys, parts[2 * n :])}
    return MCDropout(passes, mean, std, samples)


def integrated_samples(mc: MCDropout) -> dict[str, np.ndarray]:
    """`integrate.integrate` applied to every pass: per integrated score, `[B, N]`."""
    b, n = len(mc), mc.passes
    flat = {k: v.reshape(b * n, -1) for k, v in mc.samples.items()}
    return {k: v.reshape(b, n) for k, v in integrate(flat).items()}


def _sample_std(x: np.ndarray) -> np.ndarray:
    """`[B, N]` -> `[B]`, as `_mean_std` (deviations from the first pass, ddof 1)."""
    return (x - x[:, :1]).std(axis=1, ddof=1)


def score_std(mc: MCDropout) -> list[dict[str, Any]]:
    """Per event, the stds the result carries (plain floats, named)::

        {"passes": N,
         "emotion":    {joy, love, surprise, anger, fear, sadness, disgust: std},
         "bentham":    {the 10 BENTHAM_SCORES: std},
         "regret":     {"regret_potential": std},
         "integrated": {overall_sentiment, ethical_score, regret_potential, confidence: std}}

    Per-output stds are over the passes' outputs; integrated stds over the integrated
    scores computed per pass. They describe the spread of the sampled outputs around the
    MC mean; the result's point values stay those of the deterministic eval forward.
    """
    integrated = {k: _sample_std(v) for k, v in integrated_samples(mc).items() if k in INTEGRATED_STD}
    emotion, bentham = mc.std["emotion.emotions"], mc.std["bentham.scores"]
    regret = mc.std["regret.regret_potential"][:, 0]
    return [
        {
            "passes": mc.passes,
            "emotion": dict(zip(L.EMOTIONS, emotion[i].tolist())),
            "bentham": dict(zip(L.BENTHAM_SCORES, bentham[i].tolist())),
            "regret": {"regret_potential": float(regret[i])},
            "integrated": {k: float(integrated[k][i]) for k in INTEGRATED_STD},
        }
        for i in range(len(mc))
    ]
