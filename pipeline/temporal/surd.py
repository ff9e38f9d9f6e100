"""SURD: synergistic, unique and redundant causality (SPEC §3).

Martínez-Sánchez, Arranz & Lozano-Durán, "Decomposing causality into its synergistic,
unique, and redundant components", Nature Communications 15, 9296 (2024).

Given the joint distribution of a target's future T+ and N past sources Q = (Q1..QN):

1. For every non-empty set of sources A and every target state t, the specific mutual
   information  i(t; A) = sum_a p(a|t) log2( p(t|a) / p(t) )  (>= 0; its p(t)-weighted
   sum over t is I(T+; A)).
2. Per target state t, the values i(t; A) are sorted increasingly. A set of size l+1
   whose value is below the largest value among sets of size l gets its value set to 0
   (it adds nothing the smaller sets do not already give). The increments between
   consecutive sorted values are then assigned in turn:
   - an increment whose upper end belongs to a single source j goes to the *redundant*
     term of all sources not yet passed (a set of >= 2 sources: redundancy; a single
     source left: that source's *unique* part); j is then removed from the set;
   - an increment whose upper end belongs to a set of >= 2 sources is that set's
     *synergy*.
   Each increment is weighted by p(t).
3. Leak = H(T+) - I(T+; Q) = H(T+ | Q): what the sources cannot tell about the target.
By construction redundant + unique + synergistic = I(T+; Q), so the four parts add up to
H(T+). Units: bits.

`decompose(p)` works on a joint probability array (axis 0 = target); `surd_from_signals`
discretises samples with histogram binning; `stream_surd` applies it to a stream's
sliding window of STATE_VECTOR rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

from schemas import labels as L


@dataclass(frozen=True)
class SurdResult:
    """Bits of information about the target's future, and their shares of H(T+)."""

    sources: tuple[str, ...]
    redundant: float  # sum over source sets of size >= 2
    unique: dict[str, float]  # per source
    synergistic: float  # sum over source sets of size >= 2
    leak: float  # H(T+ | sources)
    entropy: float  # H(T+)
    mutual_information: float  # I(T+; sources) = redundant + unique_total + synergistic
    redundant_by_set: dict[tuple[str, ...], float]
    synergistic_by_set: dict[tuple[str, ...], float]

    @property
    def unique_total(self) -> float:
        return float(sum(self.unique.values()))

    def shares(self) -> dict[str, float]:
        """Parts as fractions of H(T+), summing to 1 (all leak when the target is constant)."""
        if self.entropy <= 0.0:
            return {"redundant": 0.0, "unique": 0.0, "synergistic": 0.0, "leak": 1.0}
        return {
            "redundant": self.redundant / self.entropy,
            "unique": self.unique_total / self.entropy,
            "synergistic": self.synergistic / self.entropy,
            "leak": self.leak / self.entropy,
        }

    @property
    def causal_clarity(self) -> float:
        """Unique + redundant share of H(T+) (SPEC §2 step 4)."""
        s = self.shares()
        return s["redundant"] + s["unique"]


def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


def specific_information(p: np.ndarray, sources: tuple[int, ...]) -> np.ndarray:
    """i(t; A) for every target state t, A = the given source axes (1-based axes of p)."""
    n_axes = p.ndim
    other = tuple(ax for ax in range(1, n_axes) if ax not in sources)
    p_ta = p.sum(axis=other, keepdims=True) if other else p  # p(t, a)
    p_t = p_ta.sum(axis=sources, keepdims=True)  # p(t)
    p_a = p_ta.sum(axis=0, keepdims=True)  # p(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_a_given_t = np.where(p_t > 0, p_ta / p_t, 0.0)
        ratio = np.where(p_ta > 0, p_ta / (p_a * p_t), 1.0)  # p(t|a)/p(t) = p(t,a)/(p(a)p(t))
        terms = p_a_given_t * np.log2(ratio)
    return terms.sum(axis=sources).ravel()


