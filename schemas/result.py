"""`ResultEvent` (v1): one per accepted input event, on `redheart.results` (docs/CONTRACT.md).

Every vector is a mapping keyed by the names in `schemas.labels`, validated to hold
exactly those keys, so consumers never index anonymous float lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema

from schemas import labels as L
from schemas._base import Strict, named


def _exact_keys(names: tuple[str, ...], lo: float, hi: float):
    def check(v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(names):
            missing = sorted(set(names) - set(v))
            extra = sorted(set(v) - set(names))
            raise ValueError(f"keys must be exactly {list(names)}; missing={missing} extra={extra}")
        for k, x in v.items():
            if not (lo - 1e-6 <= x <= hi + 1e-6):
                raise ValueError(f"{k}={x} outside [{lo}, {hi}]")
        return {n: v[n] for n in names}

    return check


def Named(names: tuple[str, ...], lo: float = 0.0, hi: float = 1.0) -> Any:
    """A `dict[str, float]` whose keys are exactly `names`, values in [lo, hi]."""
    return Annotated[
        dict[str, float],
        AfterValidator(_exact_keys(names, lo, hi)),
        WithJsonSchema(named(names, lo, hi)),
    ]


Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Spectrum = Annotated[
    list[Annotated[float, Field(ge=0.0)]],
    Field(
        min_length=L.DSP_BINS,
        max_length=L.DSP_BINS,
        description=f"{L.DSP_BINS} bins; bin k is frequency k/(2*{L.DSP_BINS}) cycles per event "
        "(k = 0 … 127, DC first).",
    ),
]


class EmotionAnalysis(Strict):
    emotions: Named(L.EMOTIONS) = Field(description="softmax over the seven emotions (sums to 1)")
    cultural: Named(L.CULTURAL) = Field(description="Korean cultural intensities, each a sigmoid")
    dominant: Literal[L.EMOTIONS] = Field(description="argmax of `emotions`")  # type: ignore[valid-type]


class BenthamAnalysis(Strict):
    scores: Named(L.BENTHAM_SCORES)
    context_weights: Named(L.BENTHAM_CONTEXT) | None = Field(
        default=None,
        description="affected party x aspect weights (absent with REDHEART_RESULT_DETAIL=compact)",
    )
    legal_risks: Named(L.LEGAL_RISKS)


class RegretAnalysis(Strict):
    regret_potential: Unit
    factors: Named(L.REGRET_FACTORS)
    counterfactuals: Named(L.COUNTERFACTUALS) = Field(
        description="how attractive each alternative to what happened looks"
    )


class SurdAnalysis(Strict):
    kinds: Named(L.SURD_KINDS) = Field(
        description="per-event distribution over the SURD information kinds (sums to 1)"
    )
    cues: Named(L.SURD_CUES)


class BiosignalAnalysis(Strict):
    """Measured from the event's signals (not learned); each present only when sent."""

    eeg: Named(L.EEG_BANDS) | None = Field(
        default=None, description="relative band power: share of 0.5-45 Hz Welch power (sums to 1)"
    )
    ecg: Named(L.ECG_FEATURES, 0.0, 1e6) | None = Field(
        default=None, description="heart rate (bpm), mean R-R, SDNN and RMSSD (ms), R peaks found"
    )
    gsr: Named(L.GSR_FEATURES, -1e9, 1e9) | None = Field(
        default=None,
        description="tonic level (signal units), phasic responses (count, per minute, mean amplitude)",
    )


class Analysis(Strict):
    emotion: EmotionAnalysis
    bentham: BenthamAnalysis
    regret: RegretAnalysis
    surd: SurdAnalysis
    image: Named(L.IMAGE_DESCRIPTOR, -1e3, 1e3) | None = Field(
        default=None, description="colour/texture descriptor of the event's image (present when it had one)"
    )
    audio: Named(L.AUDIO_FEATURES, -1e9, 1e9) | None = Field(
        default=None,
        description="voice tone: pitch_hz (median F0), pitch_std_hz, voiced_fraction, energy_rms, energy_db, "
        "speaking_rate_hz, spectral_centroid_hz, spectral_rolloff_hz, spectral_flatness, "
        "zero_crossing_rate, duration_s (present when the event had audio)",
    )
    biosignals: BiosignalAnalysis | None = Field(default=None, description="present when the event had biosignals")


