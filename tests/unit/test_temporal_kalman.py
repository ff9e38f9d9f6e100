"""The per-stream Kalman filter against a textbook full-matrix filter, batched vs sequential."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.temporal.kalman import N_STATE, KalmanConfig, StreamPrior, kalman_batch, occurrence_rank

CFG = KalmanConfig()


def textbook(zs, ts, qs, rs, cfg=CFG):
    """Plain per-step Kalman filter with full matrices: F = I, H = I, Q = diag(q) dt/unit, R = diag(r).
    The first step is the diffuse-prior limit: x = z, P = R."""
    eye = np.eye(N_STATE)
    x, p = zs[0].copy(), np.diag(rs[0])
    out = [(x.copy(), p.copy(), np.zeros(N_STATE), 0.0)]
    for k in range(1, len(zs)):
        dt = min(max(ts[k] - ts[k - 1], cfg.dt_min_s), cfg.dt_max_s)
        F, H = eye, eye
        x_pred = F @ x
        p_pred = F @ p @ F.T + np.diag(qs[k]) * dt / cfg.dt_unit_s
        y = zs[k] - H @ x_pred
        S = H @ p_pred @ H.T + np.diag(rs[k])
        K = p_pred @ H.T @ np.linalg.inv(S)
        x = x_pred + K @ y
        p = (eye - K @ H) @ p_pred
        nis = float(y @ np.linalg.inv(S) @ y)
        out.append((x.copy(), p.copy(), y, np.sqrt(nis / N_STATE)))
    return out


def random_sequence(rng, n):
    zs = rng.uniform(0, 1, size=(n, N_STATE))
    ts = 1_700_000_000 + np.cumsum(rng.uniform(0, 600, size=n))
    qs = rng.uniform(1e-3, 0.2, size=(n, N_STATE))
    rs = rng.uniform(1e-3, 0.2, size=(n, N_STATE))
    return zs, ts, qs, rs


@pytest.mark.parametrize("seed", range(5))
def test_matches_textbook_full_matrix_filter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    zs, ts, qs, rs = random_sequence(rng, 40)
    got = kalman_batch(["s"] * len(zs), zs, ts, {}, qs, rs)
    ref = textbook(zs, ts, qs, rs)
    for k, (x, p, y, surprise) in enumerate(ref):
        np.testing.assert_allclose(got.state[k], x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.variance[k], np.diag(p), rtol=1e-10, atol=1e-12)
        # the covariance really stays diagonal in the textbook filter
        assert np.abs(p - np.diag(np.diag(p))).max() < 1e-12
        np.testing.assert_allclose(got.innovation[k], y, rtol=1e-10, atol=1e-12)
        assert got.surprise[k] == pytest.approx(surprise, rel=1e-10, abs=1e-12)
    assert got.first[0] and not got.first[1:].any()


def test_batch_with_interleaved_streams_equals_sequential_per_event() -> None:
    rng = np.random.default_rng(7)
    n = 200
    keys = [f"s{k}" for k in rng.integers(0, 9, size=n)]
    zs, ts, qs, rs = random_sequence(rng, n)
    # some streams already have state
    priors = {
        "s1": StreamPrior(rng.uniform(0, 1, N_STATE), rng.uniform(0.01, 0.1, N_STATE), 1_699_999_000.0),
        "s4": StreamPrior(rng.uniform(0, 1, N_STATE), rng.uniform(0.01, 0.1, N_STATE), 1_699_999_500.0),
    }
    batched = kalman_batch(keys, zs, ts, priors, qs, rs)

    state = dict(priors)
    for i in range(n):  # one event per call, in order
        one = kalman_batch([keys[i]], zs[i : i + 1], ts[i : i + 1], state, qs[i : i + 1], rs[i : i + 1])
        state.update(one.posterior)
        np.testing.assert_allclose(batched.state[i], one.state[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(batched.variance[i], one.variance[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(batched.innovation[i], one.innovation[0], rtol=1e-12, atol=1e-14)
        assert batched.surprise[i] == pytest.approx(one.surprise[0], rel=1e-12, abs=1e-14)
        assert batched.first[i] == one.first[0]
    for key, post in batched.posterior.items():
        np.testing.assert_allclose(post.mean, state[key].mean, rtol=1e-12)
        np.testing.assert_allclose(post.variance, state[key].variance, rtol=1e-12)
        assert post.ts_s == state[key].ts_s
    assert batched.first.sum() == len(set(keys) - set(priors))


def test_occurrence_rank_orders_each_streams_events() -> None:
    idx, rank, unique = occurrence_rank(["a", "b", "a", "c", "a", "b"])
    assert unique == ["a", "b", "c"]
    assert idx.tolist() == [0, 1, 0, 2, 0, 1]
    assert rank.tolist() == [0, 0, 1, 0, 2, 1]


def _one_step_variance(dt: float, cfg: KalmanConfig = CFG) -> float:
    prior = {"s": StreamPrior(np.full(N_STATE, 0.5), np.full(N_STATE, 0.01), 1000.0)}
    out = kalman_batch(["s"], np.full((1, N_STATE), 0.5), np.array([1000.0 + dt]), prior, config=cfg)
    return float(out.innovation_variance[0, 0]) - cfg.default_observation_noise  # = P_pred


def test_process_noise_scales_with_elapsed_time_and_is_clamped() -> None:
    cfg = KalmanConfig(default_process_noise=0.02, dt_unit_s=60.0, dt_min_s=0.0, dt_max_s=3600.0)
    p0 = 0.01
    assert _one_step_variance(0.0, cfg) == pytest.approx(p0)
    assert _one_step_variance(60.0, cfg) == pytest.approx(p0 + 0.02)
    assert _one_step_variance(600.0, cfg) == pytest.approx(p0 + 0.2)
    # longer than dt_max_s: clamped; out-of-order (negative dt): clamped to dt_min_s
    assert _one_step_variance(10 * 3600.0, cfg) == pytest.approx(p0 + 0.02 * 60)
    assert _one_step_variance(-50.0, cfg) == pytest.approx(p0)


def test_longer_silence_trusts_the_new_event_more() -> None:
    prior = {"s": StreamPrior(np.zeros(N_STATE), np.full(N_STATE, 0.01), 0.0)}
    z = np.ones((1, N_STATE))
    soon = kalman_batch(["s"], z, np.array([5.0]), prior)
    late = kalman_batch(["s"], z, np.array([5000.0]), prior)
    assert (late.state > soon.state).all()
    assert late.surprise[0] < soon.surprise[0]  # the same jump is less surprising after a long gap


def test_surprise_is_about_one_when_the_model_is_right() -> None:
    rng = np.random.default_rng(3)
    n, q, r = 4000, 0.01, 0.05
    truth = np.cumsum(rng.normal(0, np.sqrt(q), size=(n, N_STATE)), axis=0)
    zs = truth + rng.normal(0, np.sqrt(r), size=(n, N_STATE))
    ts = np.arange(n) * 60.0
    out = kalman_batch(["s"] * n, zs, ts, {}, np.full((n, N_STATE), q), np.full((n, N_STATE), r))
    assert np.mean(out.surprise[100:] ** 2) == pytest.approx(1.0, abs=0.05)  # E[NIS/n] = 1


def test_first_event_initialises_with_the_documented_prior() -> None:
    z = np.linspace(0, 1, N_STATE)[None]
    r = np.full((1, N_STATE), 0.03)
    out = kalman_batch(["new"], z, np.array([10.0]), {}, observation_noise=r)
    np.testing.assert_array_equal(out.state[0], z[0])
    np.testing.assert_array_equal(out.variance[0], r[0])
    assert out.first[0] and out.surprise[0] == 0.0 and not out.innovation.any()


def test_bad_inputs_raise() -> None:
    z = np.zeros((2, N_STATE))
    with pytest.raises(ValueError):
        kalman_batch(["a", "b"], z, np.zeros(2), {}, observation_noise=np.zeros((2, N_STATE)))
    with pytest.raises(ValueError):
        kalman_batch(["a", "b"], z, np.zeros(2), {}, process_noise=np.zeros((2, 3)))
    with pytest.raises(ValueError):
        kalman_batch(["a", "b"], np.full((2, N_STATE), np.nan), np.zeros(2), {})


def test_empty_batch() -> None:
    out = kalman_batch([], np.zeros((0, N_STATE)), np.zeros(0), {})
    assert out.state.shape == (0, N_STATE) and out.posterior == {}
