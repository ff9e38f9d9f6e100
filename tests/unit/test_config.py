"""Settings: SPEC §9 names, secrets from a file merged into librdkafka config and never shown."""

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
