"""Building blocks shared by the heads, analyzers and auxiliary modules."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.config import StackSpec


class ResidualMLP(nn.Module):
    """Pre-norm residual MLP block: `x + W2 gelu(W1 LN(x))`. Pre-norm keeps deep
    stacks trainable without warm-up tricks."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.proj(nn.functional.gelu(self.fc(self.norm(x)))))


class MLPStack(nn.Module):
    """`spec.blocks` residual blocks then a LayerNorm: `[B, dim]` -> `[B, dim]`."""

    def __init__(self, dim: int, spec: StackSpec, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResidualMLP(dim, spec.hidden, dropout) for _ in range(spec.blocks))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
