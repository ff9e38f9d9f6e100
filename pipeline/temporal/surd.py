"""SURD: synergistic, unique and redundant causality (docs/PIPELINE.md, "Stream SURD").

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

On a few dozen samples the plug-in figures are biased upwards, mostly as synergy (the full
set of 3 sources in 3 bins has 27 states): pure noise reads ~0.37 of H(T+) as synergy at
64 events. `null_corrected` (what `stream_surd` reports) corrects each part against a
permutation null: the same window with the target shuffled against the sources.
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
    """Bits of information about the target's future, and their shares of H(T+).

    From `null_corrected` (and so `stream_surd`) the parts are bias-corrected and
    `mutual_information` is their sum; `plug_in` keeps the uncorrected figures."""

    sources: tuple[str, ...]
    redundant: float  # sum over source sets of size >= 2
    unique: dict[str, float]  # per source
    synergistic: float  # sum over source sets of size >= 2
    leak: float  # H(T+ | sources)
    entropy: float  # H(T+)
    mutual_information: float  # I(T+; sources) = redundant + unique_total + synergistic
    redundant_by_set: dict[tuple[str, ...], float]
    synergistic_by_set: dict[tuple[str, ...], float]
    plug_in: SurdResult | None = None  # the uncorrected figures, when these are bias-corrected
    surrogates: int = 0  # surrogates of the permutation null the figures are corrected against (0: plug-in)

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
        """Unique + redundant share of H(T+): the result's `integrated.causal_clarity`."""
        s = self.shares()
        return s["redundant"] + s["unique"]


# Specific informations closer than this (bits) are ties: a set that mathematically equals a
# smaller one (T+ a copy of q1: i(t; {q1, q2}) = i(t; q1)) can come out a few ulps above it,
# sort after it and take the whole increment as synergy; a tie is snapped to the smaller set's
# value so it adds exactly 0.
TIE_BITS = 1e-10


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
                if values[j] < floor - TIE_BITS:
                    values[j] = 0.0
                elif values[j] < floor:
                    values[j] = floor  # a tie: sorts after the smaller set and adds exactly 0
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
    earlier: np.ndarray  # [sets, sets, 1]: i < j (ties sort by index, like a stable sort)


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
    earlier = (np.arange(len(sets))[:, None] < np.arange(len(sets))[None, :])[:, :, None]
    return _SetLayout(sets, np.hstack(blocks), segments, by_size, earlier)


def surd_from_signals(
    target_future: np.ndarray,
    sources_past: np.ndarray,
    bins: int = 3,
    names: Sequence[str] | None = None,
    surrogates: int = 0,
    alpha: float = 0.05,
    by_set: bool = True,
) -> SurdResult:
    """SURD of samples: target_future [n], sources_past [n, N], each discretised into `bins`
    equal-width histogram bins over its observed range (a constant signal falls in one bin).

    `surrogates` = 0: the plug-in figures. `surrogates` = K > 0: corrected for small-sample
    bias against a permutation null (`null_corrected`; `alpha` is its significance level,
    `by_set=False` skips the by-set figures)."""
    target = np.asarray(target_future, dtype=np.float64).reshape(-1, 1)
    src = np.asarray(sources_past, dtype=np.float64)
    if src.ndim == 1:
        src = src[:, None]
    if len(target) != len(src) or len(target) == 0:
        raise ValueError(f"need equally many target and source samples, got {len(target)} and {len(src)}")
    if bins < 2:
        raise ValueError("bins must be >= 2")
    if surrogates < 0 or not 0.0 < alpha < 1.0:
        raise ValueError("surrogates must be >= 0 and alpha in (0, 1)")
    data = np.hstack([target, src])
    if not np.isfinite(data).all():
        raise ValueError("signals must be finite")
    lo, hi = data.min(axis=0), data.max(axis=0)
    flat = hi <= lo  # a constant signal: one bin of width 1 around it
    ranges = np.stack([np.where(flat, lo - 0.5, lo), np.where(flat, lo + 0.5, hi)], axis=1)
    if surrogates == 0:
        return decompose(joint_histogram(data, bins, ranges), names)
    return null_corrected(_bin_index(data, bins, ranges), bins, names, surrogates, alpha, by_set)


