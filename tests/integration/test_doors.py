"""The three doors to the worker, end to end through the embedded broker and one real
worker process: the Python client (threads, asyncio, dead letters, timeouts, no worker, no
broker), the `analyze` command and the MCP server driven by the official SDK's stdio client.

One worker serves the whole module (loading the model is the slow part). It runs with a small
text limit (REDHEART_MAX_TEXT_BYTES=200) so that a text the client's schema accepts is still
dead-lettered by the worker: the rejection test goes through the worker's DLQ path.
"""

from __future__ import annotations

import asyncio
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import anyio
import pytest
from confluent_kafka import Producer
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from schemas import labels as L
from schemas.result import ResultEvent
from tests.brokers import Broker
from tests.integration.harness import ROOT, WorkerProcess, settings_for, worker_env
from worker.client import AnalysisRejected, AnalysisTimeout, BrokerUnavailable, Client, stream_partition
from worker.config import Settings
from worker.devbroker import free_port
from worker.kafka import create_topics

pytestmark = pytest.mark.integration

MAX_TEXT_BYTES = 200
# Generous deadlines: they bound a broken run, they are never asserted on.
ANSWER_S = 120.0


@pytest.fixture(scope="module")
def served(embedded: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, str]]]:
    s = settings_for(embedded, "doors")
    create_topics(s, partitions=3)
    env = worker_env(embedded, s, free_port(), REDHEART_MAX_TEXT_BYTES=str(MAX_TEXT_BYTES))
    worker = WorkerProcess(env).start(tmp_path_factory.mktemp("doors"))
    try:
        worker.wait_ready(timeout_s=600.0)
        yield s, env
        assert worker.alive(), f"the worker died:\n{worker.log()}"
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def client(served: tuple[Settings, dict[str, str]]) -> Iterator[Client]:
    with Client.from_settings(served[0]) as c:
        yield c


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_analyze_command_prints_the_result_json_and_a_summary(served: tuple[Settings, dict[str, str]]) -> None:
    _, env = served
    proc = _cli(env, "analyze", "I got the job and I can't stop smiling", "--stream-id", "cli-1", "--lang", "en",
                "--timeout", str(ANSWER_S), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = ResultEvent.model_validate_json(proc.stdout)
    assert set(result.analysis.emotion.emotions) == set(L.EMOTIONS)
    assert result.stream_id == "cli-1" and result.lang == "en"

    proc = _cli(env, "analyze", "The storm outside scares me", "--stream-id", "cli-1", "--timeout", str(ANSWER_S))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dominant:" in proc.stdout and "sentiment:" in proc.stdout
    for name in L.EMOTIONS:
        assert f"\n  {name} " in proc.stdout
    assert "stream:     2 events" in proc.stdout  # the second event of cli-1: its trajectory is shown


def test_four_threads_each_get_their_own_result(client: Client) -> None:
    texts = ["I miss my dad every single day", "We adopted a puppy and we love her",
             "He lied to me again and I'm furious", "오늘 시험에 합격해서 너무 기뻐요"]

    def ask(i: int) -> ResultEvent:
        return client.analyze(texts[i], stream_id=f"thread-{i}", metadata={"caller": i, "text": texts[i]},
                              timeout=ANSWER_S)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(ask, range(4)))
    for i, r in enumerate(results):
        assert r.stream_id == f"thread-{i}" and r.metadata == {"caller": i, "text": texts[i]}
        assert set(r.analysis.emotion.emotions) == set(L.EMOTIONS)
    assert len({r.event_id for r in results}) == 4
    assert client.pending == 0


def test_asyncio_callers_share_the_client(client: Client) -> None:
    async def main() -> list[ResultEvent]:
        return await asyncio.gather(*(
            client.analyze_async(f"What a surprise party that was ({i})", stream_id="async-1",
                                 metadata={"n": i}, timeout=ANSWER_S)
            for i in range(3)
        ))

    results = asyncio.run(main())
    assert [r.metadata for r in results] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {r.stream_id for r in results} == {"async-1"} and len({r.event_id for r in results}) == 3
    assert client.pending == 0


