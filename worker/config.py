"""The worker's one settings object (env vars prefixed `REDHEART_`; the names relied on from outside:
docs/CONTRACT.md).

Every knob an operator can turn is here, validated at start-up: a bad value is a
refusal to start with the field named, never a silently different behaviour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import ipaddress
import json
import re
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["small", "production"]
Mode = Literal["production", "production-advanced", "production-oss"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDHEART_", extra="forbid", validate_default=True)

    bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1, description="Kafka bootstrap servers")
    profile: Profile = Field("small", description="model profile")
    mode: Mode = Field("production", description="analysis mode (docs/PIPELINE.md, Modes)")
    checkpoint: Path | None = Field(None, description="directory with model.safetensors + manifest.json")
    group_id: str = Field("redheart", min_length=1, description="consumer group id")
    input_topic: str = Field("redheart.input", min_length=1)
    results_topic: str = Field("redheart.results", min_length=1)
    dlq_topic: str = Field("redheart.dlq", min_length=1)
    state_topic: str = Field("redheart.state", min_length=1)
    http_port: int = Field(8080, ge=0, le=65535, description="health/metrics port; 0 picks a free one")
    http_host: str = Field(
        "0.0.0.0",
        description="interface the HTTP server binds (all by default: Kubernetes probes and scrapes reach the pod IP; "
        "use 127.0.0.1 where only local clients should reach it)",
    )
    http_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="HTTP server: a connection must send its request and take its answer within this many seconds; "
        "idle and slow (slow-loris) connections are closed after it",
    )
    http_max_connections: int = Field(
        32,
        ge=1,
        le=4096,
        description="HTTP server: connections served at once (one thread each); past it a new connection gets an "
        "immediate 503 and is closed",
    )
    max_batch_events: int = Field(64, ge=1, le=4096, description="events per micro-batch at most")
    max_batch_tokens: int = Field(16384, ge=16, description="text tokens per micro-batch at most")
    max_wait_ms: int = Field(20, ge=0, le=60_000, description="how long the oldest event may wait for a batch")
    overlap: bool = Field(
        True,
        description="run the model on its own thread: the next batch's decoding and tokenization and the "
        "previous batch's state update and results overlap the forward (one batch in flight)",
    )
    max_text_bytes: int = Field(8192, ge=1, le=1_048_576, description="UTF-8 size limit of `text`")
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="whole input record size limit")
    consumer_config: dict[str, Any] = Field(
        default_factory=dict, description="librdkafka consumer properties merged over the defaults"
    )
    producer_config: dict[str, Any] = Field(
        default_factory=dict, description="librdkafka producer properties merged over the defaults"
    )
    cache_size: int = Field(1000, ge=0, le=10_000_000, description="result cache entries (0 disables)")
    statistics_interval_ms: int = Field(
        5000, ge=0, description="librdkafka statistics (consumer lag metric) interval; 0 disables"
    )
    delivery: Literal["exactly-once", "at-least-once"] = Field(
        "exactly-once",
        description="exactly-once: results, state and offsets in one Kafka transaction; "
        "at-least-once: for brokers without transactions (consumers dedupe on event_id)",
    )
    kafka_secrets_file: Path | None = Field(
        None,
        description="JSON file of librdkafka properties (sasl.password, ssl.key.password, ...) merged "
        "over consumer and producer config; read at start, never logged",
    )
    commit_interval_ms: int = Field(
        100, ge=0, description="checkpoint interval; with exactly-once, results become visible at commit"
    )
    commit_every: int = Field(
        5000, ge=0,
        description="also checkpoint after this many records: at high rates it bounds what a crash re-delivers "
        "(and, with exactly-once, how large a transaction grows); 0: time only",
    )
    result_detail: Literal["full", "compact"] = Field(
        "full",
        description="full: every result field; compact: leaves out the 128-bin spectra (auxiliary.dsp, "
        "temporal.dsp) and the 36 Bentham context weights, about two thirds of a result's bytes",
    )
    instance_id: str | None = Field(
        None, max_length=200, description="stable member name, kept across restarts (e.g. the pod name); default: host name"
    )
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'")
    compile: bool = Field(
        False,
        description="torch.compile the transformers encoders (dynamic shapes), compiled at start-up "
        "(tens of seconds on a CPU); docs/BENCHMARKS.md measures it",
    )
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="weights and activations: auto = bfloat16 on CUDA, float32 on the CPU"
    )
    num_threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads (default: all cores)")
    encoder_paths: dict[str, str] = Field(
        default_factory=dict, description="encoder id -> local directory (mounted models)"
    )
    state_window: int = Field(
        128, ge=8, le=512, description="recent observations kept per stream (SURD needs 64, DSP 8)"
    )
    state_ttl_s: float = Field(
        7 * 24 * 3600.0, ge=0, description="evict streams idle this long (event time); 0 keeps them forever"
    )
    state_restore_timeout_s: float = Field(300.0, gt=0, description="deadline to restore one partition")
    state_eviction_interval_s: float = Field(
        60.0, gt=0, le=86_400, description="how often streams idle longer than the TTL are evicted"
    )
    max_streams: int = Field(
        20_000, ge=1, le=10_000_000,
        description="streams held in memory per worker; past it the least recently updated one is evicted "
        "(tombstoned, it starts fresh when it comes back)",
    )
    max_future_skew_s: float = Field(
        3600.0, ge=0,
        description="an event time (ts, else the record timestamp) further ahead of the worker's clock is "
        "dead-lettered as invalid_timestamp; 0 disables",
    )
    max_past_skew_s: float = Field(
        0.0, ge=0, description="an event time further behind the worker's clock is dead-lettered; 0 (default) disables"
    )
    liveness_timeout_s: float = Field(
        120.0, gt=0, le=86_400, description="/healthz fails once the consume loop has made no progress for this long"
    )
    recovery_dir: Path = Field(
        Path("/tmp/redheart"),
        description="where the crash marker lives (must survive a container restart: an emptyDir in Kubernetes)",
    )
    poison_after_crashes: int = Field(
        3, ge=1, le=100,
        description="a record the worker was killed on (SIGKILL, the OOM killer) while handling it alone this "
        "many times is dead-lettered (internal_error); a native crash (faulthandler report) dead-letters it at once",
    )
    shutdown_timeout_s: float = Field(30.0, gt=0, description="drain deadline after SIGTERM")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # ---- production-advanced (docs/PIPELINE.md, Modes) ----
    mc_dropout_passes: int = Field(
        8, ge=2, le=64, description="production-advanced: MC-dropout passes (batched into one forward)"
    )
    explain_top_k: int = Field(5, ge=1, le=32, description="production-advanced: tokens listed per explained score")
    forecast_steps: int = Field(
        3, ge=1, le=64, description="production-advanced: Kalman forecast horizon, in the stream's typical event gaps"
    )
    # ---- production-oss: helper LLM behind an OpenAI-compatible endpoint (docs/OPERATIONS.md) ----
    helper_llm_url: str | None = Field(
        None, description="production-oss: base URL of an OpenAI-compatible server (e.g. http://vllm:8000/v1)"
    )
    helper_llm_model: str = Field("openai/gpt-oss-20b", min_length=1, description="production-oss: model name sent")
    helper_llm_api_key_file: Path | None = Field(
        None, description="production-oss: file holding the bearer token (read at start, never logged)"
    )
    helper_llm_timeout_ms: int = Field(
        2000, ge=10, le=120_000, description="production-oss: deadline for one rationale; later: 'unavailable'"
    )
    helper_llm_concurrency: int = Field(8, ge=1, le=256, description="production-oss: requests in flight at most")
    helper_llm_max_tokens: int = Field(96, ge=8, le=2048, description="production-oss: completion length limit")
    helper_llm_reasoning_effort: Literal["low", "medium", "high"] | None = Field(
        "low",
        description="production-oss: `reasoning_effort` sent to reasoning models such as gpt-oss ('low' keeps the "
        "short completion from being spent on reasoning); unset (empty) to send none",
    )
    helper_llm_breaker_failures: int = Field(
        5, ge=1, le=1000, description="production-oss: consecutive failures that open the circuit breaker"
    )
    helper_llm_breaker_reset_s: float = Field(
        30.0, gt=0, le=3600, description="production-oss: seconds the breaker stays open before one trial call"
    )
    helper_llm_max_response_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=64 * 1024 * 1024,
        description="production-oss: size limit of one helper-LLM response body (read streaming; larger: "
        "'unavailable'/'response_too_large', a failure for the breaker)",
    )

    @field_validator("consumer_config", "producer_config")
    @classmethod
    def _librdkafka_values(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key, value in v.items():
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"librdkafka property {key!r} must be a string, number or bool")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda") and not (v.startswith("cuda:") and v[5:].isdigit()):
            raise ValueError("device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return v

    _secrets: dict[str, Any] | None = PrivateAttr(default=None)

    @property
    def kafka_secrets(self) -> dict[str, Any]:
        """The secrets file's properties, read once (at start: `worker run` reads it before
        anything else, so an unreadable file is a refusal to start, not a late failure)."""
        if self._secrets is None:
            self._secrets = load_secrets_file(self.kafka_secrets_file) if self.kafka_secrets_file else {}
        return dict(self._secrets)

    @field_validator("helper_llm_reasoning_effort", mode="before")
    @classmethod
    def _no_reasoning_effort(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("helper_llm_url")
    @classmethod
    def _helper_llm_url(cls, v: str | None) -> str | None:
        if v is not None:
            check_helper_url(v)
        return v

    @model_validator(mode="after")
    def _helper_llm(self) -> "Settings":
        if self.mode == "production-oss" and not self.helper_llm_url:
            raise ValueError("REDHEART_MODE=production-oss needs REDHEART_HELPER_LLM_URL (the helper LLM endpoint)")
        if self.helper_llm_url:
            check_helper_credentials(self.helper_llm_url, bearer_token=self.helper_llm_api_key_file is not None)
        return self

    @model_validator(mode="after")
    def _distinct_topics(self) -> "Settings":
        topics = [self.input_topic, self.results_topic, self.dlq_topic, self.state_topic]
        if len(set(topics)) != len(topics):
            raise ValueError(f"input, results, dlq and state topics must differ: {topics}")
        return self

    def redacted(self) -> dict[str, Any]:
        """Settings for logs and /status.

        librdkafka properties whose name looks secret (`_secret`) show `***`; every URL in any
        value (REDHEART_HELPER_LLM_URL, `sasl.oauthbearer.token.endpoint.url`, ...) loses its
        `user:pass@` userinfo and the values of secret-looking query parameters (`redact_urls`);
        the secrets file shows its property names only, never values."""
        data = self.model_dump(mode="json")
        for key in ("consumer_config", "producer_config"):
            data[key] = {k: ("***" if _secret(k) else v) for k, v in data[key].items()}
        data = _redact_values(data)
        data["kafka_secrets_keys"] = sorted(self._secrets or {})  # names only, never values
        return data


def load_secrets_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"REDHEART_KAFKA_SECRETS_FILE {path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"REDHEART_KAFKA_SECRETS_FILE {path}: not JSON (line {exc.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(v, (str, int, float, bool)) for v in data.values()):
        raise ValueError(f"REDHEART_KAFKA_SECRETS_FILE {path}: must be a JSON object of scalar values")
    return data


# Words that make a librdkafka property secret (its value is shown as `***`). Matching is by
# substring of the lower-cased name, on purpose broad: `key` also masks path-valued properties
# such as `ssl.key.location`, `ssl.keystore.location` and `sasl.kerberos.keytab` -- a path is
# no secret, but name-based exceptions are how `ssl.key.pem` or the next new property leaks,
# and /status still shows that the property is set. Names ending in `.url`
# (`sasl.oauthbearer.token.endpoint.url`) are not masked: an endpoint is worth seeing, and
# its userinfo and secret query parameters are stripped like every URL (`redact_urls`).
SECRET_WORDS: tuple[str, ...] = ("password", "secret", "passphrase", "key", "token", "jaas", "credential")
# Secret-bearing properties whose names contain none of the words.
SECRET_NAMES: frozenset[str] = frozenset({"sasl.oauthbearer.config", "sasl.oauthbearer.extensions"})


def _secret(key: str) -> bool:
    k = key.lower()
    if k.endswith(".url"):
        return False
    return k in SECRET_NAMES or any(w in k for w in SECRET_WORDS)


# A URL inside any text; the userinfo is everything between `scheme://` and the URL's last `@`
# (greedy: a password holding `/`, `#`, `?` or `@` unencoded is still covered; a rare `@` in a
# path over-masks, which is the safe side).
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s]*@)")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;][^=&;#\s]*(?:" + "|".join(SECRET_WORDS) + r"|sig)[^=&;#\s]*=)[^&;#\s]*", re.IGNORECASE
)


def redact_urls(text: str) -> str:
    """`text` with every URL's `user:pass@` replaced by `***@` and the values of query parameters
    named like secrets (`?api_key=...`, `&token=...`) by `***`. For logs, /status and error
    messages: anything that prints a configured URL prints it through here."""
    if "://" not in text:
        return text
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + "***@", text)
    return _SECRET_QUERY.sub(lambda m: m.group("name") + "***", text)


def _redact_values(value: Any) -> Any:
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {k: _redact_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_values(v) for v in value]
    return value


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost` (names that never leave the machine)."""
    h = host.strip("[]").rstrip(".").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_helper_url(url: str) -> None:
    """REDHEART_HELPER_LLM_URL must be an absolute http(s) URL with a host; the message never
    repeats credentials the URL may carry."""
    shown = redact_urls(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(f"REDHEART_HELPER_LLM_URL is not a valid URL: {shown!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"REDHEART_HELPER_LLM_URL must be an http(s) URL such as http://vllm:8000/v1, got {shown!r}")


def check_helper_credentials(url: str, bearer_token: bool) -> None:
    """Credentials never travel in clear beyond the machine: a plain http:// helper URL is
    refused when a bearer token (REDHEART_HELPER_LLM_API_KEY_FILE) or URL userinfo would be sent
    with it, unless its host is loopback (127.0.0.0/8, ::1, localhost: a sidecar, the tests)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or is_loopback_host(parts.hostname or ""):
        return
    what = []
    if bearer_token:
        what.append("REDHEART_HELPER_LLM_API_KEY_FILE is set (a bearer token)")
    if "@" in parts.netloc:
        what.append("the URL carries user:password")
    if what:
        raise ValueError(
            f"REDHEART_HELPER_LLM_URL {redact_urls(url)!r} is plain http:// to a non-loopback host but "
            f"{' and '.join(what)}: the credential would cross the network in clear. Use https:// "
            "(or a loopback host such as a sidecar on 127.0.0.1)"
        )
