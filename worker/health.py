"""HTTP on one port: /healthz, /readyz, /status, /metrics (docs/CONTRACT.md, "HTTP").

A daemon thread with the standard library's server: the endpoints are tiny, and the
consume loop must not depend on an event loop. /readyz is true only once the model is
loaded and the consumer owns partitions.

The server binds REDHEART_HTTP_HOST (all interfaces by default: Kubernetes probes and
Prometheus reach the pod IP), so it is hardened against clients that misbehave:

* One request per connection (HTTP/1.0, no keep-alive), served on a thread of its own.
* Per-connection deadline `timeout_s` (REDHEART_HTTP_TIMEOUT_S): a connection must send its
  request and take its answer within it. Every socket operation also times out after it, and
  a reaper thread shuts down connections past their deadline, so neither an idle connection
  nor a slow-loris one (a byte every few seconds) holds a thread longer than that.
* At most `max_connections` (REDHEART_HTTP_MAX_CONNECTIONS) connections are served at once.
  Past it a new connection is not given a thread: it gets an immediate `503 Service
  Unavailable` (`Retry-After: 1`, best effort, never blocking) and is closed, so a flood of
  idle connections costs a bounded number of threads and the accept loop never stalls; once
  the deadlines have freed slots, probes are served again.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 32
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\nbusy\n"
)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a connection cap and per-connection deadlines."""

    daemon_threads = True
    request_queue_size = 128  # listen() backlog: a burst of connects is accepted, not SYN-dropped

    def __init__(self, address: tuple[str, int], handler: type, timeout_s: float, max_connections: int) -> None:
        self.conn_timeout_s = timeout_s
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._deadlines: dict[socket.socket, float] = {}  # connections being served -> deadline
        self.active = 0
        self.refused = 0  # connections turned away at the cap
        self.reaped = 0  # connections shut down at their deadline
        self._stopping = threading.Event()
        super().__init__(address, handler)
        self._reaper = threading.Thread(target=self._reap, name="http-reaper", daemon=True)
        self._reaper.start()

    # -- accept side (the serve_forever thread)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self.active >= self.max_connections
            if full:
                self.refused += 1
            else:
                self.active += 1
                self._deadlines[request] = time.monotonic() + self.conn_timeout_s
        if full:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except Exception:  # e.g. no thread could be started: the slot must not leak
            self._release(request)
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request: Any) -> None:
        with self._lock:
            if self._deadlines.pop(request, None) is not None:  # once per admitted connection
                self.active -= 1

    def _refuse(self, request: socket.socket) -> None:
        """A 503 if the socket takes it at once, then closed; nothing here may block."""
        try:
            request.setblocking(False)
            request.send(_BUSY)
            # Read what the client already sent, so that closing does not answer with a reset
            # that could overtake the 503; whatever arrives later is its own problem.
            for _ in range(4):
                if not request.recv(65536):
                    break
        except OSError:
            pass
        finally:
            self.shutdown_request(request)

    # -- deadlines

    def _reap(self) -> None:
        interval = min(0.5, max(0.02, self.conn_timeout_s / 4))
        while not self._stopping.wait(interval):
            now = time.monotonic()
            with self._lock:
                expired = [s for s, deadline in self._deadlines.items() if deadline <= now]
                for s in expired:
                    self._deadlines[s] = float("inf")  # once; the slot is freed by its own thread
                self.reaped += len(expired)
            for s in expired:
                try:
                    s.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in recv/send on it
                except OSError:
                    pass

    def server_close(self) -> None:
        self._stopping.set()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished or was cut off at its deadline: not worth a traceback on
        # stderr (the worker's logs are JSON lines).
        log.debug("http connection failed", exc_info=True)


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        status: Callable[[], dict[str, Any]],
        ready: Callable[[], bool],
        alive: Callable[[], bool],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        """`timeout_s`: per-connection deadline (request in and answer out); `max_connections`:
        connections served at once, past which new ones get a 503 and are closed."""
        if timeout_s <= 0 or max_connections < 1:
            raise ValueError("HTTP timeout_s must be > 0 and max_connections >= 1")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = timeout_s  # socket timeout of every recv/send on the connection

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    ok = outer._alive()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"unhealthy\n", "text/plain")
                elif path == "/readyz":
                    ok = outer._ready()
                    self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n", "text/plain")
                elif path == "/status":
                    self._send(200, orjson.dumps(outer._status(), default=str), "application/json")
                elif path == "/metrics":
                    self._send(200, generate_latest(outer._registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # access logs would be one line per scrape

        self._registry = registry
        self._status = status
        self._ready = ready
        self._alive = alive
        self._server = _Server((host, port), Handler, timeout_s, max_connections)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stats(self) -> dict[str, int]:
        """Connections being served, turned away at the cap, and cut off at their deadline."""
        s = self._server
        with s._lock:
            return {"active": s.active, "refused": s.refused, "timed_out": s.reaped,
                    "max_connections": s.max_connections}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever: never started, never ends
            self._server.shutdown()
        self._server.server_close()
