"""A client for services that want an analysis back: `Client(...).analyze(text)` -> `ResultEvent`.

Request/reply over the worker's own topics: the request is an ordinary `InputEvent` produced
to the input topic (key: its stream id), and the answer is the worker's `ResultEvent` with the
same `event_id` on the results topic -- or, when the worker refuses the event, its dead letter
on the DLQ, which becomes `AnalysisRejected` with the worker's reason. The worker stays the only
thing that analyses; the client never needs torch or a model (importing it does not import
torch), so it fits a slim image.

One reply consumer per client, on a background thread, reads the results and DLQ topics and
hands each answer to whichever caller (thread or asyncio task) waits for that `event_id`; any
number of callers share it. It is positioned at the end of those topics when the client starts
(so answers older than the client are never read on a real Kafka cluster), reads with
`isolation.level=read_committed` (results of the worker's exactly-once transactions become
visible when committed), and skips records whose key is no stream a caller waits on without
parsing them.

Every wait has a deadline: `AnalysisTimeout` (a `TimeoutError`) when no answer came -- usually
no worker is running -- and the request is forgotten, so nothing piles up. A broker that cannot
be reached fails the constructor with `BrokerUnavailable` within `connect_timeout`.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pydantic import ValidationError

from schemas.dead_letter import DeadLetter
from schemas.input import InputEvent
from schemas.result import ResultEvent
from worker import kafka, logs
from worker.config import Settings

log = logs.get("redheart.client")

# The worker's own defaults (REDHEART_*_TOPIC), so a client and a worker left at their defaults meet.
DEFAULT_BOOTSTRAP = str(Settings.model_fields["bootstrap_servers"].default)
DEFAULT_INPUT_TOPIC = str(Settings.model_fields["input_topic"].default)
DEFAULT_RESULTS_TOPIC = str(Settings.model_fields["results_topic"].default)
DEFAULT_DLQ_TOPIC = str(Settings.model_fields["dlq_topic"].default)
# The text limit is the worker's to enforce (REDHEART_MAX_TEXT_BYTES, up to 1 MiB): the client
# checks only the largest a worker could accept, so a text over the worker's configured limit
# comes back as the worker's own dead letter (`oversized`), never as a different local verdict.
CLIENT_MAX_TEXT_BYTES = next(int(m.le) for m in Settings.model_fields["max_text_bytes"].metadata if hasattr(m, "le"))
_POLL_S = 0.1
# The embedded dev broker reports wrong end offsets, so a new reader may also see older records;
# `results()` skips those stamped this long before it started (real Kafka never shows them).
_TAIL_GRACE_MS = 2000


class ClientError(RuntimeError):
    """Base of everything `Client` raises for a request that got no result."""


class BrokerUnavailable(ClientError, ConnectionError):
    """Kafka could not be reached (or listed its topics) within the connect timeout."""


class TopicsMissing(ClientError):
    """The worker's topics do not exist on this cluster (wrong names, or nothing set up yet)."""


class ClientClosed(ClientError):
    """The client was closed before (or while) the request was waiting."""


class AnalysisTimeout(ClientError, TimeoutError):
    """No result within the deadline; the request is forgotten (a late answer is dropped)."""

    def __init__(self, message: str, event_id: str) -> None:
        super().__init__(message)
        self.event_id = event_id


class AnalysisRejected(ClientError):
    """The worker dead-lettered the request: `error_class` and `reason` are the worker's own
    (`schemas.dead_letter.ErrorClass`, e.g. `oversized`, `schema_violation`)."""

    def __init__(self, event_id: str, dead_letter: DeadLetter) -> None:
        super().__init__(f"the worker rejected event {event_id} ({dead_letter.error_class}): {dead_letter.reason}")
        self.event_id = event_id
        self.dead_letter = dead_letter
        self.error_class = dead_letter.error_class
        self.reason = dead_letter.reason


Outcome = ResultEvent | ClientError


@dataclass(slots=True)
class _Pending:
    key: bytes
    deliver: Callable[[Outcome], None]


