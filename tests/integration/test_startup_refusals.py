"""NO FALLBACK: a bad config, a missing topic or no checkpoint is a refusal with one clear error."""

from __future__ import annotations

import pytest

from tests.brokers import Broker
from tests.integration.harness import run_to_exit, settings_for, worker_env
from worker.kafka import create_topics

pytestmark = pytest.mark.integration


@pytest.fixture
def env(embedded: Broker, prefix: str) -> dict[str, str]:
    s = settings_for(embedded, prefix)
    create_topics(s, partitions=1)
    return worker_env(embedded, s, 0)


def test_missing_topic_refuses(env: dict[str, str]) -> None:
    env["REDHEART_RESULTS_TOPIC"] = "no.such.topic"
    code, err = run_to_exit(env, ["run", "--allow-untrained"])
    assert code == 2
    assert "refusing to start" in err and "['no.such.topic'] do not exist" in err


def test_no_checkpoint_without_allow_untrained_refuses(env: dict[str, str]) -> None:
    """`production` ships no checkpoint (`small` does, and `run` loads it when
    REDHEART_CHECKPOINT is unset): without one and without --allow-untrained, a refusal."""
    env["REDHEART_PROFILE"] = "production"
    env.pop("REDHEART_CHECKPOINT", None)
    code, err = run_to_exit(env, ["run"])
    assert code == 2
    assert "refusing to start" in err and "--allow-untrained" in err


def test_the_shipped_checkpoint_is_the_default_of_a_source_checkout() -> None:
    from worker.__main__ import shipped_checkpoint

    small = shipped_checkpoint("small")
    assert small is not None and (small / "model.safetensors").is_file()
    assert shipped_checkpoint("production") is None


def test_unloadable_checkpoint_refuses(env: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    env["REDHEART_CHECKPOINT"] = str(tmp_path / "nowhere")
    code, err = run_to_exit(env, ["run"])
    assert code == 2 and "refusing to start" in err and "nowhere" in err


@pytest.mark.parametrize(
    "var, value, fragment",
    [
        ("REDHEART_MAX_BATCH_EVENTS", "0", "REDHEART_MAX_BATCH_EVENTS"),
        ("REDHEART_PROFILE", "huge", "REDHEART_PROFILE"),
        ("REDHEART_CONSUMER_CONFIG", "{not json", "REDHEART_CONSUMER_CONFIG"),
        ("REDHEART_MODE", "production-oss", "REDHEART_HELPER_LLM_URL"),
    ],
)
def test_bad_config_refuses(env: dict[str, str], var: str, value: str, fragment: str) -> None:
    env[var] = value
    code, err = run_to_exit(env, ["run", "--allow-untrained"])
    assert code == 2, err
    assert fragment in err
