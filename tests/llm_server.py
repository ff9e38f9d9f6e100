"""A real, local OpenAI-compatible chat-completions server for tests (and manual runs).

`production-oss` talks to a helper LLM over HTTP; testing that against a mock of the HTTP
client would test nothing of the protocol, the connection handling or the timeouts. This
is a real HTTP/1.1 server (stdlib `ThreadingHTTPServer`, keep-alive, 127.0.0.1, port 0 by
default) in a background thread, speaking just enough of the protocol:

* `POST /v1/chat/completions` -> a `chat.completion` object (id, object, created, model,
  choices[{index, message{role, content}, finish_reason}], usage).
* `GET /v1/models` -> a `list` with the served model.

Its behaviour is switchable at run time, globally or only for requests whose body contains
a given string (so one test can make one event slow and the others fast):
`ok`, `slow` (ok after `delay_ms`), `error` (HTTP `status`, an OpenAI-style error body),
`garbage` (200 with a non-JSON body), `empty` (content null), `malformed` (valid JSON
without `choices`), `huge` (a valid completion whose body is `size` bytes, written in 64 KiB
pieces with a Content-Length, or `chunked` without one; a client that stops reading shows up
in `aborted_count`). `gzip=True` sends any 200 answer gzip-compressed. An `ok` answer is derived from the request -- it names the
`dominant_emotion:` found in the prompt -- so a test can tell which event an answer
belongs to. It counts requests, connections and finished responses, records the last
body and headers, and the peak number of requests handled at once.

Usage: `with FakeOpenAIServer() as srv: ... srv.base_url ...`, or standalone:
`python -m tests.llm_server --port 8001` for a worker run by hand.
"""

from __future__ import annotations

import argparse
import gzip as gzip_lib
import json
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["ok", "slow", "error", "garbage", "empty", "malformed", "huge"]
_EMOTION = re.compile(r"dominant_emotion:\s*([^\s,;]+)")


class _Server(ThreadingHTTPServer):
    # listen() backlog: the stdlib's 5 drops connects when a batch opens dozens at once,
    # which a client sees as a 1 s SYN retry or a connection error, not as the LLM's latency
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)  # a client that hung up is no error


@dataclass(frozen=True)
class Behaviour:
    mode: Mode = "ok"
    delay_ms: float = 0.0
    status: int = 503
    size: int = 0  # huge: body bytes
    chunked: bool = False  # huge: Transfer-Encoding chunked, no Content-Length
    gzip: bool = False  # 200 answers gzip-compressed (Content-Encoding: gzip)


def answer_for(messages: list[dict[str, Any]]) -> str:
    """The `ok` reply: names the dominant emotion found in the prompt (tests match on it)."""
    joined = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    m = _EMOTION.search(joined)
    emotion = m.group(1) if m else "unknown"
    return f"  The text mostly expresses {emotion}, which explains its scores.\n"


