"""Prometheus metrics of the worker, on their own registry (no global state in tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.consumed = Counter("redheart_events_consumed", "input records consumed", registry=r)
        self.produced = Counter("redheart_results_produced", "results produced", registry=r)
        self.dead_letters = Counter(
            "redheart_dead_letters", "records sent to the DLQ", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "redheart_batch_size", "events per micro-batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "redheart_batch_tokens", "text tokens per micro-batch",
            buckets=tuple(b * 64 for b in _BATCH_BUCKETS), registry=r,
        )
        self.stage_seconds = Histogram(
            "redheart_stage_seconds", "time per batch stage", ["stage"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.end_to_end = Histogram(
            "redheart_end_to_end_seconds", "record timestamp to result produced",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.assigned = Gauge("redheart_assigned_partitions", "input partitions owned", registry=r)
        self.consumer_lag = Gauge(
            "redheart_consumer_lag", "records behind the partition end (librdkafka statistics)",
            ["partition"], registry=r,
        )
        self.cache_hits = Counter("redheart_cache_hits", "result cache hits", registry=r)
        self.cache_misses = Counter("redheart_cache_misses", "result cache misses", registry=r)
        self.gpu_memory = Gauge(
            "redheart_gpu_memory_bytes", "GPU memory allocated by torch (0 on CPU)", registry=r
        )
        self.backpressure = Counter(
            "redheart_backpressure_pauses", "times the producer queue was full and partitions were paused",
            registry=r,
        )
        self.rationales = Counter(
            "redheart_rationales", "production-oss: helper-LLM rationales by outcome", ["status", "reason"], registry=r
        )
        self.streams_in_state = Gauge("redheart_streams_in_state", "streams held in memory", registry=r)
        self.streams_evicted = Counter(
            "redheart_streams_evicted", "streams removed from memory (tombstoned): ttl = idle past "
            "REDHEART_STATE_TTL_S, cap = least recently updated past REDHEART_MAX_STREAMS", ["reason"], registry=r,
        )
        self.state_records_skipped = Counter(
            "redheart_state_records_skipped", "state-topic records skipped on restore (not a state of that partition)",
            registry=r,
        )

    def observe_stats(self, stats: dict, topic: str) -> None:
        """Consumer lag per partition from librdkafka's statistics JSON.

        librdkafka reports -1 where it does not know the lag yet; those are skipped
        rather than published as a real figure.
        """
        parts = stats.get("topics", {}).get(topic, {}).get("partitions", {})
        for pid, p in parts.items():
            if pid == "-1" or not isinstance(p, dict):
                continue
            lag = p.get("consumer_lag", -1)
            if isinstance(lag, int) and lag >= 0:
                self.consumer_lag.labels(partition=pid).set(lag)