def test_analyze_many_and_results_follow_one_stream(client: Client) -> None:
    follow = client.results(stream_id="many-1", idle_timeout=ANSWER_S)
    got = client.analyze_many(["I should have apologized", "If only I had taken the other offer"],
                              stream_id="many-1", timeout=ANSWER_S)
    assert [r.stream_id for r in got] == ["many-1", "many-1"]  # type: ignore[union-attr]
    seen = [next(follow), next(follow)]
    follow.close()
    assert {r.event_id for r in seen} == {r.event_id for r in got}  # type: ignore[union-attr]


def test_a_dead_lettered_request_raises_the_workers_reason(client: Client) -> None:
    text = "This sentence is long enough to pass the client's schema but not the worker's limit. " * 3
    assert MAX_TEXT_BYTES < len(text.encode()) < 8192
    with pytest.raises(AnalysisRejected) as caught:
        client.analyze(text, stream_id="dlq-1", timeout=ANSWER_S)
    assert caught.value.error_class == "oversized"
    assert f"over the {MAX_TEXT_BYTES}-byte limit" in caught.value.reason
    assert caught.value.dead_letter.source_topic == client.input_topic
    assert client.pending == 0


def test_a_timeout_raises_and_forgets_the_request(client: Client) -> None:
    with pytest.raises(AnalysisTimeout) as caught:
        client.analyze("Nobody can answer within a microsecond", stream_id="late-1", timeout=1e-6)
    assert isinstance(caught.value, TimeoutError)
    assert client.pending == 0
    # the late answer to the forgotten request is dropped; the client goes on answering
    assert client.analyze("And now there is time", stream_id="late-1", timeout=ANSWER_S).stream_id == "late-1"
    assert client.pending == 0


def test_no_worker_means_a_timeout_that_says_so(embedded: Broker, served: tuple[Settings, dict[str, str]]) -> None:
    idle = settings_for(embedded, "doors-idle")  # topics, but no worker consuming them
    create_topics(idle, partitions=1)
    with Client.from_settings(idle) as c:
        with pytest.raises(AnalysisTimeout, match="is a worker running"):
            c.analyze("Is anyone there?", timeout=2.0)
        assert c.pending == 0
        async def ask() -> None:
            await c.analyze_async("Anyone at all?", timeout=2.0)
        with pytest.raises(AnalysisTimeout):
            asyncio.run(ask())
        assert c.pending == 0

        async def cancel() -> None:  # a caller that gives up (task cancelled) leaves nothing behind
            task = asyncio.create_task(c.analyze_async("Never mind", timeout=ANSWER_S))
            while c.pending == 0 and not task.done():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        asyncio.run(cancel())
        assert c.pending == 0
    env = {**served[1], "REDHEART_INPUT_TOPIC": idle.input_topic, "REDHEART_RESULTS_TOPIC": idle.results_topic,
           "REDHEART_DLQ_TOPIC": idle.dlq_topic, "REDHEART_STATE_TOPIC": idle.state_topic}
    proc = _cli(env, "analyze", "Is anyone there?", "--timeout", "2")
    assert proc.returncode == 1 and "no result" in proc.stderr and "is a worker running" in proc.stderr


def test_an_unreachable_broker_is_a_clear_error(served: tuple[Settings, dict[str, str]]) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    with pytest.raises(BrokerUnavailable, match=f"cannot reach Kafka at {nowhere}"):
        Client(nowhere, connect_timeout=2.0)
    proc = _cli({**served[1], "REDHEART_BOOTSTRAP_SERVERS": nowhere}, "analyze", "hello", "--timeout", "2")
    assert proc.returncode == 1 and f"cannot reach Kafka at {nowhere}" in proc.stderr


