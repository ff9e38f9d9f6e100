"""Settings: the env names of docs/CONTRACT.md, secrets from a file merged into librdkafka config and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import Settings
from worker.kafka import consumer_config, producer_config


def test_spec_names_are_settings() -> None:
    for name in ("bootstrap_servers", "profile", "mode", "checkpoint", "group_id", "input_topic", "results_topic",
                 "dlq_topic", "state_topic", "http_port", "max_batch_events", "max_batch_tokens", "max_wait_ms",
                 "consumer_config", "producer_config"):
        assert name in Settings.model_fields


def test_secrets_file_merges_and_is_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "s.json"
    f.write_text('{"sasl.username": "u", "sasl.password": "hunter2"}')
    monkeypatch.setenv("REDHEART_KAFKA_SECRETS_FILE", str(f))
    monkeypatch.setenv("REDHEART_CONSUMER_CONFIG", '{"sasl.password": "env-value", "session.timeout.ms": 2000}')
    s = Settings()
    assert consumer_config(s)["sasl.password"] == "hunter2"  # the file wins over the env dict
    assert consumer_config(s)["session.timeout.ms"] == 2000
    assert producer_config(s)["sasl.username"] == "u"
    shown = str(s.redacted())
    assert "hunter2" not in shown and "env-value" not in shown
    assert s.redacted()["kafka_secrets_keys"] == ["sasl.password", "sasl.username"]


@pytest.mark.parametrize("content, fragment", [(None, "cannot read"), ("{nope", "not JSON"), ('{"a": [1]}', "scalar")])
def test_bad_secrets_file_is_an_error(tmp_path: Path, content: str | None, fragment: str) -> None:
    f = tmp_path / "s.json"
    if content is not None:
        f.write_text(content)
    s = Settings(kafka_secrets_file=f)
    with pytest.raises(ValueError, match=fragment):
        s.kafka_secrets


# ---------------------------------------------------------------- redaction by pattern

SECRET_PROPS = {
    "sasl.password": "pw-1",
    "sasl.oauthbearer.assertion.private.key.passphrase": "pw-2",
    "sasl.oauthbearer.assertion.private.key.file": "/secrets/pw-3.pem",
    "sasl.oauthbearer.client.secret": "pw-4",
    "sasl.oauthbearer.config": "principal=admin clientSecret=pw-5",
    "sasl.jaas.config": "org.apache.kafka...ScramLoginModule required password='pw-6';",
    "ssl.key.password": "pw-7",
    "ssl.key.pem": "-----BEGIN PRIVATE KEY----- pw-8",
    "ssl.keystore.password": "pw-9",
    "ssl.key.location": "/etc/tls/pw-10.key",  # a path: masked too (by name, on purpose)
    "ssl.keystore.location": "/etc/tls/pw-11.p12",
    "SSL.Truststore.Password": "pw-12",  # any case
    "custom.credentials.blob": "pw-13",
    "sasl.oauthbearer.assertion.jwt.token.file": "/var/run/pw-14",
}
PLAIN_PROPS = {
    "session.timeout.ms": 2000,
    "ssl.ca.location": "/etc/tls/ca.crt",
    "ssl.certificate.location": "/etc/tls/client.crt",
    "sasl.username": "redheart",
    "security.protocol": "SASL_SSL",
}


def test_librdkafka_properties_are_masked_by_name_pattern() -> None:
    import json

    s = Settings(consumer_config={**SECRET_PROPS, **PLAIN_PROPS}, producer_config=SECRET_PROPS)
    shown = s.redacted()
    for key in ("consumer_config", "producer_config"):
        for prop in SECRET_PROPS:
            assert shown[key][prop] == "***", prop
    assert {k: shown["consumer_config"][k] for k in PLAIN_PROPS} == PLAIN_PROPS
    assert "pw-" not in json.dumps(shown)


def test_urls_lose_userinfo_and_secret_query_values() -> None:
    import json

    endpoint = "https://client:tok3n-pw@idp.example.com/oauth2/token?client_secret=q-pw&scope=kafka"
    s = Settings(
        mode="production-oss",
        helper_llm_url="https://alice:llm-pw@vllm.example.com:8000/v1",
        consumer_config={"sasl.oauthbearer.token.endpoint.url": endpoint, "client.id": "http://u:p@weird"},
    )
    shown = s.redacted()
    assert shown["helper_llm_url"] == "https://***@vllm.example.com:8000/v1"
    assert (shown["consumer_config"]["sasl.oauthbearer.token.endpoint.url"]
            == "https://***@idp.example.com/oauth2/token?client_secret=***&scope=kafka")
    assert shown["consumer_config"]["client.id"] == "http://***@weird"
    text = json.dumps(shown)
    assert not any(w in text for w in ("llm-pw", "alice", "tok3n-pw", "q-pw"))
    assert s.helper_llm_url == "https://alice:llm-pw@vllm.example.com:8000/v1"  # the real value is untouched


def test_redact_urls_edge_cases() -> None:
    from worker.config import redact_urls

    assert redact_urls("http://vllm:8000/v1") == "http://vllm:8000/v1"
    assert redact_urls("no url here user:pw@host") == "no url here user:pw@host"
    assert redact_urls("http://u:p#w/x@host/v1") == "http://***@host/v1"  # unencoded specials in the password
    assert redact_urls("a http://u:p@h1/x and https://v:q@h2 b") == "a http://***@h1/x and https://***@h2 b"
    assert redact_urls("http://h/p?api_key=k&x=1") == "http://h/p?api_key=***&x=1"


# ---------------------------------------------------------------- helper URL validation


@pytest.mark.parametrize(
    "url", ["http://vllm:8000/v1", "http://10.1.2.3/v1", "http://[2001:db8::1]:8000/v1", "http://127.evil.com/v1"]
)
def test_bearer_token_over_plain_http_beyond_loopback_is_refused(tmp_path: Path, url: str) -> None:
    from pydantic import ValidationError

    key = tmp_path / "key"
    key.write_text("tok")
    with pytest.raises(ValidationError, match="REDHEART_HELPER_LLM_API_KEY_FILE") as exc:
        Settings(mode="production-oss", helper_llm_url=url, helper_llm_api_key_file=key)
    assert "https://" in str(exc.value)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8001/v1", "http://127.3.4.5/v1", "http://localhost:8001/v1", "http://[::1]:8001/v1",
     "https://vllm:8000/v1"],
)
def test_bearer_token_over_loopback_http_or_https_is_accepted(tmp_path: Path, url: str) -> None:
    key = tmp_path / "key"
    key.write_text("tok")
    assert Settings(mode="production-oss", helper_llm_url=url, helper_llm_api_key_file=key).helper_llm_url == url


def test_plain_http_without_credentials_is_accepted_and_userinfo_counts_as_credentials() -> None:
    from pydantic import ValidationError

    assert Settings(mode="production-oss", helper_llm_url="http://vllm:8000/v1").helper_llm_url
    with pytest.raises(ValidationError, match="user:password") as exc:
        Settings(mode="production-oss", helper_llm_url="http://bob:s3cr3t@vllm:8000/v1")
    # what `worker run` prints when it refuses to start: the messages, never the input values
    assert not any("s3cr3t" in e["msg"] for e in exc.value.errors(include_url=False))


@pytest.mark.parametrize("url", ["vllm:8000/v1", "ftp://vllm/v1", "http://", "http://vllm:99999/v1"])
def test_malformed_helper_url_is_refused(url: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="REDHEART_HELPER_LLM_URL"):
        Settings(mode="production-oss", helper_llm_url=url)


# ---------------------------------------------------------------- HTTP server and helper limits


def test_http_and_response_limits_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert (s.http_timeout_s, s.http_max_connections, s.helper_llm_max_response_bytes) == (10.0, 32, 1_048_576)
    assert s.http_host == "0.0.0.0"
    monkeypatch.setenv("REDHEART_HTTP_TIMEOUT_S", "2.5")
    monkeypatch.setenv("REDHEART_HTTP_MAX_CONNECTIONS", "8")
    monkeypatch.setenv("REDHEART_HELPER_LLM_MAX_RESPONSE_BYTES", "65536")
    s = Settings()
    assert (s.http_timeout_s, s.http_max_connections, s.helper_llm_max_response_bytes) == (2.5, 8, 65536)
    for name, bad in (("REDHEART_HTTP_TIMEOUT_S", "0"), ("REDHEART_HTTP_MAX_CONNECTIONS", "0"),
                      ("REDHEART_HELPER_LLM_MAX_RESPONSE_BYTES", "10")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValueError):
            Settings()
        monkeypatch.delenv(name)
