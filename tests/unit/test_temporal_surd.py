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