class _Waiter:
    """One blocking caller's slot: the reply thread fills it, the caller waits on it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.outcome: Outcome | None = None

    def __call__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._done.set()

    def wait(self, timeout: float | None) -> bool:
        return self._done.wait(timeout)


def _to_future(loop: asyncio.AbstractEventLoop, fut: "asyncio.Future[Outcome]") -> Callable[[Outcome], None]:
    def set_outcome(outcome: Outcome) -> None:
        if not fut.done():
            fut.set_result(outcome)

    def deliver(outcome: Outcome) -> None:
        try:
            loop.call_soon_threadsafe(set_outcome, outcome)
        except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
            log.debug("answer for a closed event loop dropped")

    return deliver


def _outcome(outcome: Outcome | None) -> ResultEvent:
    if isinstance(outcome, ResultEvent):
        return outcome
    raise outcome if outcome is not None else ClientError("no outcome delivered")


def stream_partition(stream_id: str, partitions: int) -> int:
    """The partition librdkafka's default partitioner (`consistent_random`: CRC-32 of the key)
    gives a keyed record -- where this client's requests for `stream_id`, and so the worker's
    state of that stream, land."""
    return zlib.crc32(stream_id.encode("utf-8")) % partitions


def build_event(
    text: str | None,
    stream_id: str | None = None,
    lang: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    image: Mapping[str, Any] | None = None,
    audio: Mapping[str, Any] | None = None,
    biosignals: Mapping[str, Any] | None = None,
) -> InputEvent:
    """A request as the worker reads it, with a fresh `event_id`. Validated here with the wire
    schema, so a malformed request fails at the caller with the field named (a pydantic
    `ValidationError`, which is a `ValueError`) before anything is sent."""
    event_id = uuid.uuid4().hex
    fields: dict[str, Any] = {
        "event_id": event_id,
        # Without a stream, the text is a stream of its own: no unrelated trajectory.
        "stream_id": stream_id if stream_id is not None else f"adhoc-{event_id}",
        "text": text, "lang": lang, "image": image, "audio": audio, "biosignals": biosignals,
        "metadata": dict(metadata or {}),
    }
    fields = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in fields.items() if v is not None}
    return InputEvent.model_validate(fields, context={"max_text_bytes": CLIENT_MAX_TEXT_BYTES})


class Client:
    """Request/reply access to a running Red Heart worker over Kafka.

    `config`: librdkafka properties for both the producer and the reply consumer (security,
    SASL, TLS...), e.g. `Client("broker:9093", **{"security.protocol": "SSL"})`. Thread-safe:
    share one client across threads and asyncio tasks.
    """

    def __init__(
        self,
        bootstrap_servers: str = DEFAULT_BOOTSTRAP,
        *,
        input_topic: str = DEFAULT_INPUT_TOPIC,
        results_topic: str = DEFAULT_RESULTS_TOPIC,
        dlq_topic: str = DEFAULT_DLQ_TOPIC,
        connect_timeout: float = 10.0,
        **config: Any,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.input_topic = input_topic
        self.results_topic = results_topic
        self.dlq_topic = dlq_topic
        self.connect_timeout = connect_timeout
        self._config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, **config}
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._keys: Counter[bytes] = Counter()
        self._closed = threading.Event()
        self._shut = False
        self._failure: ClientError | None = None
        self._consumer = self._new_consumer()
        try:
            self._assign_at_end(self._consumer, [results_topic, dlq_topic], require=(input_topic,))
            self._producer = Producer(self._producer_config())
        except BaseException:
            self._consumer.close()
            raise
        self._thread = threading.Thread(target=self._reply_loop, name="redheart-client-replies", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "Client":
        """A client for the worker configured by `settings` (REDHEART_* environment): the same
        cluster, topics and connection/security properties."""
        from worker.kafka import admin_config  # bootstrap + security.*, sasl.*, ssl.*, client.*

        config = admin_config(settings)
        config.pop("bootstrap.servers", None)
        return cls(
            settings.bootstrap_servers,
            input_topic=settings.input_topic,
            results_topic=settings.results_topic,
            dlq_topic=settings.dlq_topic,
            **{**config, **overrides},
        )

    # -- configuration ------------------------------------------------------------------
    def _producer_config(self) -> dict[str, Any]:
        return {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.max.bytes": 16 * 1024 * 1024 + 65_536,  # images and audio up to the input limits
            "logger": logs.get("librdkafka"),
            **self._config,
        }

    def _new_consumer(self) -> Consumer:
        return Consumer(
            {
                "group.id": f"redheart-client-{uuid.uuid4().hex}",  # never joined: partitions are assigned
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "latest",
                "fetch.wait.max.ms": 50,
                "logger": logs.get("librdkafka"),
                **self._config,
            }
        )

    def _assign_at_end(self, consumer: Consumer, topics: list[str], require: tuple[str, ...] = ()) -> dict[str, int]:
        """Assign every partition of `topics` at its current end offset, asked for now, before any
        request is sent: an answer can never land before the position the reader starts from."""
        try:
            md = consumer.list_topics(timeout=self.connect_timeout)  # a full listing never auto-creates
        except KafkaException as exc:
            raise BrokerUnavailable(
                f"cannot reach Kafka at {self.bootstrap_servers} within {self.connect_timeout:g} s: {exc}"
            ) from None
        have = {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}
        missing = [t for t in [*topics, *require] if t not in have]
        if missing:
            raise TopicsMissing(
                f"topics {missing} do not exist on {self.bootstrap_servers}: is the worker set up "
                "(`python -m worker topics`) and are the topic names the worker's?"
            )
        assignment: list[TopicPartition] = []
        for topic in topics:
            for p in range(have[topic]):
                try:
                    _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self.connect_timeout)
                except KafkaException as exc:
                    raise BrokerUnavailable(f"cannot read the end offset of {topic}[{p}]: {exc}") from None
                assignment.append(TopicPartition(topic, p, high))
        consumer.assign(assignment)
        return {t: have[t] for t in [*topics, *require]}

    # -- requests -----------------------------------------------------------------------
    def _register(self, event: InputEvent, deliver: Callable[[Outcome], None]) -> None:
        key = event.stream_id.encode("utf-8")
        with self._lock:
            if self._shut:
                raise ClientClosed("the client is closed")
            if self._failure is not None:  # the reply reader is gone: nobody could answer
                raise ClientError(str(self._failure))
            self._pending[event.event_id] = _Pending(key, deliver)
            self._keys[key] += 1

    def _take(self, event_id: str) -> _Pending | None:
        with self._lock:
            entry = self._pending.pop(event_id, None)
            if entry is not None:
                self._keys[entry.key] -= 1
                if self._keys[entry.key] <= 0:
                    del self._keys[entry.key]
            return entry

    def _resolve(self, event_id: str, outcome: Outcome) -> None:
        entry = self._take(event_id)
        if entry is not None:
            entry.deliver(outcome)

    def _send(self, event: InputEvent, deadline: float) -> None:
        """Produce the request (registered before, so the fastest answer still finds its caller)."""
        value = orjson.dumps(event.model_dump(mode="json", exclude_none=True))
        event_id = event.event_id

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._resolve(event_id, ClientError(f"request {event_id} not delivered to {self.input_topic}: {err}"))

        def full() -> None:  # the local queue is full: wait for deliveries, within the deadline
            if time.monotonic() >= deadline:
                raise AnalysisTimeout(f"request {event_id} could not be queued (producer queue full)", event_id)

        try:
            kafka.produce(self._producer, self.input_topic, value, event.stream_id.encode("utf-8"),
                          on_delivery=delivered, on_full=full)
        except KafkaException as exc:  # e.g. a record over message.max.bytes: this request's problem
            self._take(event_id)
            raise ClientError(f"request {event_id} not sent to {self.input_topic}: {exc}") from None
        except BaseException:
            self._take(event_id)
            raise

    def _timeout(self, event_id: str, timeout: float) -> AnalysisTimeout:
        return AnalysisTimeout(
            f"no result for event {event_id} within {timeout:g} s on {self.results_topic}: is a worker running "
            f"and consuming {self.input_topic} on {self.bootstrap_servers}?",
            event_id,
        )

    def analyze(
        self,
        text: str | None = None,
        *,
        stream_id: str | None = None,
        lang: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        image: Mapping[str, Any] | None = None,
        audio: Mapping[str, Any] | None = None,
        biosignals: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> ResultEvent:
        """Send one event and wait for its result. `image`/`audio`/`biosignals` take the input
        schema's shapes (`schemas.input`). Raises `AnalysisRejected` (dead-lettered),
        `AnalysisTimeout`, `ClientError`; a request that fails the input schema raises
        `ValueError` before anything is sent."""
        event = build_event(text, stream_id, lang, metadata, image, audio, biosignals)
        deadline = time.monotonic() + timeout
        waiter = _Waiter()
        self._register(event, waiter)
        self._send(event, deadline)
        if not waiter.wait(max(0.0, deadline - time.monotonic())) and self._take(event.event_id) is not None:
            raise self._timeout(event.event_id, timeout)
        waiter.wait(None)  # taken by the reply thread in the meantime: its delivery is imminent
        return _outcome(waiter.outcome)

    def analyze_many(
        self,
        texts: Iterable[str],
        *,
        stream_id: str | None = None,
        lang: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
        return_exceptions: bool = False,
    ) -> list[ResultEvent | ClientError]:
        """Send every text at once and wait for all results (in the order of `texts`), within one
        overall `timeout`. With a `stream_id`, the texts are that stream's events in this order.
        `return_exceptions`: failures take their place in the list instead of being raised."""
        events = [build_event(t, stream_id, lang, metadata, None, None, None) for t in texts]
        deadline = time.monotonic() + timeout
        waiters = [_Waiter() for _ in events]
        sent: list[InputEvent] = []
        try:
            for event, waiter in zip(events, waiters):
                self._register(event, waiter)
                sent.append(event)
                self._send(event, deadline)
        except BaseException:
            for event in sent:
                self._take(event.event_id)
            raise
        out: list[ResultEvent | ClientError] = []
        for event, waiter in zip(events, waiters):
            if not waiter.wait(max(0.0, deadline - time.monotonic())) and self._take(event.event_id) is not None:
                waiter(self._timeout(event.event_id, timeout))
            waiter.wait(None)
            outcome = waiter.outcome
            if isinstance(outcome, ClientError) and not return_exceptions:
                for rest in events:
                    self._take(rest.event_id)
                raise outcome
            out.append(outcome if outcome is not None else ClientError("no outcome delivered"))
        return out

    async def analyze_async(
        self,
        text: str | None = None,
        *,
        stream_id: str | None = None,
        lang: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        image: Mapping[str, Any] | None = None,
        audio: Mapping[str, Any] | None = None,
        biosignals: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> ResultEvent:
        """`analyze` for asyncio: the caller's task awaits; the shared reply thread answers it."""
        event = build_event(text, stream_id, lang, metadata, image, audio, biosignals)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._register(event, _to_future(loop, fut))
        try:
            self._send(event, time.monotonic() + timeout)  # its own AnalysisTimeout is not the wait's below
            try:
                outcome = await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                if self._take(event.event_id) is not None:
                    raise self._timeout(event.event_id, timeout) from None
                outcome = await fut  # answered in the meantime: its delivery is scheduled on this loop
        finally:
            self._take(event.event_id)  # cancelled callers leave nothing behind either
        return _outcome(outcome)

    @property
    def pending(self) -> int:
        """Requests waiting for an answer now (0 once every call has returned or timed out)."""
        with self._lock:
            return len(self._pending)

    # -- following results --------------------------------------------------------------
    def results(self, stream_id: str | None = None, *, idle_timeout: float | None = None,
                stop: threading.Event | None = None) -> Iterator[ResultEvent]:
        """Results as the worker publishes them from this call on (all streams', or one stream's),
        on a reader of its own, positioned before this returns. Ends after `idle_timeout` seconds
        without one (None: never), or within a poll interval once `stop` is set (e.g. by a signal
        handler: no exception has to travel through the Kafka client); closing the iterator closes
        its reader."""
        consumer = self._new_consumer()
        try:
            self._assign_at_end(consumer, [self.results_topic])
        except BaseException:
            consumer.close()
            raise
        since_ms = int(time.time() * 1000) - _TAIL_GRACE_MS
        key = stream_id.encode("utf-8") if stream_id is not None else None
        return self._follow(consumer, key, since_ms, idle_timeout, stop or threading.Event())

    def _follow(
        self, consumer: Consumer, key: bytes | None, since_ms: int, idle_timeout: float | None, stop: threading.Event
    ) -> Iterator[ResultEvent]:
        try:
            last = time.monotonic()
            while not self._closed.is_set() and not stop.is_set():
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    return
                for msg in consumer.consume(500, _POLL_S):
                    if msg.error() is not None:
                        self._log_kafka_error(msg.error())
                        continue
                    if (key is not None and msg.key() != key) or msg.timestamp()[1] < since_ms:
                        continue
                    try:
                        result = ResultEvent.model_validate_json(msg.value())
                    except ValidationError as exc:
                        log.warning("a record on the results topic is not a valid result; skipped",
                                    extra={"topic": msg.topic(), "partition": msg.partition(),
                                           "offset": msg.offset(), "errors": exc.error_count()})
                        continue
                    last = time.monotonic()
                    yield result
        finally:
            consumer.close()

    # -- the reply thread ---------------------------------------------------------------
    def _reply_loop(self) -> None:
        try:
            while not self._closed.is_set():
                self._producer.poll(0)  # delivery reports of requests
                for msg in self._consumer.consume(500, _POLL_S):
                    self._dispatch(msg)
        except Exception as exc:  # the client can no longer answer anyone: say so to every caller
            log.exception("the client's reply reader failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._fail_all(ClientError(f"the client's reply reader failed: {type(exc).__name__}: {exc}"))

    def _dispatch(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            self._log_kafka_error(err)
            if err.fatal():
                self._fail_all(ClientError(f"Kafka consumer failed: {err}"))
                self._closed.set()
            return
        with self._lock:
            wanted = msg.key() in self._keys
        if not wanted:
            return
        try:
            obj = orjson.loads(msg.value() or b"null")
        except orjson.JSONDecodeError:
            return  # not one of ours: our requests and the worker's results are JSON
        event_id = obj.get("event_id") if isinstance(obj, dict) else None
        if not isinstance(event_id, str):
            return
        with self._lock:
            if event_id not in self._pending:
                return
        if msg.topic() == self.dlq_topic:
            try:
                letter = DeadLetter.from_headers(msg.headers())
            except (KeyError, ValueError) as exc:
                why = f"event {event_id} was dead-lettered without readable headers: {exc}"
                self._resolve(event_id, ClientError(why))
                return
            self._resolve(event_id, AnalysisRejected(event_id, letter))
            return
        try:
            result = ResultEvent.model_validate_json(msg.value())
        except ValidationError as exc:  # a worker of another schema version: say so, don't hang
            self._resolve(event_id, ClientError(f"the result for event {event_id} does not match this client's "
                                                f"schema: {exc.error_count()} errors, first: {exc.errors()[0]['msg']}"))
            return
        self._resolve(event_id, result)

    def _log_kafka_error(self, err: KafkaError) -> None:
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("kafka error on the client's reader", extra={"error": str(err), "fatal": err.fatal()})

    def _fail_all(self, error: ClientError) -> None:
        with self._lock:
            self._failure = self._failure or error
            entries = list(self._pending.items())
            self._pending.clear()
            self._keys.clear()
        for _, entry in entries:
            entry.deliver(error)

    # -- lifecycle ----------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Stop the reply thread, fail whatever still waits with `ClientClosed`, flush requests."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
        self._closed.set()
        self._thread.join(timeout)
        self._fail_all(ClientClosed("the client was closed while the request waited"))
        left = self._producer.flush(timeout)
        if left:
            log.warning("requests not delivered when the client closed", extra={"undelivered": left})
        if self._thread.is_alive():  # never close a consumer another thread still polls
            log.warning("the client's reply reader did not stop in time; its consumer is left to the process")
        else:
            self._consumer.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Client({self.bootstrap_servers!r}, input_topic={self.input_topic!r}, "
                f"results_topic={self.results_topic!r}, dlq_topic={self.dlq_topic!r})")
