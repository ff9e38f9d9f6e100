"""Task heads and the four analyzers, with named outputs (docs/PIPELINE.md).

Per task: backbone task feature -> task head (residual stack) -> analyzer (deeper
residual stack) -> output layers. Every output layer is declared once, in
`ANALYZER_OUTPUTS`, with the label names of its units; the names are the field names
of `schemas.result` and the checkpoint manifest records them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from pipeline.backbone import TASKS
from pipeline.config import StackSpec
from pipeline.layers import MLPStack
from schemas import labels as L

Activation = Literal["softmax", "sigmoid", "softplus"]
# Per output field: logits -> the logits its activation reads (the emotion reader, bound to one batch).
Combine = dict[str, Callable[[torch.Tensor], torch.Tensor]]


@dataclass(frozen=True)
class OutputSpec:
    """One output layer: `field` is its name in the result, `labels` its units in order."""

    field: str
    labels: tuple[str, ...]
    activation: Activation


ANALYZER_OUTPUTS: dict[str, tuple[OutputSpec, ...]] = {
    "emotion": (
        OutputSpec("emotions", L.EMOTIONS, "softmax"),
        OutputSpec("cultural", L.CULTURAL, "sigmoid"),
    ),
    "bentham": (
        OutputSpec("scores", L.BENTHAM_SCORES, "sigmoid"),
        OutputSpec("context_weights", L.BENTHAM_CONTEXT, "sigmoid"),
        OutputSpec("legal_risks", L.LEGAL_RISKS, "sigmoid"),
    ),
    "regret": (
        OutputSpec("regret_potential", ("regret_potential",), "sigmoid"),
        OutputSpec("factors", L.REGRET_FACTORS, "sigmoid"),
        OutputSpec("counterfactuals", L.COUNTERFACTUALS, "sigmoid"),
    ),
    "surd": (
        OutputSpec("kinds", L.SURD_KINDS, "softmax"),
        OutputSpec("cues", L.SURD_CUES, "sigmoid"),
    ),
}

CERTAINTY = OutputSpec("certainty", ("certainty",), "sigmoid")


def activate(x: torch.Tensor, activation: Activation) -> torch.Tensor:
    if activation == "softmax":
        return torch.softmax(x, dim=-1)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    return nn.functional.softplus(x)


class OutputLayers(nn.Module):
    """Linear layers named by field, each followed by its activation.

    `temperature` divides the logits of the softmax outputs: 1 while training; afterwards
    `training.calibration` sets it (emotion) so the probabilities match how often the
    dominant emotion is right on validation rows. A buffer, so it ships in the checkpoint."""

    def __init__(self, d_model: int, outputs: tuple[OutputSpec, ...]) -> None:
        super().__init__()
        self.specs = {o.field: o for o in outputs}
        self.layers = nn.ModuleDict({o.field: nn.Linear(d_model, len(o.labels)) for o in outputs})
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, x: torch.Tensor, combine: Combine | None = None) -> dict[str, torch.Tensor]:
        """`combine`: per field, what turns the layer's logits into the logits its activation
        reads (the emotion reader's `EmotionReader.combine`, bound to the batch)."""
        out = {}
        for f, layer in self.layers.items():
            z = layer(x)
            if combine is not None and f in combine:
                z = combine[f](z)
            activation = self.specs[f].activation
            out[f] = activate(z / self.temperature if activation == "softmax" else z, activation)
        return out


class TaskHeads(nn.Module):
    """One residual stack per task, plus the calibration head: a sigmoid `certainty`
    read from all four task representations. Where human emotion labels exist it is
    trained to say whether the dominant emotion is right (a proper scoring rule), then
    Platt-scaled on validation rows (`certainty_scale`, `certainty_bias`: buffers, set by
    `training.calibration`); `integrate.confidence` multiplies it in (docs/MODEL_CARD.md)."""

    def __init__(self, d_model: int, spec: StackSpec, dropout: float) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({task: MLPStack(d_model, spec, dropout) for task in TASKS})
        self.certainty = nn.Linear(len(TASKS) * d_model, 1)
        self.register_buffer("certainty_scale", torch.ones(()))
        self.register_buffer("certainty_bias", torch.zeros(()))

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        hidden = {task: head(features[task]) for task, head in self.heads.items()}
        logit = self.certainty(torch.cat([hidden[t] for t in TASKS], dim=-1))
        certainty = torch.sigmoid(self.certainty_scale * logit + self.certainty_bias)
        return hidden, certainty


class Analyzer(nn.Module):
    """A deeper residual stack and the analyzer's named output layers."""

    def __init__(self, task: str, d_model: int, spec: StackSpec, dropout: float) -> None:
        super().__init__()
        self.task = task
        self.trunk = MLPStack(d_model, spec, dropout)
        self.outputs = OutputLayers(d_model, ANALYZER_OUTPUTS[task])

    def forward(self, x: torch.Tensor, combine: Combine | None = None) -> dict[str, torch.Tensor]:
        return self.outputs(self.trunk(x), combine)
