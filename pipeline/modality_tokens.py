"""Non-text parts as backbone tokens (step 2 of docs/PIPELINE.md: one token per present modality).

Each modality arrives as a fixed-width vector of named, scaled features (see
`pipeline.modalities.parts.vectors`) or, for images in `production`, a vision encoder's
pooled output. A two-layer MLP lifts it to `d_model`; the backbone adds the modality's
type embedding and attends over whichever tokens are present, so any subset of
text/image/audio/biosignals works with the same weights.
"""

from __future__ import annotations

import torch
from torch import nn

from schemas import labels as L

# Width of the biosignals vector: each signal's features plus a presence flag, so
# "no ECG" is distinguishable from "an ECG whose features are all zero".
BIOSIGNAL_WIDTH = len(L.EEG_BANDS) + len(L.ECG_FEATURES) + len(L.GSR_FEATURES) + len(L.BIOSIGNALS)


def modality_widths(image_dim: int) -> dict[str, int]:
    """Input width per modality, in `L.MODALITIES` order."""
    return {"image": image_dim, "audio": len(L.AUDIO_FEATURES), "biosignals": BIOSIGNAL_WIDTH}


class ModalityTokens(nn.Module):
    def __init__(self, image_dim: int, d_model: int, dropout: float) -> None:
        super().__init__()
        self.projections = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.LayerNorm(width), nn.Linear(width, d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, d_model)
                )
                for name, width in modality_widths(image_dim).items()
            }
        )

    def forward(self, name: str, features: torch.Tensor) -> torch.Tensor:
        """`[B, width]` -> `[B, d_model]`."""
        return self.projections[name](features)
