"""`python -m worker mcp`: Red Heart as tools for an LLM agent (Model Context Protocol).

The server is another client of the worker's topics -- it analyses nothing itself: `analyze_text`
is a `Client.analyze` round trip, `get_stream_state` reads the worker's state changelog
(`worker.stream_view`), `get_status` fetches the worker's HTTP `/status`. Every tool has a
deadline, and every failure (no worker, no broker, a rejected input) comes back as an MCP tool
error whose text says why, so an agent can read it and decide -- never a hang.

Built on the official MCP Python SDK; stdio by default (an agent launches it as a subprocess),
streamable HTTP with `--http PORT`.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

import anyio
import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, ValidationError

from schemas.result import ResultEvent
from worker import __version__, logs
from worker.client import AnalysisRejected, Client, ClientError, build_event
from worker.config import Settings
from worker.stream_view import MAX_RECENT, StreamStateView, read_stream_state

log = logs.get("redheart.mcp")

INSTRUCTIONS = (
    "Red Heart analyses short texts (English or Korean) for emotion, sentiment, ethics and regret, and keeps a "
    "temporal state per stream (a conversation, a user, a diary): pass the same stream_id to follow how a "
    "stream's mood evolves. Scores come from a trained model; a result with model.trained=false is from "
    "untrained heads and carries no meaning."
)

ANALYZE_DESCRIPTION = """Analyse one text and return the worker's full result.

Key fields of the result:
- analysis.emotion.emotions: probabilities of seven emotions (joy, love, surprise, anger, fear, sadness,
  disgust), each 0..1, summing to 1; analysis.emotion.dominant is the most probable one.
- integrated.overall_sentiment: -1 (negative) .. +1 (positive) = P(joy+love+surprise) - P(anger+fear+sadness+disgust).
- integrated.confidence: 0..1, how far to trust this result (calibrated certainty x share of analyses that ran).
- integrated.ethical_score and regret_potential: 0..1.
- analysis.emotion.cultural: Korean cultural intensities jeong, han, chemyeon, each 0..1.
- temporal: the stream's state after this event (Kalman-filtered mean of the scores, surprise ~1 when the event
  fits the stream's history, higher when it does not); absent for a stream's first event.
- model.trained: false means untrained weights; treat the numbers as meaningless then.
Without stream_id the text is analysed as a stream of its own. Fails with the worker's reason when the worker
rejects the input (e.g. text over its size limit), or when no worker answers in time."""

STATE_DESCRIPTION = """The latest temporal state the worker holds for a stream (as of its last checkpoint,
normally well under a second behind the latest result).

- kalman.mean: filtered estimate of 11 signals: the seven emotion probabilities (0..1), overall_sentiment
  (-1..+1), ethical_score, regret_potential, causal_clarity (0..1); kalman.variance: their uncertainty.
- trajectory: the last `recent` raw observations, oldest first, same keys: how the stream moved.
- surd.shares: where information about the stream's next sentiment comes from (redundant, unique, synergistic,
  leak; sum to 1; leak high = the past says little); null until the stream has 64 events.
- events_seen, last_event_time, typical_gap_s (seconds between events).
Fails when the stream has no state (never analysed, or evicted after long idleness)."""

STATUS_DESCRIPTION = """The worker's own status (its HTTP /status): version, model (profile, mode, trained,
checkpoint), assigned partitions, batcher queue, cache hit counts, number of streams held in memory, liveness
(seconds since progress) and its redacted configuration. Use it to check that a worker is running and which
model answers. Fails when the worker's HTTP port does not answer."""