def decompose(p: np.ndarray, names: Sequence[str] | None = None) -> SurdResult:
    """SURD of a joint distribution p[t, q1, ..., qN] (any non-negative weights; normalized here).

    Every i(t; A) comes from one matmul against `_set_layout`'s aggregation matrix (equal to
    `specific_information` set by set; a test holds it to a set-by-set reference), and the
    per-target-state assignment runs on plain floats: the worker runs this for every stream
    every `ANALYSIS_EVERY` events, and numpy's per-call cost on arrays of a few cells was
    most of its time."""
    p = np.asarray(p, dtype=np.float64)
    n_sources = p.ndim - 1
    if n_sources < 1:
        raise ValueError("p needs a target axis and at least one source axis")
    if (p < 0).any() or not np.isfinite(p).all() or p.sum() <= 0:
        raise ValueError("p must be finite, non-negative and not all zero")
    names = tuple(names) if names is not None else tuple(f"q{j}" for j in range(1, n_sources + 1))
    if len(names) != n_sources:
        raise ValueError(f"{len(names)} names for {n_sources} sources")
    p = p / p.sum()
    layout = _set_layout(p.shape)
    sets = layout.sets
    p2 = p.reshape(p.shape[0], -1)
    p_t = p2.sum(axis=1)
    p_ta = p2 @ layout.aggregate  # [t, every set's states side by side] = p(t, a)
    p_a = p_ta.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_a_given_t = np.where(p_t[:, None] > 0, p_ta / p_t[:, None], 0.0)
        ratio = np.where(p_ta > 0, p_ta / (p_a[None, :] * p_t[:, None]), 1.0)  # p(t|a)/p(t)
        spec = (p_a_given_t * np.log2(ratio)) @ layout.segments  # [t, set] = i(t; A)

    axes = tuple(range(1, n_sources + 1))
    red: dict[tuple[int, ...], float] = {c: 0.0 for c in sets}
    syn: dict[tuple[int, ...], float] = {c: 0.0 for c in sets if len(c) > 1}
    weights = p_t.tolist()
    for t, row in enumerate(spec.tolist()):
        if weights[t] == 0:
            continue
        values = list(row)
        for size in range(2, n_sources + 1):  # a bigger set below a smaller one adds nothing
            floor = max(values[j] for j in layout.by_size[size - 1])
            for j in layout.by_size[size]:
                if values[j] < floor:
                    values[j] = 0.0
        remaining = list(axes)
        below = 0.0
        for j in sorted(range(len(values)), key=values.__getitem__):  # stable, like argsort(kind="stable")
            info = (values[j] - below) * weights[t]
            below = values[j]
            chosen = sets[j]
            if len(chosen) == 1:
                red[tuple(remaining)] += info
                remaining.remove(chosen[0])
            else:
                syn[chosen] += info

    entropy = _entropy(p_t)
    mi = float(spec[:, -1] @ p_t)  # the full set of sources
    label = lambda c: tuple(names[a - 1] for a in c)  # noqa: E731
    return SurdResult(
        sources=names,
        redundant=float(sum(v for c, v in red.items() if len(c) > 1)),
        unique={names[c[0] - 1]: float(v) for c, v in red.items() if len(c) == 1},
        synergistic=float(sum(syn.values())),
        leak=max(entropy - mi, 0.0),
        entropy=entropy,
        mutual_information=mi,
        redundant_by_set={label(c): float(v) for c, v in red.items() if len(c) > 1},
        synergistic_by_set={label(c): float(v) for c, v in syn.items()},
    )


@dataclass(frozen=True)
class _SetLayout:
    sets: list[tuple[int, ...]]  # every non-empty set of source axes (1-based), by size
    aggregate: np.ndarray  # [source cells, columns]: p.reshape(T, -1) @ aggregate = p(t, a), all sets
    segments: np.ndarray  # [columns, sets]: sums each set's columns
    by_size: dict[int, list[int]]  # set size -> indices into `sets`


@lru_cache(maxsize=32)
def _set_layout(shape: tuple[int, ...]) -> _SetLayout:
    """The 0/1 matrices that turn a joint array of `shape` into every set's marginal p(t, a)
    at once (built once per shape)."""
    axes = tuple(range(1, len(shape)))
    sets = [c for size in range(1, len(axes) + 1) for c in combinations(axes, size)]
    cells = list(np.ndindex(*shape[1:]))
    blocks, owner = [], []
    for s, c in enumerate(sets):
        sub = tuple(shape[a] for a in c)
        block = np.zeros((len(cells), int(np.prod(sub))))
        for row, cell in enumerate(cells):
            block[row, np.ravel_multi_index(tuple(cell[a - 1] for a in c), sub)] = 1.0
        blocks.append(block)
        owner += [s] * block.shape[1]
    segments = np.zeros((len(owner), len(sets)))
    segments[np.arange(len(owner)), owner] = 1.0
    by_size: dict[int, list[int]] = {}
    for s, c in enumerate(sets):
        by_size.setdefault(len(c), []).append(s)
    return _SetLayout(sets, np.hstack(blocks), segments, by_size)