def joint_histogram(data: np.ndarray, bins: int, ranges: Sequence[tuple[float, float]] | np.ndarray) -> np.ndarray:
    """`np.histogramdd(data, bins=bins, range=ranges)[0]`, bin for bin (a test holds it to
    that), via one `bincount`: histogramdd's general machinery costs ~10x more on the few
    dozen rows of a stream window, and the worker runs this for every stream every 8 events."""
    d = data.shape[1]
    flat = _bin_index(data, bins, ranges) @ (bins ** np.arange(d - 1, -1, -1))
    return np.bincount(flat, minlength=bins**d).reshape((bins,) * d).astype(np.float64)


def _bin_index(data: np.ndarray, bins: int, ranges: Sequence[tuple[float, float]] | np.ndarray) -> np.ndarray:
    """[n, d] bin of every value, as `np.histogramdd` bins it (values outside `ranges` are clipped)."""
    lo, hi = np.array(ranges, dtype=np.float64).T
    # [d, bins + 1], row j = np.linspace(lo[j], hi[j], bins + 1), computed as linspace does
    # (arange * step + start, the last edge set to stop) without its per-call axis handling
    edges = np.arange(bins + 1)[None, :] * ((hi - lo) / bins)[:, None] + lo[:, None]
    edges[:, -1] = hi
    # searchsorted(edges, x, "right") - 1 for every column at once: the edges above the first at or below x
    idx = (data[:, :, None] >= edges[None, :, 1:]).sum(axis=2)
    idx[data == edges[:, -1]] = bins - 1  # the right edge belongs to the last bin
    return np.clip(idx, 0, bins - 1, out=idx)


# ---- small-sample bias: a permutation null ----

NULL_SEED = 20240914  # fixed: the surrogates depend only on the window's length (see `_null_plan`)
# Surrogates per correction: with 39, a part is significant at alpha = 0.05 when at most one
# surrogate reaches it (p = 2/40). 64 gave the same figures on the known-answer cases at ~15%
# more time; 32 (which must beat every surrogate) lost some weak real dependence.
NULL_SURROGATES = 39
NULL_ALPHA = 0.05


@dataclass(frozen=True)
class _NullPlan:
    """What `null_corrected` needs for windows of n samples and k surrogates, built once."""

    rows: np.ndarray  # [k + 1, n]: row 0 the identity (the window itself), then k fixed permutations
    offsets: np.ndarray  # [k + 1, 1]: where each row's histogram starts in the batch's bincount


@lru_cache(maxsize=64)
def _null_plan(n: int, k: int, hist_size: int) -> _NullPlan:
    """The permutations are drawn from a fixed seed and the window's length: the same for every
    window of n samples, so a result depends only on the window's contents, never on when or
    in which micro-batch it was computed, or on a restore in between."""
    rows = np.tile(np.arange(n, dtype=np.intp), (k + 1, 1))
    rows[1:] = np.random.default_rng([NULL_SEED, n, k]).permuted(rows[1:], axis=1)
    offsets = np.arange(k + 1, dtype=np.intp)[:, None] * hist_size
    rows.setflags(write=False)
    offsets.setflags(write=False)
    return _NullPlan(rows, offsets)