class FakeOpenAIServer:
    """See the module doc. Thread-safe; every attribute read is a snapshot."""

    def __init__(
        self, model: str = "fake-oss", host: str = "127.0.0.1", port: int = 0, api_key: str | None = None
    ) -> None:
        """With `api_key`, requests without `Authorization: Bearer <api_key>` get 401."""
        self.model = model
        self.api_key = api_key
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._default = Behaviour()
        self._rules: list[tuple[str, Behaviour]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset_counters()

    # ---- lifecycle

    def start(self) -> FakeOpenAIServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so clients' connection reuse is real
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def setup(self) -> None:
                super().setup()
                with outer._lock:
                    outer.connection_count += 1

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if self.path.split("?", 1)[0].rstrip("/") == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": outer.model, "object": "model",
                                                                  "created": 0, "owned_by": "tests"}]})
                else:
                    self._error(404, f"no route {self.path}", "not_found")

            def do_POST(self) -> None:  # noqa: N802
                outer._handle(self)

            def _json(self, status: int, obj: Any) -> None:
                self._raw(status, json.dumps(obj).encode(), "application/json")

            def _error(self, status: int, message: str, code: str) -> None:
                self._json(status, {"error": {"message": message, "type": "invalid_request_error",
                                              "param": None, "code": code}})

            def _raw(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._stopping.clear()
        self._httpd = _Server((self._host, self._port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes slow handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What REDHEART_HELPER_LLM_URL should be: the API base, ending in /v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- behaviour

    def behave(
        self, mode: Mode = "ok", *, delay_ms: float = 0.0, status: int = 503, when: str | None = None,
        size: int = 0, chunked: bool = False, gzip: bool = False,
    ) -> None:
        """Set the behaviour for all requests, or (with `when`) for requests whose raw body
        contains that string; later rules for the same string replace earlier ones."""
        if mode == "slow" and delay_ms <= 0:
            raise ValueError("slow needs delay_ms > 0")
        if mode == "huge" and size <= 0:
            raise ValueError("huge needs size > 0")
        b = Behaviour(mode, delay_ms, status, size, chunked, gzip)
        with self._lock:
            if when is None:
                self._default = b
            else:
                self._rules = [(w, r) for w, r in self._rules if w != when] + [(when, b)]

    def reset(self) -> None:
        """Back to `ok` for everything (counters are kept; see `reset_counters`)."""
        with self._lock:
            self._default, self._rules = Behaviour(), []

    def reset_counters(self) -> None:
        with self._lock:
            self.request_count = 0  # POSTs received
            self.completed_count = 0  # POSTs whose handling finished (answer written or not)
            self.aborted_count = 0  # answers the client stopped reading (broken pipe / reset)
            self.connection_count = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.last_body: dict[str, Any] | None = None
            self.last_headers: dict[str, str] = {}
            self.bodies: list[dict[str, Any]] = []

    def wait_completed(self, n: int, timeout_s: float = 10.0) -> bool:
        """Block until `n` POSTs have finished on the server side (e.g. a slow one whose client
        already gave up), so a test can check that its late answer went nowhere."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._lock:
                if self.completed_count >= n:
                    return True
            time.sleep(0.005)
        return False

    # ---- protocol

    def _handle(self, h: Any) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.request_count += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.last_headers = {k: v for k, v in h.headers.items()}
            self.last_body = body if isinstance(body, dict) else None
            if isinstance(body, dict):
                self.bodies.append(body)
            text = raw.decode("utf-8", "replace")
            b = next((r for w, r in reversed(self._rules) if w in text), self._default)
        try:
            if h.path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
                h._error(404, f"no route {h.path}", "not_found")
                return
            if self.api_key is not None and h.headers.get("Authorization") != f"Bearer {self.api_key}":
                h._error(401, "invalid api key", "invalid_api_key")
                return
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or "model" not in body:
                h._error(400, "body must be JSON with model and messages", "invalid_request")
                return
            if b.delay_ms > 0 and self._stopping.wait(b.delay_ms / 1000.0):
                return  # server stopping: drop the connection
            if b.mode == "error":
                h._error(b.status, f"simulated HTTP {b.status}", "simulated")
            elif b.mode == "garbage":
                h._raw(200, b"<html>502 upstream garbage", "application/json")
            elif b.mode == "malformed":
                h._json(200, {"id": "x", "object": "chat.completion", "model": self.model})
            elif b.mode == "huge":
                self._huge(h, body, b)
            else:
                content = None if b.mode == "empty" else answer_for(body["messages"])
                if b.gzip:
                    self._send(h, json.dumps(self._completion(body, content)).encode(), b)
                else:
                    h._json(200, self._completion(body, content))
        except (BrokenPipeError, ConnectionResetError):
            with self._lock:  # the client gave up (timeout, size limit): the answer goes nowhere
                self.aborted_count += 1
        finally:
            with self._lock:
                self.in_flight -= 1
                self.completed_count += 1

    def _huge(self, h: Any, body: dict[str, Any], b: Behaviour) -> None:
        """A valid completion of `b.size` bytes: its content is the normal answer padded with
        words, so a client without a size limit would parse it and answer `ok`."""
        shell = json.dumps(self._completion(body, "")).encode()
        pad = max(0, b.size - len(shell))
        content = (answer_for(body["messages"]) + " word" * (pad // 5 + 1))[:pad]
        self._send(h, json.dumps(self._completion(body, content)).encode(), b)

    def _send(self, h: Any, data: bytes, b: Behaviour) -> None:
        if b.gzip:
            data = gzip_lib.compress(data, 9)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if b.gzip:
            h.send_header("Content-Encoding", "gzip")
        if b.chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        view = memoryview(data)
        for i in range(0, len(data), 65536):
            piece = view[i : i + 65536]
            if b.chunked:
                h.wfile.write(b"%x\r\n" % len(piece) + piece.tobytes() + b"\r\n")
            else:
                h.wfile.write(piece)
        if b.chunked:
            h.wfile.write(b"0\r\n\r\n")

    def _completion(self, body: dict[str, Any], content: str | None) -> dict[str, Any]:
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"] if isinstance(m, dict))
        completion_tokens = len(content.split()) if content else 0
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", self.model)),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop" if content else "length",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Local OpenAI-compatible fake helper LLM")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model", default="fake-oss")
    ap.add_argument("--mode", default="ok", choices=["ok", "slow", "error", "garbage", "empty", "malformed", "huge"])
    ap.add_argument("--size", type=int, default=48 * 1024 * 1024, help="huge: body bytes")
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--status", type=int, default=503)
    args = ap.parse_args(argv)
    with FakeOpenAIServer(model=args.model, port=args.port) as srv:
        srv.behave(args.mode, delay_ms=args.delay_ms, status=args.status, size=args.size if args.mode == "huge" else 0)
        print(srv.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