def surd_from_signals(
    target_future: np.ndarray,
    sources_past: np.ndarray,
    bins: int = 3,
    names: Sequence[str] | None = None,
) -> SurdResult:
    """SURD of samples: target_future [n], sources_past [n, N], each discretised into `bins`
    equal-width histogram bins over its observed range (a constant signal falls in one bin)."""
    target = np.asarray(target_future, dtype=np.float64).reshape(-1, 1)
    src = np.asarray(sources_past, dtype=np.float64)
    if src.ndim == 1:
        src = src[:, None]
    if len(target) != len(src) or len(target) == 0:
        raise ValueError(f"need equally many target and source samples, got {len(target)} and {len(src)}")
    if bins < 2:
        raise ValueError("bins must be >= 2")
    data = np.hstack([target, src])
    if not np.isfinite(data).all():
        raise ValueError("signals must be finite")
    lo, hi = data.min(axis=0), data.max(axis=0)
    flat = hi <= lo  # a constant signal: one bin of width 1 around it
    ranges = np.stack([np.where(flat, lo - 0.5, lo), np.where(flat, lo + 0.5, hi)], axis=1)
    return decompose(joint_histogram(data, bins, ranges), names)


def joint_histogram(data: np.ndarray, bins: int, ranges: Sequence[tuple[float, float]] | np.ndarray) -> np.ndarray:
    """`np.histogramdd(data, bins=bins, range=ranges)[0]`, bin for bin (a test holds it to
    that), via one `bincount`: histogramdd's general machinery costs ~10x more on the few
    dozen rows of a stream window, and the worker runs this for every stream every 8 events."""
    n, d = data.shape
    lo, hi = np.array(ranges, dtype=np.float64).T
    edges = np.linspace(lo, hi, bins + 1, axis=1)  # [d, bins + 1], column j = np.linspace(lo[j], hi[j])
    # searchsorted(edges, x, "right") - 1 for every column at once: the edges above the first at or below x
    idx = (data[:, :, None] >= edges[None, :, 1:]).sum(axis=2)
    idx[data == edges[:, -1]] = bins - 1  # the right edge belongs to the last bin
    np.clip(idx, 0, bins - 1, out=idx)
    flat = idx @ (bins ** np.arange(d - 1, -1, -1))
    return np.bincount(flat, minlength=bins**d).reshape((bins,) * d).astype(np.float64)


def lagged(signal_rows: np.ndarray, target_col: int, source_cols: Sequence[int], lag: int) -> tuple[np.ndarray, np.ndarray]:
    """(target[n+lag], sources[n]) pairs from a [time, channels] array."""
    if lag < 1:
        raise ValueError("lag must be >= 1")
    return signal_rows[lag:, target_col], signal_rows[:-lag][:, list(source_cols)]


# Stream SURD defaults: what the past of a stream says about where its sentiment goes next.
# The target's own past is a source (the paper treats self-causality the same way).
STREAM_TARGET = L.STREAM_SURD_TARGET
STREAM_SOURCES: tuple[str, ...] = L.STREAM_SURD_SOURCES


@dataclass(frozen=True)
class StreamSurdConfig:
    """`min_events`: rows needed before a stream gets a decomposition. With 3 sources and
    3 bins the joint histogram has 3^4 = 81 cells; 64 samples keep the plug-in estimate's
    upward bias of the mutual information moderate (roughly cells / (2 n ln 2) bits), and
    below that the numbers mean little."""

    target: str = STREAM_TARGET
    sources: tuple[str, ...] = STREAM_SOURCES
    bins: int = 3
    lag: int = 1
    min_events: int = 64

    def __post_init__(self) -> None:
        for name in (self.target, *self.sources):
            if name not in L.STATE_VECTOR:
                raise ValueError(f"{name!r} is not in STATE_VECTOR")
        if self.min_events < self.lag + 2:
            raise ValueError("min_events must exceed lag + 1")


def stream_surd(window: np.ndarray | Sequence[Sequence[float]], config: StreamSurdConfig = StreamSurdConfig()) -> SurdResult | None:
    """SURD of a stream's window (rows ordered as STATE_VECTOR, oldest first): target =
    `config.target` `lag` events ahead, sources = `config.sources` now. None when the window
    has fewer than `config.min_events` rows."""
    rows = np.asarray(window, dtype=np.float64)
    if rows.size == 0 or len(rows) < config.min_events:
        return None
    if rows.ndim != 2 or rows.shape[1] != len(L.STATE_VECTOR):
        raise ValueError(f"window rows must have {len(L.STATE_VECTOR)} columns, got shape {rows.shape}")
    col = L.STATE_VECTOR.index
    target, sources = lagged(rows, col(config.target), [col(s) for s in config.sources], config.lag)
    names = tuple(f"{s}[t-{config.lag}]" for s in config.sources)
    return surd_from_signals(target, sources, config.bins, names)