def null_corrected(
    index: np.ndarray,
    bins: int,
    names: Sequence[str] | None = None,
    surrogates: int = NULL_SURROGATES,
    alpha: float = NULL_ALPHA,
    by_set: bool = True,
) -> SurdResult:
    """SURD of binned samples (`index` [n, 1 + N]: target bin, then each source's bin), corrected
    for small-sample bias against a permutation null.

    The plug-in estimate is biased upwards: with 3 sources in 3 bins the full set of sources
    has 27 states, and 64 samples of pure noise show ~0.37 of H(T+) as synergy. Here the
    decomposition is recomputed on `surrogates` windows whose target column is permuted
    against the sources: dependence destroyed, the target's marginal and the sources' joint
    kept exactly, so the surrogates show what the estimator reports when there is nothing to
    find. Each reported part (redundant, each source's unique, synergistic) is then
      - kept only if it beats the null: permutation p-value (1 + #{surrogates >= it}) / (K + 1)
        <= `alpha`, else 0;
      - and reduced by the surrogates' mean for that part (the bias), floored at 0.
    The corrected parts sum to `mutual_information`; leak = H(T+) - that, so the shares still
    sum to 1. The by-set figures are the plug-in ones scaled to their corrected totals;
    `by_set=False` leaves them (and `plug_in`'s) empty and saves the plug-in `decompose` (the
    stream path reports totals only). The permutations are fixed per window length
    (`_null_plan`), so the same window always gives the same result. The window's and the
    surrogates' totals are computed as one batch (`_null_parts`)."""
    index = np.asarray(index)
    n, d = index.shape
    n_sources = d - 1
    if n_sources < 1 or n < 1:
        raise ValueError("index needs a target column, at least one source column and a row")
    names = tuple(names) if names is not None else tuple(f"q{j}" for j in range(1, n_sources + 1))
    if len(names) != n_sources:
        raise ValueError(f"{len(names)} names for {n_sources} sources")
    k = int(surrogates)
    if k < 1:
        raise ValueError("surrogates must be >= 1")
    cells = bins**n_sources
    plan = _null_plan(n, k, bins * cells)
    # the window's and every surrogate's joint histogram (target permuted against the sources), one bincount
    src = index[:, 1:] @ (bins ** np.arange(n_sources - 1, -1, -1))
    flat = (index[:, 0] * cells)[plan.rows] + (src + plan.offsets)
    counts = np.bincount(flat.ravel(), minlength=(k + 1) * bins * cells).reshape(k + 1, bins, cells)
    parts = _null_parts(counts.astype(np.float64), (bins,) * d)  # [N + 2, K + 1]
    observed, null = parts[:, 0], parts[:, 1:]
    if by_set:
        plug_in = decompose(counts[0].reshape((bins,) * d), names)
    else:  # the same totals (a test holds `_null_parts` to `decompose`); they add up to I(T+; sources)
        totals = observed.tolist()
        entropy, mi = _entropy(counts[0].sum(axis=1) / n), sum(totals)
        plug_in = SurdResult(
            names, totals[0], dict(zip(names, totals[1:-1])), totals[-1], max(entropy - mi, 0.0), entropy, mi, {}, {}
        )
    significant = (null >= (observed - TIE_BITS)[:, None]).sum(axis=1) + 1 <= alpha * (k + 1)  # p-value <= alpha
    corrected = np.where(significant, np.maximum(observed - null.mean(axis=1), 0.0), 0.0).tolist()
    redundant, unique, synergistic = corrected[0], corrected[1:-1], corrected[-1]

    def scaled(by_set: dict[tuple[str, ...], float], total: float, raw: float) -> dict[tuple[str, ...], float]:
        return {c: (v * total / raw if raw > 0 else 0.0) for c, v in by_set.items()}

    mi = redundant + sum(unique) + synergistic
    return SurdResult(
        sources=names,
        redundant=redundant,
        unique=dict(zip(names, unique)),
        synergistic=synergistic,
        leak=max(plug_in.entropy - mi, 0.0),
        entropy=plug_in.entropy,
        mutual_information=mi,
        redundant_by_set=scaled(plug_in.redundant_by_set, redundant, plug_in.redundant),
        synergistic_by_set=scaled(plug_in.synergistic_by_set, synergistic, plug_in.synergistic),
        plug_in=plug_in,
        surrogates=k,
    )