class Integrated(Strict):
    overall_sentiment: Annotated[float, Field(ge=-1.0, le=1.0)] = Field(
        description="P(joy)+P(love)+P(surprise) - P(anger)-P(fear)-P(sadness)-P(disgust)"
    )
    ethical_score: Unit = Field(description="mean of the ten Bentham scores")
    regret_potential: Unit
    causal_clarity: Unit | Literal["insufficient_history"] = Field(
        description="redundant + unique share of the stream's SURD information about its next "
        "overall_sentiment (temporal.surd.shares), bias-corrected against a shuffle null: about 0 when "
        "the stream's past says nothing about its next sentiment; 'insufficient_history' until the "
        "stream's window holds enough events (the per-event estimate is analysis.surd.kinds)"
    )
    confidence: Unit = Field(
        description="fraction of the four analyses that produced a result x calibrated certainty"
    )


class Dsp(Strict):
    frequency: Spectrum = Field(description="magnitude spectrum")
    resonance: Spectrum = Field(description="resonance response")


class Utility(Strict):
    cache: Named(L.UTILITY_CACHE)
    performance: Named(L.UTILITY_PERFORMANCE)


class SignalSpectrum(Strict):
    magnitude: Spectrum = Field(description="Welch magnitude spectrum, max bin = 1")
    max_hz: Annotated[float, Field(gt=0.0)] = Field(description="bin k covers [k, k+1) * max_hz / 128 Hz")


class SignalSpectra(Strict):
    """Spectra of the event's own audio and biosignals (docs/PIPELINE.md, step 5); each present only when sent."""

    audio: SignalSpectrum | None = None
    eeg: SignalSpectrum | None = None
    ecg: SignalSpectrum | None = None
    gsr: SignalSpectrum | None = None


class Auxiliary(Strict):
    dsp: Dsp | None = Field(default=None, description="absent with REDHEART_RESULT_DETAIL=compact")
    utility: Utility
    spectra: SignalSpectra | None = Field(default=None, description="present when the event had audio or biosignals")


class Uncertainty(Strict):
    """production-advanced: spread of the scores over MC-dropout passes (one batched forward).
    The result's point values stay those of the deterministic forward."""

    method: Literal["mc_dropout"] = "mc_dropout"
    passes: Annotated[int, Field(ge=2)]
    emotion: Named(L.EMOTIONS, 0.0, 1.0) = Field(description="std of each emotion probability")
    bentham: Named(L.BENTHAM_SCORES, 0.0, 1.0) = Field(description="std of each Bentham score")
    regret: Named(("regret_potential",), 0.0, 1.0)
    integrated: Named(L.UNCERTAIN_INTEGRATED, 0.0, 2.0) = Field(
        description="std over passes of each integrated score computed per pass"
    )


class TokenWeight(Strict):
    token: str = Field(max_length=256, description="a word of the text (word pieces merged)")
    weight: Annotated[float, Field(ge=-1.0, le=1.0)] = Field(
        description="signed attribution / sum of |attributions| over the event's words"
    )
    index: Annotated[int, Field(ge=0)] = Field(description="the word's position among the event's words")


class Explanation(Strict):
    """production-advanced: which words drove each score (gradient x input on the encoder's
    word embeddings, through the whole network)."""

    encoder: str = Field(max_length=64, description="whose tokens these are")
    method: Literal["grad_x_input", "integrated_gradients"]
    steps: Annotated[int, Field(ge=1)]
    dominant_emotion: Literal[L.EMOTIONS]  # type: ignore[valid-type]
    scores: dict[Literal[L.EXPLAINED_SCORES], list[TokenWeight]] = Field(  # type: ignore[valid-type]
        description="per explained score, the top words by |weight|"
    )


class EventAnalysis(Strict):
    """What the pipeline computes for one event; the worker wraps it into a `ResultEvent`."""

    analysis: Analysis
    integrated: Integrated
    auxiliary: Auxiliary
    lang: str = Field(max_length=16, description="language used (given or detected); 'und' without text")
    tokens: int = Field(ge=0, description="text tokens the first encoder saw (0 without text)")
    uncertainty: Uncertainty | None = None
    explanation: Explanation | None = None


class StreamSurd(Strict):
    """SURD decomposition (bits) of the information the stream's lagged signals give
    about its next overall_sentiment, over the stream's recent window, corrected for
    small-sample bias against a shuffle null: the window is decomposed again with the target
    shuffled against the sources (39 fixed permutations); a part is kept only if at most one
    shuffle reaches it (p <= 0.05) and is reduced by the shuffles' mean (floored at 0), so
    independent noise reads as leak."""

    window_events: Annotated[int, Field(ge=1)]
    at_event: Annotated[int, Field(ge=1)] = Field(
        description="the stream's events_seen when this was computed (recomputed every 8 events)"
    )
    target: Literal["overall_sentiment"] = L.STREAM_SURD_TARGET
    redundant: Annotated[float, Field(ge=0.0)] = Field(description="bits shared by several sources (bias-corrected)")
    unique: Named(L.STREAM_SURD_SOURCES, 0.0, 64.0) = Field(
        description="bits only each lagged source gives (bias-corrected)"
    )
    synergistic: Annotated[float, Field(ge=0.0)] = Field(description="bits only sources together give (bias-corrected)")
    leak: Annotated[float, Field(ge=0.0)] = Field(
        description="H(target) minus the corrected parts: bits the sources do not tell beyond chance"
    )
    shares: Named(L.SURD_KINDS) = Field(description="each part / H(target); sums to 1")


