"""One stream's latest temporal state, read from the worker's own changelog (the state topic).

The worker keeps each stream's state (Kalman filter, recent observations, stream SURD) in
memory and writes it to the compacted state topic at every checkpoint -- in exactly-once mode
in the same transaction as the results, so what a `read_committed` reader finds here is the
state after the last result it could have seen. This is the record a restarted worker restores
from, so it is the authoritative answer, not a reconstruction from results.

Where to look: the changelog record of a stream lives in the state partition numbered like
the input partition its events went to. For events keyed by librdkafka's default partitioner
(this repository's `Client`, `python -m worker produce`) that is `stream_partition(...)`, read
first; when the stream is not there (another partitioner, e.g. a Java producer), the other
partitions are read too. Every read stops at the partition's end (librdkafka's partition-EOF
event, which the embedded broker reports correctly, unlike its end offsets) or at the deadline.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import BaseModel, Field, ValidationError

from schemas import labels as L
from schemas.result import Named, StreamSurd
from schemas.state import StreamState
from worker import logs
from worker.client import BrokerUnavailable, ClientError, TopicsMissing, stream_partition
from worker.config import Settings
from worker.kafka import admin_config

MAX_RECENT = 128


class StateReadTimeout(ClientError, TimeoutError):
    """The state topic was not read to its end within the deadline."""


class KalmanEstimate(BaseModel):
    mean: Named(L.STATE_VECTOR, -1.0, 1.0) = Field(  # type: ignore[valid-type]
        description="filtered estimate of each signal: the seven emotion probabilities (0..1), overall_sentiment "
        "(-1 negative .. +1 positive), ethical_score, regret_potential and causal_clarity (0..1)"
    )
    variance: Named(L.STATE_VECTOR, 0.0, 1e9) = Field(  # type: ignore[valid-type]
        description="uncertainty of each estimate (variance; smaller = more certain, shrinks as events arrive)"
    )


class StreamStateView(BaseModel):
    """What `get_stream_state` returns: the stream's state as of the worker's last checkpoint."""

    stream_id: str
    events_seen: int = Field(description="events of this stream the worker has applied")
    last_event_time: datetime = Field(description="event time of the latest applied event")
    kalman: KalmanEstimate
    trajectory: list[dict[str, float]] = Field(
        description="the most recent raw observations, oldest first, one per event, keyed like `kalman.mean`"
    )
    surd: StreamSurd | None = Field(
        description="where the information about the stream's next overall_sentiment comes from, over its recent "
        "window (bits, bias-corrected; `shares` sum to 1: redundant, unique, synergistic, leak). Null until the "
        "window holds 64 events; recomputed every 8 events"
    )
    typical_gap_s: float | None = Field(description="typical seconds between the stream's events")
    source: str = Field(description="the changelog record this was read from (topic[partition]@offset)")


def view(state: StreamState, recent: int, source: str) -> StreamStateView:
    rows = state.window[-recent:] if recent > 0 else []
    return StreamStateView(
        stream_id=state.stream_id,
        events_seen=state.events_seen,
        last_event_time=state.last_ts,
        kalman=KalmanEstimate(mean=state.mean, variance=state.variance),
        trajectory=[dict(zip(L.STATE_VECTOR, row)) for row in rows],
        surd=state.surd,
        typical_gap_s=state.typical_gap_s,
        source=source,
    )


def _consumer(settings: Settings) -> Consumer:
    return Consumer(
        {
            **admin_config(settings),
            "group.id": f"redheart-state-reader-{uuid.uuid4().hex}",  # never joined: partitions are assigned
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "logger": logs.get("librdkafka"),
        }
    )


def _read_to_end(
    consumer: Consumer, topic: str, partitions: list[int], key: bytes, deadline: float
) -> tuple[bool, bytes | None, str]:
    """(seen, latest value or None for a tombstone, where) of `key` in `partitions`."""
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    open_parts = set(partitions)
    seen, value, where = False, None, ""
    while open_parts:
        if time.monotonic() > deadline:
            raise StateReadTimeout(f"{topic} partitions {sorted(open_parts)} not read to their end in time")
        for msg in consumer.consume(1000, 0.2):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    open_parts.discard(msg.partition())
                    continue
                if err.fatal() or not err.retriable():
                    raise ClientError(f"reading {topic}: {err}")
                continue
            if msg.key() == key:
                seen, value, where = True, msg.value(), f"{topic}[{msg.partition()}]@{msg.offset()}"
    consumer.unassign()
    return seen, value, where


def read_stream_state(
    settings: Settings, stream_id: str, *, recent: int = 16, timeout: float = 15.0
) -> StreamStateView | None:
    """The stream's latest committed state, or None when the worker holds none (no event applied
    yet, or evicted after `REDHEART_STATE_TTL_S` idle / past `REDHEART_MAX_STREAMS`)."""
    recent = max(0, min(recent, MAX_RECENT))
    deadline = time.monotonic() + timeout
    consumer = _consumer(settings)
    topic, key = settings.state_topic, stream_id.encode("utf-8")
    try:
        try:
            md = consumer.list_topics(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from None
        if topic not in md.topics or md.topics[topic].error is not None:
            raise TopicsMissing(f"the state topic {topic} does not exist on {settings.bootstrap_servers}")
        n = len(md.topics[topic].partitions)
        first = stream_partition(stream_id, n)
        try:
            seen, value, where = _read_to_end(consumer, topic, [first], key, deadline)
            if not seen and n > 1:
                seen, value, where = _read_to_end(consumer, topic, [p for p in range(n) if p != first], key, deadline)
        except KafkaException as exc:
            raise ClientError(f"reading {topic}: {exc}") from None
    finally:
        consumer.close()
    if value is None:
        return None
    try:
        state = StreamState.model_validate_json(value)
    except ValidationError as exc:
        why = f"the state record {where} is not a valid stream state ({exc.error_count()} errors)"
        raise ClientError(why) from None
    return view(state, recent, where)
