"""Small helpers shared by the benches (no imports from tests/)."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).parent / "results"
FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 300}

# Sentences for varied short texts (English and Korean).
SENTENCES_EN = [
    "I finally finished the marathon and my legs hurt but I am proud.",
    "If only I had told her the truth before she left.",
    "The meeting ran late again and nobody listened to my idea.",
    "My neighbour helped me carry the groceries up the stairs today.",
    "I lost my keys and missed the last train home.",
    "We celebrated my sister's graduation with the whole family.",
]
SENTENCES_KO = [
    "오늘 친구들이 깜짝 생일 파티를 열어줘서 정말 행복했어요.",
    "그때 엄마한테 화내지 말았어야 했는데, 너무 후회돼요.",
    "회사에서 동료가 내 아이디어를 가로채서 너무 화가 났어요.",
    "비가 와서 하루 종일 집에서 책을 읽었어요.",
]


def machine(device: str = "cpu") -> dict[str, Any]:
    import confluent_kafka
    import torch

    return {
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
    }


def now_iso() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


def write_json(name: str, report: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def md_table(header: list[str], rows: list[list[Any]], align: str | None = None) -> str:
    align = align or "|" + "|".join("---:" for _ in header) + "|"
    lines = ["| " + " | ".join(header) + " |", align]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def text_of_tokens(count_tokens: Any, target: int, sentence: str = SENTENCES_EN[0]) -> str:
    """`sentence` repeated (then cut by words) until `count_tokens` reaches about `target`."""
    words: list[str] = []
    base = sentence.split()
    i = 0
    while count_tokens(" ".join(words)) < target and i < 10_000:
        words.append(base[i % len(base)])
        i += 1
    return " ".join(words)


# ---- broker / worker helpers ---------------------------------------------------------

def topic_names(prefix: str) -> dict[str, str]:
    return {
        "input_topic": f"{prefix}.input",
        "results_topic": f"{prefix}.results",
        "dlq_topic": f"{prefix}.dlq",
        "state_topic": f"{prefix}.state",
    }


def create_topics(bootstrap: str, prefix: str, partitions: int) -> dict[str, str]:
    from worker.config import Settings
    from worker.kafka import create_topics as _create

    names = topic_names(prefix)
    _create(Settings(bootstrap_servers=bootstrap, **names), partitions=partitions)
    return names


def worker_env(bootstrap: str, prefix: str, http_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDHEART_")}
    env.update({f"REDHEART_{k.upper()}": v for k, v in topic_names(prefix).items()})
    env.update(
        {
            "REDHEART_BOOTSTRAP_SERVERS": bootstrap,
            "REDHEART_GROUP_ID": f"{prefix}-workers",
            "REDHEART_HTTP_PORT": str(http_port),
            "REDHEART_HTTP_HOST": "127.0.0.1",
            "REDHEART_INSTANCE_ID": f"{prefix}-w1",
            "REDHEART_PROFILE": "small",
            "REDHEART_NUM_THREADS": "2",
            "REDHEART_CACHE_SIZE": "0",
            "REDHEART_COMMIT_INTERVAL_MS": "100",
            "REDHEART_LOG_LEVEL": "WARNING",
            "REDHEART_CONSUMER_CONFIG": orjson.dumps(FAST_GROUP).decode(),
        }
    )
    env.update(extra)
    return env


def spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log_path, "wb")
    )


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float, log_path: Path) -> float:
    """Poll /readyz until 200; returns seconds waited. Raises with the log tail otherwise."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {timeout_s}s:\n{log_path.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return int(proc.returncode)


def reader(bootstrap: str, topic: str, group: str | None = None) -> Any:
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"bench-reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 10,
            **FAST_GROUP,
        }
    )
    c.subscribe([topic])
    return c


def time_outputs(
    proc: subprocess.Popen[bytes], rd: Any, n: int, started: float, timeout_s: float, log_path: Path, name: str,
    on_value: Any = None,
) -> tuple[int, float, float, int]:
    """Read `n` records from `rd` while the processor `proc` (started at `started`) runs, then
    stop it: (records read, time of the first, time of the last, the processor's exit code).
    `on_value(value)` sees each record's value. Raises when fewer than `n` came in time."""
    count = 0
    t_first = t_last = None
    try:
        deadline = started + timeout_s
        while count < n and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited {proc.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
            msgs = rd.consume(2000, 0.1)
            now = time.monotonic()
            for m in msgs:
                if m.error() is None:
                    count += 1
                    if on_value is not None:
                        on_value(m.value() or b"")
            if msgs and t_first is None:
                t_first = now
            if msgs:
                t_last = now
    finally:
        rc = stop(proc)
        rd.close()
    if count < n or t_first is None or t_last is None or t_last <= t_first:
        raise RuntimeError(f"{name}: read {count} of {n} results within {timeout_s}s (log {log_path})")
    return count, t_first, t_last, rc