class Tools:
    """The three tools over one lazily created `Client`: listing tools must work even while the
    broker is down, and a failed connection is retried on the next call."""

    def __init__(self, settings: Settings, status_url: str, timeout: float) -> None:
        self.settings = settings
        self.status_url = status_url
        self.timeout = timeout
        self._client: Client | None = None
        self._lock = threading.Lock()

    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = Client.from_settings(self.settings, connect_timeout=min(10.0, self.timeout))
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    async def analyze_text(
        self,
        text: Annotated[str, Field(description="the text to analyse (UTF-8, a sentence or a short paragraph)")],
        stream_id: Annotated[
            str | None,
            Field(description="stream this text belongs to (a conversation, a user); reuse it to build a history"),
        ] = None,
        lang: Annotated[
            str | None, Field(description="ISO 639 code such as 'en' or 'ko'; detected when omitted")
        ] = None,
    ) -> ResultEvent:
        try:
            build_event(text, stream_id, lang)  # a malformed input is refused before any connection is tried
            client = await anyio.to_thread.run_sync(self.client)
            return await client.analyze_async(text, stream_id=stream_id, lang=lang, timeout=self.timeout)
        except AnalysisRejected as exc:
            raise ToolError(f"the worker rejected the input ({exc.error_class}): {exc.reason}") from None
        except ClientError as exc:
            raise ToolError(str(exc)) from None
        except ValidationError as exc:  # the input schema, checked before anything is sent
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
            raise ToolError(f"invalid input: {problems}") from None

    async def get_stream_state(
        self,
        stream_id: Annotated[str, Field(min_length=1, max_length=256, description="the stream to look up")],
        recent: Annotated[
            int, Field(ge=0, le=MAX_RECENT, description="how many recent observations to include in trajectory")
        ] = 16,
    ) -> StreamStateView:
        try:
            state = await anyio.to_thread.run_sync(
                lambda: read_stream_state(self.settings, stream_id, recent=recent, timeout=self.timeout)
            )
        except ClientError as exc:
            raise ToolError(str(exc)) from None
        if state is None:
            raise ToolError(
                f"no state for stream {stream_id!r} on {self.settings.state_topic}: no event of it has been "
                "analysed yet, or the worker evicted it (idle past its TTL, or over its stream limit)"
            )
        return state

    async def get_status(self) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=min(10.0, self.timeout)) as http:
                response = await http.get(self.status_url)
        except httpx.HTTPError as exc:
            raise ToolError(
                f"the worker's status at {self.status_url} did not answer ({type(exc).__name__}: {exc}): "
                "is a worker running, and is REDHEART_HTTP_PORT (or --status-url) its port?"
            ) from None
        if response.status_code != 200:
            raise ToolError(f"the worker's status at {self.status_url} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ToolError(f"the worker's status at {self.status_url} is not JSON") from None
        if not isinstance(body, dict):
            raise ToolError(f"the worker's status at {self.status_url} is not a JSON object")
        return body


def build(tools: Tools) -> MCPServer:
    server = MCPServer("redheart", instructions=INSTRUCTIONS, version=__version__)
    server.add_tool(tools.analyze_text, name="analyze_text", title="Analyse a text", description=ANALYZE_DESCRIPTION)
    server.add_tool(
        tools.get_stream_state, name="get_stream_state", title="A stream's temporal state",
        description=STATE_DESCRIPTION,
    )
    server.add_tool(tools.get_status, name="get_status", title="Worker status", description=STATUS_DESCRIPTION)
    return server


def serve(settings: Settings, *, http_port: int | None, host: str, status_url: str | None, timeout: float) -> int:
    """Run until the agent disconnects (stdio) or the process is stopped (HTTP)."""
    url = status_url or f"http://127.0.0.1:{settings.http_port}/status"
    tools = Tools(settings, url, timeout)
    server = build(tools)
    log.info("mcp server starting", extra={"transport": "streamable-http" if http_port else "stdio",
                                             "port": http_port, "status_url": url})
    try:
        if http_port is None:
            server.run("stdio")
        else:
            import uvicorn

            # log_config=None: uvicorn's lines go through the root logger, as JSON like the rest
            app = server.streamable_http_app(host=host)
            uvicorn.run(app, host=host, port=http_port, log_config=None, log_level=settings.log_level.lower())
    finally:
        tools.close()
    return 0
