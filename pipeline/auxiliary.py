"""Step 5 of SPEC §2: auxiliary modules read the backbone's shared representation.

- DSP: two non-negative 128-bin spectra (softplus), `frequency` and `resonance`.
  Per event, they are predicted from the text; the stream-level spectrum of the
  emotion trajectory belongs to the temporal state (`pipeline/temporal/`).
- Kalman: positive process and observation noise levels, one per state-vector
  dimension (`labels.STATE_VECTOR`), for the per-stream filter. Not part of the
  result schema; kept in the raw output for the temporal state.
- Utility: 3 cache-control and 5 performance indicators (sigmoid).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.config import StackSpec
from pipeline.heads import OutputLayers, OutputSpec
from pipeline.layers import MLPStack
from schemas import labels as L

_BINS = tuple(f"bin_{k}" for k in range(L.DSP_BINS))

AUXILIARY_OUTPUTS: dict[str, tuple[OutputSpec, ...]] = {
    "dsp": (
        OutputSpec("frequency", _BINS, "softplus"),
        OutputSpec("resonance", _BINS, "softplus"),
    ),
    "kalman": (
        OutputSpec("process_noise", L.STATE_VECTOR, "softplus"),
        OutputSpec("observation_noise", L.STATE_VECTOR, "softplus"),
    ),
    "utility": (
        OutputSpec("cache", L.UTILITY_CACHE, "sigmoid"),
        OutputSpec("performance", L.UTILITY_PERFORMANCE, "sigmoid"),
    ),
}

# A noise variance of exactly zero would make the filter trust a prediction blindly.
MIN_NOISE = 1e-4


class AuxiliaryModule(nn.Module):
    def __init__(self, kind: str, d_model: int, spec: StackSpec, dropout: float) -> None:
        super().__init__()
        self.kind = kind
        self.trunk = MLPStack(d_model, spec, dropout)
        self.outputs = OutputLayers(d_model, AUXILIARY_OUTPUTS[kind])

    def forward(self, shared: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.outputs(self.trunk(shared))
        if self.kind == "kalman":
            out = {k: v + MIN_NOISE for k, v in out.items()}
        return out
