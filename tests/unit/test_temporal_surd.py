"""SURD reproduces the canonical cases of Martínez-Sánchez, Arranz & Lozano-Durán (2024)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.temporal.surd import StreamSurdConfig, decompose, lagged, stream_surd, surd_from_signals
from schemas import labels as L


def joint(target, *sources, n_states=2):
    """Exact joint distribution p[t, q1, ..] from equally likely enumerated source states."""
    shape = (max(target) + 1,) + (n_states,) * len(sources)
    p = np.zeros(shape)
    for t, *q in zip(target, *sources):
        p[(t, *q)] += 1
    return p


BITS = [(a, b) for a in (0, 1) for b in (0, 1)]
Q1 = [a for a, _ in BITS]
Q2 = [b for _, b in BITS]


def test_duplicated_source_is_redundant() -> None:
    r = decompose(joint(Q1, Q1, Q1), ["q1", "q2"])  # q2 is a copy of q1; T+ = q1
    assert r.redundant == pytest.approx(1.0)
    assert r.unique_total == pytest.approx(0.0, abs=1e-12)
    assert r.synergistic == pytest.approx(0.0, abs=1e-12)
    assert r.leak == pytest.approx(0.0, abs=1e-12)
    assert r.redundant_by_set == {("q1", "q2"): pytest.approx(1.0)}


def test_xor_is_synergistic() -> None:
    r = decompose(joint([a ^ b for a, b in BITS], Q1, Q2))
    assert r.synergistic == pytest.approx(1.0)
    assert r.redundant == pytest.approx(0.0, abs=1e-12)
    assert r.unique_total == pytest.approx(0.0, abs=1e-12)
    assert r.leak == pytest.approx(0.0, abs=1e-12)


def test_target_driven_by_one_independent_source_is_unique_to_it() -> None:
    r = decompose(joint(Q1, Q1, Q2), ["q1", "q2"])  # T+ = q1, q2 independent of both
    assert r.unique == {"q1": pytest.approx(1.0), "q2": pytest.approx(0.0, abs=1e-12)}
    assert r.redundant == pytest.approx(0.0, abs=1e-12)
    assert r.synergistic == pytest.approx(0.0, abs=1e-12)


def test_three_sources_unique_and_synergy_separate() -> None:
    # T+ = (q1, q2 xor q3): one bit unique to q1, one bit synergistic between q2 and q3
    states = [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    t = [2 * a + (b ^ c) for a, b, c in states]
    r = decompose(joint(t, *zip(*states)), ["q1", "q2", "q3"])
    assert r.entropy == pytest.approx(2.0)
    assert r.mutual_information == pytest.approx(2.0)
    assert r.unique["q1"] == pytest.approx(1.0)
    # The synergy is 1 bit; SURD books it on the full set: per target state i(t; {q2,q3}) = 1 bit
    # only ties q1's 1 bit, so the increment above it is the full set's (paper's algorithm).
    assert r.synergistic == pytest.approx(1.0)
    assert r.synergistic_by_set[("q1", "q2", "q3")] == pytest.approx(1.0)
    assert r.redundant == pytest.approx(0.0, abs=1e-12)


def test_two_independent_sources_jointly_copied_show_the_imin_redundancy() -> None:
    """T+ = (q1, q2): each source drives half of the target. SURD (like the Williams-Beer
    minimum) reports 1 bit redundant + 1 bit synergistic, not 2 bits unique: the specific
    information of each source about every target state is 1 bit. Kept as a test so the
    behaviour is documented, not hidden."""
    r = decompose(joint([2 * a + b for a, b in BITS], Q1, Q2))
    assert r.mutual_information == pytest.approx(2.0)
    assert r.redundant == pytest.approx(1.0)
    assert r.synergistic == pytest.approx(1.0)
    assert r.unique_total == pytest.approx(0.0, abs=1e-12)


def test_parts_always_add_up_to_the_target_entropy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.dirichlet(np.ones(4 * 3 * 3 * 2)).reshape(4, 3, 3, 2)
        r = decompose(p)
        total = r.redundant + r.unique_total + r.synergistic
        assert total == pytest.approx(r.mutual_information, abs=1e-10)
        assert total + r.leak == pytest.approx(r.entropy, abs=1e-10)
        assert min(r.redundant, r.synergistic, *r.unique.values()) >= -1e-12
        assert sum(r.shares().values()) == pytest.approx(1.0)


# ---- time series through histogram binning (the paper's setting: T+ from lagged sources) ----


def test_time_series_duplicated_xor_and_noise() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    q1 = rng.integers(0, 2, n).astype(float)
    q2 = rng.integers(0, 2, n).astype(float)
    lag = 1

    def ts_surd(driven, *sources):
        """y(t+1) = driven(t): the target series one step behind what drives it."""
        y = np.r_[0.0, driven[:-1]]
        tgt, src = lagged(np.column_stack([y, *sources]), 0, range(1, 1 + len(sources)), lag)
        return surd_from_signals(tgt, src, bins=2)

    dup = ts_surd(q1, q1, q1)
    assert dup.shares()["redundant"] == pytest.approx(1.0, abs=1e-3)
    xor = ts_surd(np.logical_xor(q1, q2).astype(float), q1, q2)
    assert xor.shares()["synergistic"] == pytest.approx(1.0, abs=1e-3)
    noise = ts_surd(rng.integers(0, 2, n).astype(float), q1, q2)
    assert noise.shares()["leak"] == pytest.approx(1.0, abs=1e-3)  # plug-in bias ~ 1e-5 bits here


def test_continuous_signals_with_histogram_binning() -> None:
    rng = np.random.default_rng(2)
    n = 100_000
    q1, q2, q3 = rng.normal(size=(3, n))
    # T+ follows q1 closely; q2, q3 are irrelevant: mostly unique to q1, rest leak
    r = surd_from_signals(q1 + 0.05 * rng.normal(size=n), np.column_stack([q1, q2, q3]), bins=4, names=["a", "b", "c"])
    s = r.shares()
    assert r.unique["a"] / r.mutual_information > 0.95
    assert s["synergistic"] + s["redundant"] < 0.05
    # pure noise target: leak is nearly everything
    noise = surd_from_signals(rng.normal(size=n), np.column_stack([q1, q2, q3]), bins=4)
    assert noise.shares()["leak"] > 0.99


def _window(n: int, rng: np.random.Generator) -> np.ndarray:
    rows = rng.uniform(0, 1, size=(n, len(L.STATE_VECTOR)))
    s = L.STATE_VECTOR.index("overall_sentiment")
    rows[:, s] = rng.uniform(-1, 1, n)
    return rows


def test_stream_surd_needs_min_events() -> None:
    cfg = StreamSurdConfig(min_events=64)
    rng = np.random.default_rng(3)
    assert stream_surd(_window(63, rng), cfg) is None
    assert stream_surd([], cfg) is None
    r = stream_surd(_window(64, rng), cfg)
    assert r is not None
    assert r.sources == ("overall_sentiment[t-1]", "ethical_score[t-1]", "regret_potential[t-1]")
    assert sum(r.shares().values()) == pytest.approx(1.0)
    assert 0.0 <= r.causal_clarity <= 1.0


def test_stream_surd_finds_regret_driving_next_sentiment() -> None:
    rng = np.random.default_rng(4)
    rows = _window(512, rng)
    s, reg = L.STATE_VECTOR.index("overall_sentiment"), L.STATE_VECTOR.index("regret_potential")
    rows[1:, s] = 1.0 - 2.0 * rows[:-1, reg]  # next sentiment mirrors current regret
    r = stream_surd(rows)
    assert r is not None
    assert r.unique["regret_potential[t-1]"] == max(r.unique.values())
    assert r.unique["regret_potential[t-1]"] / r.entropy > 0.6


def test_stream_surd_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        StreamSurdConfig(target="nope")
    with pytest.raises(ValueError):
        stream_surd(np.zeros((70, 3)))


def test_joint_histogram_equals_histogramdd() -> None:
    """Bin for bin, including values on bin edges and constant columns."""
    from pipeline.temporal.surd import joint_histogram

    rng = np.random.default_rng(11)
    for n in (5, 64, 127):
        data = rng.normal(size=(n, 4))
        data[: n // 3, 1] = np.round(data[: n // 3, 1], 1)  # ties
        data[:, 2] = 0.25  # constant column
        data[0, 0], data[1, 0] = data[:, 0].min(), data[:, 0].max()
        lo, hi = data.min(0), data.max(0)
        mid = (lo + hi) / 2
        data[2, 3] = mid[3]  # exactly on an inner edge (bins=2)
        for bins in (2, 3, 5):
            ranges = [(a, b) if b > a else (a - 0.5, a + 0.5) for a, b in zip(data.min(0), data.max(0))]
            want, _ = np.histogramdd(data, bins=bins, range=ranges)
            np.testing.assert_array_equal(joint_histogram(data, bins, ranges), want)


def reference_decompose(p: np.ndarray) -> tuple[float, dict[int, float], float, float]:
    """SURD written out set by set from the paper's steps, with `specific_information`
    per set (what `decompose` computed before it was rewritten around one matmul)."""
    from itertools import combinations

    from pipeline.temporal.surd import specific_information

    p = p / p.sum()
    n = p.ndim - 1
    p_t = p.sum(axis=tuple(range(1, p.ndim)))
    axes = tuple(range(1, n + 1))
    sets = [c for size in range(1, n + 1) for c in combinations(axes, size)]
    spec = np.stack([specific_information(p, c) for c in sets])
    sizes = np.array([len(c) for c in sets])
    red = {c: 0.0 for c in sets}
    syn = {c: 0.0 for c in sets if len(c) > 1}
    for t in range(p.shape[0]):
        if p_t[t] == 0:
            continue
        values = spec[:, t].copy()
        for size in range(2, n + 1):
            floor = values[sizes == size - 1].max()
            bigger = np.flatnonzero(sizes == size)
            values[bigger[values[bigger] < floor]] = 0.0
        order = np.argsort(values, kind="stable")
        remaining = list(axes)
        for j, inc in zip(order, np.diff(values[order], prepend=0.0)):
            if len(sets[j]) == 1:
                red[tuple(remaining)] += inc * p_t[t]
                remaining.remove(sets[j][0])
            else:
                syn[sets[j]] += inc * p_t[t]
    redundant = sum(v for c, v in red.items() if len(c) > 1)
    unique = {c[0]: v for c, v in red.items() if len(c) == 1}
    return redundant, unique, sum(syn.values()), float(spec[-1] @ p_t)


@pytest.mark.parametrize("shape", [(2, 2), (3, 3, 3), (2, 4, 3), (3, 3, 3, 3), (2, 2, 2, 2, 2), (4, 2, 3, 2)])
def test_decompose_equals_the_set_by_set_reference(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    for trial in range(20):
        p = rng.random(shape) ** 3
        if trial % 4 == 0:
            p[rng.random(shape) < 0.5] = 0.0  # empty cells, and sometimes empty target states
            p.flat[0] += 0.1
        redundant, unique, synergistic, mi = reference_decompose(p)
        r = decompose(p, [f"q{j}" for j in range(1, len(shape))])
        assert r.redundant == pytest.approx(redundant, abs=1e-12)
        assert r.synergistic == pytest.approx(synergistic, abs=1e-12)
        assert r.mutual_information == pytest.approx(mi, abs=1e-12)
        assert [r.unique[f"q{a}"] for a in sorted(unique)] == pytest.approx([unique[a] for a in sorted(unique)], abs=1e-12)


# ---- small-sample bias: the permutation null (`null_corrected`, what `stream_surd` reports) ----


def _clarity(r) -> float:
    """What the worker reports as integrated.causal_clarity (pipeline.integrate.stream_causal_clarity)."""
    s = r.shares()
    return s["redundant"] + s["unique"]


def test_noise_reads_as_noise_at_64_events() -> None:
    """Independent uniform noise for every STATE_VECTOR entry, 64-event windows, 20 seeds.
    Plug-in: ~0.37 of H(T+) as synergy. Corrected: mean synergistic, unique and redundant
    shares and causal clarity each below 0.05 (measured ~0.003-0.008), no seed above 0.25."""
    plug_syn, syn, uniq, red, clarity = [], [], [], [], []
    for seed in range(20):
        r = stream_surd(_window(64, np.random.default_rng(100 + seed)))
        assert r is not None and r.plug_in is not None and r.surrogates > 0
        s = r.shares()
        plug_syn.append(r.plug_in.shares()["synergistic"])
        syn.append(s["synergistic"])
        uniq.append(s["unique"])
        red.append(s["redundant"])
        clarity.append(_clarity(r))
        assert sum(s.values()) == pytest.approx(1.0)
        assert max(s["synergistic"], _clarity(r)) < 0.25
    assert np.mean(plug_syn) > 0.25  # the bias being corrected
    for shares in (syn, uniq, red, clarity):
        assert np.mean(shares) < 0.05


def _copy_window(seed: int, n: int = 64) -> np.ndarray:
    """Next overall_sentiment = current ethical_score (mapped onto [-1, 1]); the rest noise."""
    rows = _window(n, np.random.default_rng(seed))
    s, eth = L.STATE_VECTOR.index("overall_sentiment"), L.STATE_VECTOR.index("ethical_score")
    rows[1:, s] = 2.0 * rows[:-1, eth] - 1.0
    return rows


def test_copied_source_keeps_a_large_unique_share() -> None:
    for seed in range(10):
        r = stream_surd(_copy_window(200 + seed))
        assert r is not None
        s = r.shares()
        assert r.unique["ethical_score[t-1]"] == max(r.unique.values())
        assert r.unique["ethical_score[t-1]"] / r.entropy > 0.8
        assert _clarity(r) > 0.8
        assert s["synergistic"] < 0.05


def test_xor_of_two_binary_sources_stays_synergistic() -> None:
    """Next sentiment = ethical XOR regret, both binary: synergy dominates after the correction."""
    s, eth, reg = (L.STATE_VECTOR.index(n) for n in ("overall_sentiment", "ethical_score", "regret_potential"))
    for seed in range(10):
        rng = np.random.default_rng(300 + seed)
        rows = _window(64, rng)
        rows[:, eth] = rng.integers(0, 2, 64)
        rows[:, reg] = rng.integers(0, 2, 64)
        rows[1:, s] = 2.0 * np.logical_xor(rows[:-1, eth], rows[:-1, reg]) - 1.0
        r = stream_surd(rows)
        assert r is not None
        shares = r.shares()
        assert shares["synergistic"] > 0.8
        assert shares["synergistic"] > 5 * (shares["unique"] + shares["redundant"])
    # the same with two sources in 2 bins through surd_from_signals
    rng = np.random.default_rng(7)
    q = rng.integers(0, 2, (64, 2)).astype(float)
    r = surd_from_signals(np.logical_xor(q[:, 0], q[:, 1]).astype(float), q, bins=2, surrogates=39)
    assert r.shares()["synergistic"] > 0.8


def test_the_correction_is_deterministic_for_the_same_window() -> None:
    """The surrogates are fixed per window length: the same window gives the same result,
    bit for bit, whenever and however often it is computed (also after the plans' cache is
    dropped, as in a fresh process after a restore)."""
    from pipeline.temporal.surd import _null_plan

    rows = _copy_window(5)
    rows[:, L.STATE_VECTOR.index("regret_potential")] = np.random.default_rng(6).uniform(0, 1, 64)
    first = stream_surd(rows)
    stream_surd(_window(64, np.random.default_rng(9)))  # another window in between
    _null_plan.cache_clear()
    again = stream_surd(rows.tolist())
    assert first == again
    noise = _window(80, np.random.default_rng(10))
    assert stream_surd(noise) == stream_surd(noise.copy())


def test_stream_surd_without_surrogates_is_the_plug_in() -> None:
    rows = _window(64, np.random.default_rng(12))
    corrected = stream_surd(rows)
    plug_in = stream_surd(rows, StreamSurdConfig(surrogates=0))
    assert corrected is not None and plug_in is not None
    assert plug_in.surrogates == 0 and plug_in.plug_in is None
    p = corrected.plug_in
    assert p is not None
    for f in ("redundant", "synergistic", "entropy", "mutual_information", "leak"):
        assert getattr(p, f) == pytest.approx(getattr(plug_in, f), abs=1e-12)
    assert p.unique == pytest.approx(plug_in.unique, abs=1e-12)
    assert corrected.synergistic < plug_in.synergistic
    with pytest.raises(ValueError):
        StreamSurdConfig(surrogates=-1)


def test_by_set_figures_are_the_plug_in_ones_scaled_to_the_corrected_totals() -> None:
    r = _copy_signals(31)
    full = surd_from_signals(*r, bins=3, surrogates=39)
    totals = surd_from_signals(*r, bins=3, surrogates=39, by_set=False)
    for f in ("redundant", "synergistic", "leak", "entropy", "mutual_information"):
        assert getattr(full, f) == pytest.approx(getattr(totals, f), abs=1e-12)
    assert full.unique == pytest.approx(totals.unique, abs=1e-12)
    assert totals.redundant_by_set == {} and totals.synergistic_by_set == {}
    assert sum(full.redundant_by_set.values()) == pytest.approx(full.redundant, abs=1e-12)
    assert sum(full.synergistic_by_set.values()) == pytest.approx(full.synergistic, abs=1e-12)
    assert full.mutual_information == pytest.approx(full.redundant + full.unique_total + full.synergistic)
    assert full.leak == pytest.approx(full.entropy - full.mutual_information)


def _copy_signals(seed: int, n: int = 63) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.uniform(size=(n, 3))
    return src[:, 1] + 0.3 * rng.uniform(size=n), src


def test_a_copied_source_is_not_booked_as_synergy_by_rounding() -> None:
    """T+ a copy of q2 (binned identically): i(t; {q2, ...}) equals i(t; q2) mathematically but
    can come out a few ulps below it; without the tie rule (`TIE_BITS`) the paper's floor rule
    lets the full set sort first and take the whole increment as synergy (0.33 of H(T+) for
    seed 1005)."""
    for seed in range(1000, 1020):
        rng = np.random.default_rng(seed)
        src = rng.uniform(size=(127, 3))
        r = surd_from_signals(src[:, 1].copy(), src, bins=3)
        assert r.synergistic == pytest.approx(0.0, abs=1e-9)
        assert r.leak == pytest.approx(0.0, abs=1e-9)
        assert r.unique["q2"] / r.entropy > 0.9


@pytest.mark.parametrize("shape", [(3, 3, 3, 3), (2, 2, 2), (4, 2, 3, 2), (2, 2, 2, 2, 2), (3, 3)])
def test_batched_null_totals_equal_decompose(shape: tuple[int, ...]) -> None:
    """`_null_parts` (the surrogates' totals, without sorting) against `decompose`, one histogram
    at a time, with random samples, copies, XORs and few distinct rows (many ties)."""
    from pipeline.temporal.surd import _null_parts

    rng = np.random.default_rng(sum(shape) + 17)
    d = len(shape)
    for trial in range(60):
        n = int(rng.integers(2, 200))
        idx = np.column_stack([rng.integers(0, m, n) for m in shape])
        kind = trial % 4
        if kind == 1:
            idx[:, 0] = np.minimum(idx[:, 1], shape[0] - 1)
        elif kind == 2 and d >= 3:
            idx[:, 0] = (idx[:, 1] + idx[:, 2]) % shape[0]
        elif kind == 3:
            idx = idx[rng.integers(0, 3, n)]
        counts = np.zeros(shape)
        np.add.at(counts, tuple(idx.T), 1)
        got = _null_parts(counts.reshape(1, shape[0], -1), shape)[:, 0]
        r = decompose(counts)
        want = [r.redundant, *(r.unique[f"q{j}"] for j in range(1, d)), r.synergistic]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
