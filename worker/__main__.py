"""`python -m worker run|produce|topics` (console script `redheart-worker`).

Exit codes: 0 clean stop; 2 refused to start (bad config, unloadable model or
checkpoint, missing topics) with one clear error line; 1 crashed while running.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from pydantic import ValidationError

from worker import logs

EXIT_REFUSED = 2
EXIT_CRASHED = 1


class StartupRefused(RuntimeError):
    """The worker will not start; the message says why and what to do."""


def _settings():  # type: ignore[no-untyped-def]
    from worker.config import Settings

    from pydantic_settings import SettingsError

    try:
        return Settings()
    except SettingsError as exc:  # e.g. a JSON-valued variable that is not JSON
        named = re.sub(r'field "(\w+)"', lambda m: f"REDHEART_{m.group(1).upper()}", str(exc))
        raise StartupRefused(f"invalid configuration: {named}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"REDHEART_{'_'.join(str(x) for x in e['loc']).upper() or '(settings)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise StartupRefused(f"invalid configuration: {problems}") from None


def cmd_run(args: argparse.Namespace) -> int:
    from worker.config import IMPLEMENTED_MODES

    settings = _settings()
    logs.setup(settings.log_level)
    log = logs.get("redheart.worker")
    try:
        settings.kafka_secrets  # noqa: B018 - read the secrets file now: unreadable is a refusal
    except ValueError as exc:
        raise StartupRefused(str(exc)) from None
    if settings.mode not in IMPLEMENTED_MODES:
        raise StartupRefused(
            f"REDHEART_MODE={settings.mode} is not available in this version (implemented: {list(IMPLEMENTED_MODES)})"
        )
    from pipeline import Pipeline
    from pipeline.errors import PipelineError
    from worker.app import Worker
    from worker.kafka import MissingTopicsError, require_topics, worker_topics

    try:  # before the (slow) model load: a wrong topic name should fail in a second
        require_topics(settings, worker_topics(settings))
    except MissingTopicsError as exc:
        raise StartupRefused(str(exc)) from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar is not a JSON log line
    log.info("loading model", extra={"profile": settings.profile, "checkpoint": str(settings.checkpoint)})
    try:
        pipe = Pipeline.load(
            settings.profile,
            checkpoint=settings.checkpoint,
            allow_untrained=args.allow_untrained,
            device=settings.device,
            num_threads=settings.num_threads,
            encoder_paths=settings.encoder_paths or None,
            dtype=settings.dtype,
            compile=settings.compile,
        )
    except PipelineError as exc:  # unloadable model, bad checkpoint, missing device
        raise StartupRefused(str(exc)) from None
    if settings.mode == "production-advanced":
        from pipeline.api import Advanced

        pipe.advanced = Advanced(passes=settings.mc_dropout_passes, top_k=settings.explain_top_k)
    try:
        worker = Worker(settings, pipe)
    except ValueError as exc:  # e.g. an unreadable REDHEART_HELPER_LLM_API_KEY_FILE
        raise StartupRefused(str(exc)) from None
    return worker.run()


def cmd_produce(args: argparse.Namespace) -> int:
    from worker.produce import produce_file

    settings = _settings()
    n = produce_file(Path(args.file), settings, topic=args.topic)
    print(f"produced {n} records to {args.topic or settings.input_topic} on {settings.bootstrap_servers}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from worker.kafka import create_topics

    settings = _settings()
    made = create_topics(settings, partitions=args.partitions)
    print(f"created {made or 'nothing (all exist)'} on {settings.bootstrap_servers}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="redheart-worker", description="Red Heart stream worker")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="consume redheart.input and publish results (config from REDHEART_* env)")
    run.add_argument(
        "--allow-untrained",
        action="store_true",
        help="start without a trained checkpoint (tests/dev); results carry model.trained=false",
    )
    run.set_defaults(func=cmd_run)
    prod = sub.add_parser("produce", help="send each line of a JSONL file to the input topic (key: stream_id)")
    prod.add_argument("file", help="JSONL file, one InputEvent per line")
    prod.add_argument("--topic", default=None, help="topic (default: REDHEART_INPUT_TOPIC)")
    prod.set_defaults(func=cmd_produce)
    top = sub.add_parser("topics", help="create the four topics if they do not exist")
    top.add_argument("--partitions", type=int, default=3)
    top.set_defaults(func=cmd_topics)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except StartupRefused as exc:
        if not logs.get("").handlers:
            logs.setup("INFO")
        logs.get("redheart.worker").error("refusing to start", extra={"reason": str(exc)})
        return EXIT_REFUSED
    except Exception as exc:  # crash-only: one structured line, then a non-zero exit
        if not logs.get("").handlers:
            logs.setup("INFO")
        logs.get("redheart.worker").exception("worker crashed", extra={"error": f"{type(exc).__name__}: {exc}"})
        return EXIT_CRASHED


if __name__ == "__main__":
    sys.exit(main())
