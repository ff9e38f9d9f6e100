"""Auxiliary modules read the backbone's shared representation (docs/PIPELINE.md).

- DSP: two non-negative 128-bin spectra (softplus), `frequency` and `resonance`.
  Per event, they are predicted from the text; the stream-level spectrum of the
  emotion trajectory belongs to the temporal state (`pipeline/temporal/`).
- Utility: 3 cache-control and 5 performance indicators (sigmoid).

There is no Kalman-noise module: nothing supervises such a head, so it could not give the
per-stream filter meaningful noise levels; the filter uses `pipeline.temporal.kalman.KalmanConfig`.
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
    "utility": (
        OutputSpec("cache", L.UTILITY_CACHE, "sigmoid"),
        OutputSpec("performance", L.UTILITY_PERFORMANCE, "sigmoid"),
    ),
}


class AuxiliaryModule(nn.Module):
    def __init__(self, kind: str, d_model: int, spec: StackSpec, dropout: float) -> None:
        super().__init__()
        self.kind = kind
        self.trunk = MLPStack(d_model, spec, dropout)
        self.outputs = OutputLayers(d_model, AUXILIARY_OUTPUTS[kind])

    def forward(self, shared: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.outputs(self.trunk(shared))
