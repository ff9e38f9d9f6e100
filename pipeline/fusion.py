"""Fusion of the encoders' pooled vectors: a learned weighted mean (docs/PIPELINE.md, "Step 1").

Each encoder has its own width and its own geometry, so each gets a projection to
`d_model` first; the fused vector is then a softmax-weighted mean of the projections.
The projections are also returned one by one: the backbone attends over them.
"""

from __future__ import annotations

import torch
from torch import nn


class EncoderFusion(nn.Module):
    def __init__(self, encoder_dims: list[int], d_model: int) -> None:
        super().__init__()
        self.projections = nn.ModuleList(nn.Linear(dim, d_model) for dim in encoder_dims)
        # Zeros -> equal weights at initialization; training learns which encoder to trust.
        self.logits = nn.Parameter(torch.zeros(len(encoder_dims)))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)

    def forward(self, pooled: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """`pooled[i]`: `[B, dim_i]` -> (fused `[B, d]`, projected `[B, n_encoders, d]`)."""
        if len(pooled) != len(self.projections):
            raise ValueError(f"expected {len(self.projections)} encoder outputs, got {len(pooled)}")
        projected = torch.stack([proj(x) for proj, x in zip(self.projections, pooled)], dim=1)
        fused = torch.einsum("e,bed->bd", self.weights(), projected)
        return fused, projected
