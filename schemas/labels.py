"""Label names of every vector the network emits.

They live in `schemas/` because they are part of the wire contract: a result's
mappings are keyed by these names, the pipeline's heads are sized from them, and a
checkpoint's manifest records them so a model trained on other labels is refused.
Order matters: it is the order of the head's output units.
"""

from __future__ import annotations

SCHEMA_VERSION = "1.0"

# The seven emotions, in this order (softmax over the seven).
EMOTIONS: tuple[str, ...] = ("joy", "love", "surprise", "anger", "fear", "sadness", "disgust")
POSITIVE_EMOTIONS: tuple[str, ...] = ("joy", "love", "surprise")
NEGATIVE_EMOTIONS: tuple[str, ...] = ("anger", "fear", "sadness", "disgust")
# Their unit indices: overall_sentiment = P(POSITIVE_INDICES) - P(NEGATIVE_INDICES), and training's
# sentiment loss reads the same positive mass, so every module indexes with these two.
POSITIVE_INDICES: list[int] = [EMOTIONS.index(e) for e in POSITIVE_EMOTIONS]
NEGATIVE_INDICES: list[int] = [EMOTIONS.index(e) for e in NEGATIVE_EMOTIONS]

# Korean cultural intensities (sigmoid each).
CULTURAL: tuple[str, ...] = ("jeong", "han", "chemyeon")

# Bentham's felicific calculus, extended as in the original design (10 scores in [0, 1]).
BENTHAM_SCORES: tuple[str, ...] = (
    "intensity",
    "duration",
    "certainty",
    "propinquity",
    "fecundity",
    "purity",
    "extent",
    "external_cost",
    "redistribution_effect",
    "self_damage",
)

# 36 context weights: who is affected (6) x in which respect (6).
AFFECTED_PARTIES: tuple[str, ...] = ("self", "family", "friends", "strangers", "society", "future")
ASPECTS: tuple[str, ...] = ("physical", "emotional", "financial", "social", "legal", "moral")
BENTHAM_CONTEXT: tuple[str, ...] = tuple(f"{p}_{a}" for p in AFFECTED_PARTIES for a in ASPECTS)

# 5 legal-risk scores.
LEGAL_RISKS: tuple[str, ...] = ("criminal", "civil_liability", "privacy", "discrimination", "regulatory")

# What drives regret, and how attractive the counterfactual alternatives look.
REGRET_FACTORS: tuple[str, ...] = (
    "counterfactual_thinking",
    "personal_responsibility",
    "outcome_severity",
    "missed_opportunity",
    "irreversibility",
)
COUNTERFACTUALS: tuple[str, ...] = ("acted_differently", "did_nothing", "waited")

# Per-event causal features: a distribution over the SURD information kinds
# the event's content points at, plus two scalar cues.
SURD_KINDS: tuple[str, ...] = ("redundant", "unique", "synergistic", "leak")
SURD_CUES: tuple[str, ...] = ("causal_language", "agency")

# Utility: 3 cache-control and 5 performance indicators.
UTILITY_CACHE: tuple[str, ...] = ("cache_priority", "reuse_likelihood", "staleness_risk")
UTILITY_PERFORMANCE: tuple[str, ...] = ("complexity", "ambiguity", "novelty", "urgency", "quality")

# DSP spectra bins.
DSP_BINS = 128

# Integrated scores (docs/PIPELINE.md, "Step 4"), in the order the temporal state vector uses them.
INTEGRATED: tuple[str, ...] = ("overall_sentiment", "ethical_score", "regret_potential", "causal_clarity")

# The per-stream temporal state vector: 7 emotions + the integrated scores.
STATE_VECTOR: tuple[str, ...] = EMOTIONS + INTEGRATED

MODALITIES: tuple[str, ...] = ("image", "audio", "biosignals")
BIOSIGNALS: tuple[str, ...] = ("eeg", "ecg", "gsr")

# Named features of each non-text part (`eeg` -> delta..gamma, `audio` -> pitch_hz, ...; docs/CONTRACT.md).
# EEG: relative band power (share of 0.5-45 Hz power, Welch), sums to 1.
EEG_BANDS: tuple[str, ...] = ("delta", "theta", "alpha", "beta", "gamma")
# ECG: heart rate and heart-rate variability from detected R peaks.
ECG_FEATURES: tuple[str, ...] = ("heart_rate_bpm", "rr_mean_ms", "sdnn_ms", "rmssd_ms", "beats")
# GSR (electrodermal activity): slow tonic level and fast phasic responses (SCRs).
GSR_FEATURES: tuple[str, ...] = ("tonic_level", "phasic_peaks", "phasic_rate_per_min", "phasic_amplitude")
# Image: the classical descriptor of the `small` profile (no vision weights ship on PyPI;
# see pipeline/modalities/image.py for each formula). Hue bins are saturation-weighted shares.
IMAGE_DESCRIPTOR: tuple[str, ...] = (
    "brightness",
    "contrast",
    "saturation",
    "colorfulness",
    "warmth",
    "edge_density",
    "entropy",
    "aspect_ratio",
    "hue_red",
    "hue_orange",
    "hue_yellow",
    "hue_green",
    "hue_cyan",
    "hue_blue",
    "hue_purple",
    "hue_magenta",
)
# Voice tone.
AUDIO_FEATURES: tuple[str, ...] = (
    "pitch_hz",
    "pitch_std_hz",
    "voiced_fraction",
    "energy_rms",
    "energy_db",
    "speaking_rate_hz",
    "spectral_centroid_hz",
    "spectral_rolloff_hz",
    "spectral_flatness",
    "zero_crossing_rate",
    "duration_s",
)

# Stream-level SURD (docs/PIPELINE.md, "Stream SURD"): what the stream's recent signals tell about its next
# overall_sentiment. Sources are taken one event earlier than the target.
STREAM_SURD_TARGET = "overall_sentiment"
STREAM_SURD_SOURCES: tuple[str, ...] = ("overall_sentiment", "ethical_score", "regret_potential")
INSUFFICIENT_HISTORY = "insufficient_history"

# Model scores and stream state are written rounded to this many decimal places (1e-6 on
# scores in [0, 1]: far below what any score means, and about half the digits of a float64).
DECIMALS = 6

# production-advanced: which integrated scores carry an MC-dropout std, and which
# scores an explanation names the driving words of.
UNCERTAIN_INTEGRATED: tuple[str, ...] = ("overall_sentiment", "ethical_score", "regret_potential", "confidence")
EXPLAINED_SCORES: tuple[str, ...] = ("dominant_emotion", "overall_sentiment", "ethical_score", "regret_potential")
