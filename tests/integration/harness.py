"""Run the real worker as a process against a real broker, and read what it publishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Message

from tests.brokers import Broker
from worker.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings_for(broker: Broker, prefix: str) -> Settings:
    return Settings(
        bootstrap_servers=broker.bootstrap,
        group_id=f"{prefix}-workers",
        input_topic=f"{prefix}.input",
        results_topic=f"{prefix}.results",
        dlq_topic=f"{prefix}.dlq",
        state_topic=f"{prefix}.state",
    )


def worker_env(broker: Broker, s: Settings, http_port: int, instance: str = "w1", **extra: str) -> dict[str, str]:
    """Environment of one logical worker; a restart reuses it (same instance id, so the
    restarted process fences its crashed predecessor's transaction)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDHEART_")}
    env.update(
        {
            "REDHEART_BOOTSTRAP_SERVERS": s.bootstrap_servers,
            "REDHEART_GROUP_ID": s.group_id,
            "REDHEART_INPUT_TOPIC": s.input_topic,
            "REDHEART_RESULTS_TOPIC": s.results_topic,
            "REDHEART_DLQ_TOPIC": s.dlq_topic,
            "REDHEART_STATE_TOPIC": s.state_topic,
            "REDHEART_HTTP_PORT": str(http_port),
            "REDHEART_HTTP_HOST": "127.0.0.1",
            "REDHEART_INSTANCE_ID": instance,
            "REDHEART_PROFILE": "small",
            "REDHEART_NUM_THREADS": "2",
            "REDHEART_CONSUMER_CONFIG": orjson.dumps(dict(broker.consumer_overrides)).decode(),
        }
    )
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    env: dict[str, str]
    args: list[str] = field(default_factory=lambda: ["run", "--allow-untrained"])
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, log_dir: Path) -> "WorkerProcess":
        self.log_path = log_dir / f"worker-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"),
        )
        return self

    @property
    def port(self) -> int:
        return int(self.env["REDHEART_HTTP_PORT"])

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout_s}s:\n{self.log()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"worker ignored SIGTERM for {timeout_s}s:\n{self.log()}")
        return int(self.proc.returncode)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path else ""


def run_to_exit(env: dict[str, str], args: list[str], timeout_s: float = 120.0) -> tuple[int, str]:
    p = subprocess.run(
        [sys.executable, "-m", "worker", *args], env=env, cwd=ROOT, capture_output=True, timeout=timeout_s
    )
    return p.returncode, p.stderr.decode(errors="replace")


def event_id_of(msg: Message) -> str:
    return orjson.loads(msg.value())["event_id"]


def read_topics(
    broker: Broker, topics: dict[str, int], timeout_s: float = 240.0, distinct: Callable[[Message], Any] | None = None
) -> dict[str, list[Message]]:
    """Read until each topic has at least the wanted count (or time runs out); then a short
    grace period so that extra (duplicate) records would be seen too. `distinct` (e.g.
    `event_id_of`): count distinct values instead of records, so that duplicates (expected
    after a crash in at-least-once) cannot end the reading before every result is there."""
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False, "isolation.level": "read_committed",
         **dict(broker.consumer_overrides)}
    )
    consumer.subscribe(list(topics))
    got: dict[str, list[Message]] = {t: [] for t in topics}
    seen: dict[str, set[Any]] = {t: set() for t in topics}
    deadline = time.monotonic() + timeout_s
    grace_until: float | None = None

    def count(t: str) -> int:
        return len(seen[t]) if distinct is not None else len(got[t])

    try:
        while time.monotonic() < deadline:
            if grace_until is None and all(count(t) >= n for t, n in topics.items()):
                grace_until = time.monotonic() + 2.0
            if grace_until is not None and time.monotonic() > grace_until:
                break
            for msg in consumer.consume(500, 0.2):
                if msg.error() is None:
                    got[msg.topic()].append(msg)
                    if distinct is not None:
                        seen[msg.topic()].add(distinct(msg))
    finally:
        consumer.close()
    return got


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format -> {'name{labels}': value} (samples only)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out
