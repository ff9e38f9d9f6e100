"""Step 2 of the pipeline (docs/PIPELINE.md): the shared backbone.

Its input is a short sequence, one token per source:

    [fused] [encoder 1] ... [encoder k] ([image] [audio] [biosignals] when present)

each plus a learned type embedding saying which source it is. A small transformer
encoder lets the sources attend to each other; four task projections of the `fused`
slot's output give one feature per task. Absent sources (no text, no image, ...) are
masked out of attention, so an event's result does not depend on what other events of
its batch carry; the `fused` slot is always present and is where the answer is read.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from schemas import labels as L

TASKS: tuple[str, ...] = ("emotion", "bentham", "regret", "surd")


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by {n_heads} heads")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`mask`: `[B, T]` bool, True where a token is present (None: all are)."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        attn_mask = None if mask is None else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm transformer block (attention, then MLP), as in nanoGPT but bidirectional."""

    def __init__(self, d_model: int, n_heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, ffn), nn.GELU(), nn.Linear(ffn, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class Backbone(nn.Module):
    def __init__(self, n_encoders: int, d_model: int, n_layers: int, n_heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        # Types: 0 = fused, 1..k = encoders, then one per modality.
        self.n_encoders = n_encoders
        self.type_embedding = nn.Embedding(1 + n_encoders + len(L.MODALITIES), d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, ffn, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.task_projections = nn.ModuleDict({task: nn.Linear(d_model, d_model) for task in TASKS})

    def forward(
        self,
        fused: torch.Tensor,
        projected: torch.Tensor,
        text_present: torch.Tensor | None = None,
        modalities: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """`fused` `[B, d]`, `projected` `[B, k, d]` -> one `[B, d]` feature per task,
        plus `shared` (the fused slot's output) for the auxiliary modules.

        `text_present` `[B]` bool masks the encoder tokens of events without text;
        `modalities` maps a name of `L.MODALITIES` to (token `[B, d]`, present `[B]`).
        Modalities no event of the batch has are simply not passed: a masked token and
        a missing one give the same answer."""
        b = fused.shape[0]
        tokens = [fused.unsqueeze(1), projected]
        types = list(range(1 + self.n_encoders))
        present = [torch.ones(b, 1, dtype=torch.bool, device=fused.device)]
        present.append(
            torch.ones(b, self.n_encoders, dtype=torch.bool, device=fused.device)
            if text_present is None
            else text_present.to(fused.device).bool().unsqueeze(1).expand(b, self.n_encoders)
        )
        for name, (token, here) in (modalities or {}).items():
            tokens.append(token.unsqueeze(1))
            types.append(1 + self.n_encoders + L.MODALITIES.index(name))
            present.append(here.to(fused.device).bool().unsqueeze(1))
        x = torch.cat(tokens, dim=1)
        mask = torch.cat(present, dim=1)
        all_present = text_present is None and not modalities
        type_ids = torch.tensor(types, device=x.device)
        x = self.drop(x + self.type_embedding(type_ids))
        for block in self.blocks:
            x = block(x, None if all_present else mask)
        shared = self.norm(x)[:, 0]
        features = {task: proj(shared) for task, proj in self.task_projections.items()}
        features["shared"] = shared
        return features