def test_mcp_server_over_stdio(served: tuple[Settings, dict[str, str]], tmp_path: Path) -> None:
    _, env = served
    params = StdioServerParameters(command=sys.executable, args=["-m", "worker", "mcp", "--timeout", str(ANSWER_S)],
                                   env=env, cwd=str(ROOT))

    async def session() -> None:
        with anyio.fail_after(600), open(tmp_path / "mcp.log", "w") as errlog:  # bounds a broken run only
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as mcp:
                await mcp.initialize()
                tools = {t.name: t for t in (await mcp.list_tools()).tools}
                assert {"analyze_text", "get_stream_state", "get_status"} <= set(tools)
                assert tools["analyze_text"].output_schema is not None
                assert "overall_sentiment" in (tools["analyze_text"].description or "")

                for text in ("We adopted a puppy and we love her", "The smell in that kitchen was disgusting"):
                    res = await mcp.call_tool("analyze_text", {"text": text, "stream_id": "mcp-1", "lang": "en"})
                    assert not res.is_error, res.content
                    result = ResultEvent.model_validate(res.structured_content)
                    assert set(result.analysis.emotion.emotions) == set(L.EMOTIONS)
                    assert result.stream_id == "mcp-1"

                res = await mcp.call_tool("get_stream_state", {"stream_id": "mcp-1", "recent": 4})
                assert not res.is_error, res.content
                state = res.structured_content or {}
                assert state["stream_id"] == "mcp-1" and state["events_seen"] == 2
                assert len(state["trajectory"]) == 2 and set(state["kalman"]["mean"]) == set(L.STATE_VECTOR)

                res = await mcp.call_tool("get_status", {})
                assert not res.is_error, res.content
                status = res.structured_content or {}
                status = status.get("result", status)
                assert status["model"]["profile"] == "small"

                # tool errors carry the reason: the worker's dead letter, a stream without state, bad input
                res = await mcp.call_tool("analyze_text", {"text": "x" * (MAX_TEXT_BYTES + 1), "stream_id": "mcp-2"})
                assert res.is_error and "oversized" in res.content[0].text  # type: ignore[union-attr]
                res = await mcp.call_tool("get_stream_state", {"stream_id": "never-seen"})
                assert res.is_error
                assert "no state for stream 'never-seen'" in res.content[0].text  # type: ignore[union-attr]
                res = await mcp.call_tool("analyze_text", {"text": "hi", "lang": "not a language"})
                assert res.is_error and "invalid input" in res.content[0].text  # type: ignore[union-attr]

    anyio.run(session)


def _line(stream: IO[str], deadline: float) -> str:
    """The process's next line, or an assertion once the deadline passes (never a hang)."""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.5)
        if ready:
            return stream.readline()
    raise AssertionError("no line from the process before the deadline")


def test_tail_command_follows_one_stream(served: tuple[Settings, dict[str, str]], client: Client) -> None:
    _, env = served
    tail = subprocess.Popen([sys.executable, "-m", "worker", "tail", "--stream-id", "tail-1", "--json"], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + ANSWER_S
        assert "following" in _line(tail.stderr, deadline)  # type: ignore[arg-type]  # positioned from here on
        client.analyze("Somebody else's stream", stream_id="tail-0", timeout=ANSWER_S)
        sent = client.analyze("We adopted a puppy and we love her", stream_id="tail-1", timeout=ANSWER_S)
        shown = ResultEvent.model_validate_json(_line(tail.stdout, deadline))  # type: ignore[arg-type]
        assert shown.event_id == sent.event_id and shown.stream_id == "tail-1"
    finally:
        tail.send_signal(signal.SIGINT)
        # communicate drains both pipes: a process blocked writing to a full pipe cannot exit
        _, err = tail.communicate(timeout=60)
    assert tail.returncode == 0, err[-3000:]


def test_stream_partition_is_librdkafkas_default_partitioner(embedded: Broker) -> None:
    """`get_stream_state` looks for a stream's state first where this says its events went."""
    s = settings_for(embedded, "doors-part")
    create_topics(s, partitions=5)
    producer = Producer({"bootstrap.servers": embedded.bootstrap})
    landed: dict[str, int] = {}
    streams = [f"stream-{i}" for i in range(40)] + ["사용자-7", "user-42"]
    for sid in streams:
        producer.produce(s.input_topic, key=sid.encode(), value=b"{}",
                         on_delivery=lambda err, msg, sid=sid: landed.__setitem__(sid, msg.partition()))
    assert producer.flush(30) == 0
    assert landed == {sid: stream_partition(sid, 5) for sid in streams}
