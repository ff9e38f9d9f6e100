"""`python -m worker run|produce|topics|analyze|tail|mcp` (console script `redheart-worker`).

Exit codes: 0 clean stop; 2 refused to start (bad config, unloadable model or
checkpoint, missing topics) with one clear error line; 1 crashed while running.
`analyze`: 0 a result printed; 1 no result (no worker answered in time, broker or topics
unreachable), 3 the worker rejected the text (dead letter), each with one line on stderr.
"""

from __future__ import annotations

import argparse
import gc
import re
import signal
import sys
import threading
from pathlib import Path

from pydantic import ValidationError

from worker import logs

EXIT_REFUSED = 2
EXIT_CRASHED = 1
EXIT_REJECTED = 3


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


def shipped_checkpoint(profile: str) -> Path | None:
    """The checkpoint a source checkout ships for `profile` (`checkpoints/<profile>`), if any:
    what `run` loads when REDHEART_CHECKPOINT is not set."""
    directory = Path(__file__).resolve().parents[1] / "checkpoints" / profile
    return directory if (directory / "manifest.json").is_file() else None


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings()
    logs.setup(settings.log_level)
    log = logs.get("redheart.worker")
    try:
        settings.kafka_secrets  # noqa: B018 - read the secrets file now: unreadable is a refusal
    except ValueError as exc:
        raise StartupRefused(str(exc)) from None
    from pipeline import Pipeline
    from pipeline.errors import PipelineError
    from worker.driver import Driver
    from worker.kafka import MissingTopicsError, require_topics, worker_topics

    try:  # before the (slow) model load: a wrong topic name should fail in a second
        require_topics(settings, worker_topics(settings))
    except MissingTopicsError as exc:
        raise StartupRefused(str(exc)) from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar is not a JSON log line
    checkpoint = settings.checkpoint
    if checkpoint is None and not args.allow_untrained:
        checkpoint = shipped_checkpoint(settings.profile)
    log.info("loading model", extra={"profile": settings.profile, "checkpoint": str(checkpoint)})
    from pipeline.api import Advanced

    advanced = (
        Advanced(passes=settings.mc_dropout_passes, top_k=settings.explain_top_k)
        if settings.mode == "production-advanced" else None
    )
    try:
        pipe = Pipeline.load(
            settings.profile,
            checkpoint=checkpoint,
            allow_untrained=args.allow_untrained,
            device=settings.device,
            num_threads=settings.num_threads,
            encoder_paths=settings.encoder_paths or None,
            dtype=settings.dtype,
            compile=settings.compile,
            advanced=advanced,
        )
    except PipelineError as exc:  # unloadable model, bad checkpoint, missing device
        raise StartupRefused(str(exc)) from None
    try:
        driver = Driver(settings, pipe)
    except ValueError as exc:  # e.g. an unreadable REDHEART_HELPER_LLM_API_KEY_FILE
        raise StartupRefused(str(exc)) from None
    # What start-up made (the model, torch, transformers: ~400k objects) lives as long as the
    # process: out of the collector's sight, a full collection no longer walks it (0.17 s per
    # collection on the CPU profile, a pause in the consume loop every time one comes due).
    gc.collect()
    gc.freeze()
    return driver.run()


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


def _quiet_logs(settings) -> None:  # type: ignore[no-untyped-def]
    """Client commands print for a person on stdout; only warnings and errors go to stderr (JSON)."""
    logs.setup("WARNING" if settings.log_level in ("DEBUG", "INFO") else settings.log_level)


def cmd_analyze(args: argparse.Namespace) -> int:
    from worker.client import AnalysisRejected, Client, ClientError
    from worker.summary import render

    settings = _settings()
    _quiet_logs(settings)
    try:
        with Client.from_settings(settings, connect_timeout=min(10.0, args.timeout)) as client:
            result = client.analyze(args.text, stream_id=args.stream_id, lang=args.lang, timeout=args.timeout)
    except AnalysisRejected as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    except ClientError as exc:
        print(f"no result: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:  # the input schema, before anything is sent
        print(f"invalid input: {exc}", file=sys.stderr)
        return 1
    print(result.model_dump_json() if args.json else render(result, args.text))
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from worker.client import Client, ClientError
    from worker.summary import render

    settings = _settings()
    _quiet_logs(settings)
    stop = threading.Event()
    # Ctrl-C / SIGTERM end the loop at the next poll (<= 0.1 s): a flag, not an exception raised
    # wherever the main thread happens to be (inside a Kafka client callback, say).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with Client.from_settings(settings) as client:
            results = client.results(stream_id=args.stream_id, stop=stop)  # positioned: later results are all shown
            which = f"stream {args.stream_id}" if args.stream_id else "all streams"
            print(f"following {settings.results_topic} ({which}) on {settings.bootstrap_servers}; Ctrl-C stops",
                  file=sys.stderr, flush=True)
            for result in results:
                print(result.model_dump_json() if args.json else render(result) + "\n", flush=True)
    except ClientError as exc:
        print(f"cannot follow {settings.results_topic}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from worker.mcp_server import serve

    settings = _settings()
    logs.setup(settings.log_level)  # stderr only: stdout is the MCP channel in stdio mode
    return serve(settings, http_port=args.http, host=args.host, status_url=args.status_url, timeout=args.timeout)


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
    ana = sub.add_parser("analyze", help="send one text to the running worker and print its result")
    ana.add_argument("text", help="the text to analyse")
    ana.add_argument("--stream-id", default=None, help="stream of the text (default: a stream of its own)")
    ana.add_argument("--lang", default=None, help="language code, e.g. en, ko (default: detected)")
    ana.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the result (default 30)")
    ana.add_argument("--json", action="store_true", help="print the result JSON instead of a summary")
    ana.set_defaults(func=cmd_analyze)
    tail = sub.add_parser("tail", help="follow the results topic, printing a summary per result (Ctrl-C stops)")
    tail.add_argument("--stream-id", default=None, help="only this stream's results")
    tail.add_argument("--json", action="store_true", help="one result JSON per line instead of summaries")
    tail.set_defaults(func=cmd_tail)
    mcp = sub.add_parser("mcp", help="MCP server with tools analyze_text, get_stream_state, get_status (stdio)")
    mcp.add_argument("--http", type=int, default=None, metavar="PORT", help="serve streamable HTTP on PORT instead")
    mcp.add_argument("--host", default="127.0.0.1", help="interface for --http (default 127.0.0.1)")
    mcp.add_argument("--status-url", default=None,
                     help="the worker's /status URL (default http://127.0.0.1:REDHEART_HTTP_PORT/status)")
    mcp.add_argument("--timeout", type=float, default=30.0, help="deadline of each tool call, seconds (default 30)")
    mcp.set_defaults(func=cmd_mcp)
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
