"""`advance`: Kalman over a batch into StreamState/Temporal; split batches equal one batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pipeline.temporal.stream import BatchEvent, advance
from schemas import labels as L

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def events(n: int, seed: int = 0) -> list[BatchEvent]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        row = rng.uniform(0, 1, len(L.STATE_VECTOR))
        out.append(BatchEvent(f"s{rng.integers(0, 4)}", 2, 100 + i, T0 + timedelta(seconds=30 * i), row.tolist()))
    return out


def test_split_batches_equal_one_batch_and_states_are_valid() -> None:
    evs = events(60)
    whole, whole_s = advance(evs, {})
    first, states = advance(evs[:25], {})
    second, later = advance(evs[25:], states)
    whole_t, first_t, second_t = ([s.to_model() for s in steps] for steps in (whole, first, second))
    states = {**states, **later}
    for a, b in zip(whole_t, first_t + second_t):
        assert np.allclose([a.state[n] for n in L.STATE_VECTOR], [b.state[n] for n in L.STATE_VECTOR], atol=1e-12)
        assert a.events_seen == b.events_seen
        assert abs(a.surprise - b.surprise) < 1e-9
    for key, s in whole_s.items():
        assert s.to_state().model_dump() == states[key].to_state().model_dump()
        assert s.events_seen == len(s.window) == sum((e.partition, e.stream_id) == key for e in evs)
        assert s.input_offset == max(e.offset for e in evs if (e.partition, e.stream_id) == key)


def test_window_is_bounded() -> None:
    evs = [BatchEvent("a", 0, i, T0 + timedelta(seconds=i), [0.5] * len(L.STATE_VECTOR)) for i in range(10)]
    _, states = advance(evs, {}, max_window=4)
    assert len(states[(0, "a")].window) == 4 and states[(0, "a")].events_seen == 10
    track = states[(0, "a")]
    assert track.to_state().window == track.window.tolist()  # the changelog's row JSON follows the trim
    _, again = advance(evs[:3], {(0, "a"): track}, max_window=4)
    assert again[(0, "a")].to_state().window == again[(0, "a")].window.tolist()


def test_blocks_and_states_built_without_validation_pass_validation() -> None:
    """`advance` builds its steps and StreamState without validation (speed): every block,
    with SURD, spectra and a forecast present, must still be a valid message."""
    from schemas.result import Temporal
    from schemas.state import StreamState

    evs = [BatchEvent("one", 0, i, e.ts, e.observation) for i, e in enumerate(events(140))]
    blocks, states = advance(evs, {}, forecast_steps=3)
    assert blocks[-1].surd is not None and blocks[-1].dsp is not None and blocks[-1].forecast is not None
    for step in blocks:
        block = step.to_model()
        assert Temporal.model_validate_json(block.model_dump_json()) == block
    for track in states.values():
        state = track.to_state()  # the changelog JSON, validated
        assert StreamState.model_validate_json(state.model_dump_json()) == state
        assert state.window == track.window.tolist() and state.events_seen == track.events_seen


def test_one_stream_id_on_two_partitions_is_two_streams() -> None:
    evs = [BatchEvent("a", i % 2, i, T0 + timedelta(seconds=i), [0.1 * (i % 2)] * len(L.STATE_VECTOR))
           for i in range(6)]
    steps, states = advance(evs, {})
    assert [s.events_seen for s in steps] == [1, 1, 2, 2, 3, 3]
    assert set(states) == {(0, "a"), (1, "a")} and states[(1, "a")].mean[0] == pytest.approx(0.1)


def test_block_json_writes_what_the_models_write() -> None:
    """A stream's SURD and spectra blocks are serialized by `block_json` from their fields
    (not the models' serializer): the JSON must read back as the model's own, for blocks made
    by `advance` and for blocks restored from a validated state."""
    import orjson

    from pipeline.temporal.stream import block_json
    from schemas.state import StreamState

    evs = [BatchEvent("one", 0, i, e.ts, e.observation) for i, e in enumerate(events(80))]
    _, states = advance(evs, {})
    made = states[(0, "one")]
    restored = StreamState.model_validate_json(made.to_json())
    for block in (made.surd, made.dsp, restored.surd, restored.dsp):
        assert block is not None
        assert orjson.loads(orjson.dumps(block_json(block))) == orjson.loads(block.model_dump_json())


def test_appending_in_shared_storage_never_changes_an_earlier_state() -> None:
    """Successive states of a stream share one window storage (rows appended in place): an
    earlier state must read exactly as before, a second step from the same state (as after a
    failed batch) must not see the first one's rows, and many small steps must equal one."""
    evs = [BatchEvent("one", 0, i, e.ts, e.observation) for i, e in enumerate(events(200, seed=3))]
    key = (0, "one")
    _, s1 = advance(evs[:50], {}, max_window=16)
    before, before_json = s1[key].window.copy(), s1[key].to_json()
    _, s2 = advance(evs[50:53], s1, max_window=16)
    assert s2[key]._store is s1[key]._store  # appended in place
    assert np.array_equal(s1[key].window, before) and s1[key].to_json() == before_json
    _, again = advance(evs[50:53], s1, max_window=16)
    assert again[key]._store is not s1[key]._store  # the storage moved on: a new one
    assert again[key].to_json() == s2[key].to_json()
    state = s2
    for lo in range(53, 200, 7):
        _, state = advance(evs[lo : lo + 7], state, max_window=16)
    _, whole = advance(evs, {}, max_window=16)
    assert state[key].to_json() == whole[key].to_json()
    assert state[key].window.tolist() == whole[key].window.tolist() == [e.observation for e in evs[-16:]]