def _null_parts(counts: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """[N + 2, B]: the redundant total, each source's unique part and the synergistic total that
    `decompose` gives for each integer histogram counts[b, t, source cells] (a test holds them
    equal), for a batch that shares its total n and its source marginals: the window and its
    surrogates, which permute only the target.

    Specific informations, with c the counts:
        i(t; A) = (sum_a c(t,a) log2 c(t,a) - sum_a c(t,a) log2 c(a)) / c(t) + log2 n - log2 c(t),
    c log2 c from a table over 0..n, the second sum (linear in the counts) one small matmul.
    The totals need no sort: with the values floored as in `decompose`, the increments of a
    target state telescope to its largest value; a single source j's increment is v_j minus
    the largest value sorted before it (values below v_j, and v_j itself when a single source
    of lower index ties it: the stable sort's order); the last single source in that order
    takes its increment as its unique part, the others' go to redundancy; the rest of the
    largest value is synergy."""
    batch, n_t, n_cells = counts.shape
    layout = _set_layout(shape)
    n_sources = len(shape) - 1
    c_t = counts[0].sum(axis=1)  # [T], the same for every b
    n = int(c_t.sum())
    xlogx, log2 = _log_tables(n)
    flat = counts.reshape(batch * n_t, n_cells)
    c_ta = flat @ layout.aggregate  # [B*T, columns]: c(t, a) of every set, exact small integers
    log2_c_a = np.take(log2, c_ta[:n_t].sum(axis=0).astype(np.intp))  # log2 c(a), the same for every b
    weights = np.vstack([layout.segments, -(layout.aggregate * log2_c_a) @ layout.segments])
    sums = weights.T @ np.hstack([np.take(xlogx, c_ta.astype(np.intp)), flat]).T  # [sets, B*T]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = sums.reshape(-1, batch, n_t) / c_t + (log2[n] - np.take(log2, c_t.astype(np.intp)))
    values[..., c_t == 0] = 0.0  # (weight 0 below)
    values = values.reshape(len(layout.sets), -1)  # [sets, B*T]
    for size in range(2, n_sources + 1):  # sets are ordered by size: each size is a run of rows
        smaller, bigger = layout.by_size[size - 1], layout.by_size[size]
        floor = values[smaller[0] : smaller[-1] + 1].max(axis=0)
        v = values[bigger[0] : bigger[-1] + 1]
        v[...] = np.where(v < floor - TIE_BITS, 0.0, np.maximum(v, floor))
    single = values[:n_sources]  # [N, B*T]
    below = np.where(values[None, :, :] < single[:, None, :], values[None, :, :], 0.0).max(axis=1)
    tied = ((single[:, None, :] == single[None, :, :]) & layout.earlier[:n_sources, :n_sources]).any(axis=0)
    increments = single - np.where(tied, single, below)  # [N, B*T]
    last = (n_sources - 1) - np.argmax(single[::-1], axis=0)  # the single source sorted last (ties: highest index)
    unique = increments * (np.arange(n_sources)[:, None] == last)
    through_singles = increments.sum(axis=0)
    parts = np.vstack([through_singles - unique.sum(axis=0), unique, values.max(axis=0) - through_singles])
    return parts.reshape(n_sources + 2, batch, n_t) @ (c_t / n)  # weighted by p(t): [N + 2, B]


@lru_cache(maxsize=64)
def _log_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(c log2 c, log2 c) for c = 0..n, both 0 at c = 0."""
    c = np.arange(n + 1, dtype=np.float64)
    log2 = np.log2(np.maximum(c, 1.0))
    return c * log2, log2


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
    3 bins the joint histogram has 3^4 = 81 cells, and the plug-in estimate is strongly
    biased upwards on a few dozen samples (pure noise: ~0.37 of H(T+) as synergy at 64
    events, ~0.21 at 128, ~0.09 at 256). `surrogates` > 0 corrects it against a permutation
    null (`null_corrected`, significance level `alpha`): noise then reads < 0.01 of H(T+)
    as synergy and as clarity at 64 events. 0 reports the plug-in figures."""

    target: str = STREAM_TARGET
    sources: tuple[str, ...] = STREAM_SOURCES
    bins: int = 3
    lag: int = 1
    min_events: int = 64
    surrogates: int = NULL_SURROGATES
    alpha: float = NULL_ALPHA

    def __post_init__(self) -> None:
        for name in (self.target, *self.sources):
            if name not in L.STATE_VECTOR:
                raise ValueError(f"{name!r} is not in STATE_VECTOR")
        if self.min_events < self.lag + 2:
            raise ValueError("min_events must exceed lag + 1")
        if self.surrogates < 0 or not 0.0 < self.alpha < 1.0:
            raise ValueError("surrogates must be >= 0 and alpha in (0, 1)")


def stream_surd(window: np.ndarray | Sequence[Sequence[float]], config: StreamSurdConfig = StreamSurdConfig()) -> SurdResult | None:
    """SURD of a stream's window (rows ordered as STATE_VECTOR, oldest first): target =
    `config.target` `lag` events ahead, sources = `config.sources` now; bias-corrected
    against a permutation null unless `config.surrogates` is 0. None when the window has
    fewer than `config.min_events` rows."""
    rows = np.asarray(window, dtype=np.float64)
    if rows.size == 0 or len(rows) < config.min_events:
        return None
    if rows.ndim != 2 or rows.shape[1] != len(L.STATE_VECTOR):
        raise ValueError(f"window rows must have {len(L.STATE_VECTOR)} columns, got shape {rows.shape}")
    col = L.STATE_VECTOR.index
    target, sources = lagged(rows, col(config.target), [col(s) for s in config.sources], config.lag)
    names = tuple(f"{s}[t-{config.lag}]" for s in config.sources)
    return surd_from_signals(target, sources, config.bins, names, config.surrogates, config.alpha, by_set=False)