class Forecast(Strict):
    """production-advanced: the Kalman filter propagated `steps` typical gaps ahead."""

    steps: Annotated[int, Field(ge=1)]
    dt_s: Annotated[float, Field(ge=0.0)] = Field(description="the stream's typical gap between events, seconds")
    horizon_s: Annotated[float, Field(ge=0.0)]
    state: Named(L.STATE_VECTOR, -1.0, 1.0) = Field(description="forecast mean (a random walk keeps the filtered mean)")
    variance: Named(L.STATE_VECTOR, 0.0, 1e9) = Field(description="forecast variance (grows with the horizon)")


class Temporal(Strict):
    """The stream's temporal state after this event (docs/PIPELINE.md, "Temporal state")."""

    state: Named(L.STATE_VECTOR, -1.0, 1.0) = Field(description="Kalman filtered state")
    variance: Named(L.STATE_VECTOR, 0.0, 1e9) = Field(description="diagonal of the state covariance")
    innovation: Named(L.STATE_VECTOR, -1e9, 1e9) = Field(description="observation - predicted state")
    surprise: Annotated[float, Field(ge=0.0)] = Field(
        description="sqrt(normalized innovation squared / 11); about 1 when the stream behaves as expected"
    )
    events_seen: Annotated[int, Field(ge=1)]
    surd: StreamSurd | None = Field(
        default=None,
        description="null until the window holds 64 events; recomputed every 8 events; bias-corrected",
    )
    dsp: Dsp | None = Field(
        default=None,
        description="spectra of the stream's emotion trajectory; null below 8 events; recomputed every 8 events",
    )
    forecast: Forecast | None = Field(default=None, description="production-advanced only")


class ModelInfo(Strict):
    profile: str
    mode: str
    checkpoint_id: str | None = Field(description="sha256 of the weights (with tuned encoder layers: of the weights' and the adapters' sha256s), or null when untrained")
    version: str = Field(description="worker/package version")
    trained: bool


class Latency(Strict):
    queue: Annotated[float, Field(ge=0.0)] = Field(description="ms from record timestamp to batch start")
    model: Annotated[float, Field(ge=0.0)] = Field(description="ms of the batch's model forward")
    total: Annotated[float, Field(ge=0.0)] = Field(description="ms from record timestamp to produce")


class RationaleInfo(Strict):
    """How the helper LLM's rationale came about (production-oss)."""

    status: Literal["ok", "unavailable"]
    reason: str | None = Field(
        default=None,
        max_length=64,
        description="why unavailable: timeout, circuit_open, http_<code>, connection_error, bad_response, ...",
    )
    latency_ms: Annotated[float, Field(ge=0.0)] | None = None
    model: str = Field(max_length=200, description="the helper LLM's model name")


class ResultEvent(Strict):
    schema_version: Literal["1.0"] = L.SCHEMA_VERSION
    event_id: str = Field(min_length=1, max_length=128)
    stream_id: str = Field(min_length=1, max_length=256)
    ts: datetime
    processed_at: datetime
    model: ModelInfo
    lang: str = Field(max_length=16)
    analysis: Analysis
    integrated: Integrated
    temporal: Temporal | None = Field(
        default=None, description="absent only when the stream has no state yet"
    )
    auxiliary: Auxiliary
    cached: bool = False
    latency_ms: Latency
    metadata: dict[str, Any] = Field(default_factory=dict, description="echoed from the input")
    uncertainty: Uncertainty | None = Field(default=None, description="production-advanced only")
    explanation: Explanation | None = Field(
        default=None, description="production-advanced only; null for events no explaining encoder reads"
    )
    rationale: str | None = Field(
        default=None,
        max_length=1000,
        description="production-oss: the helper LLM's short explanation, or 'unavailable' when it timed out, "
        "failed or its circuit breaker is open (absent in other modes)",
    )
    rationale_info: RationaleInfo | None = Field(default=None, description="production-oss: status of `rationale`")
