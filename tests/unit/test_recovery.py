"""The crash marker: what a process that died leaves behind, and what the next one makes of it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from worker.recovery import CrashMarker, marker_path


def test_a_clean_start_suspects_nothing(tmp_path: Path) -> None:
    m = CrashMarker(tmp_path / "m.json")
    assert not m.crashed
    assert m.verdict("in", 0, 0) == ("normal", 0)


def test_the_uncommitted_tail_of_a_dead_process_is_handled_alone(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    dead = CrashMarker(path)
    for offset in range(5):
        dead.consumed("in", 0, offset)
    dead.consumed("in", 1, 7)
    dead.flush()  # then the process dies (no clear)
    m = CrashMarker(path)
    assert m.crashed
    assert [m.verdict("in", 0, o)[0] for o in range(3, 7)] == ["alone", "alone", "normal", "normal"]
    assert m.verdict("in", 1, 7)[0] == "alone" and m.verdict("other", 0, 1)[0] == "normal"


def test_a_record_that_crashed_the_process_natively_while_alone_is_poison(tmp_path: Path) -> None:
    path = tmp_path / "inflight.g.w.json"
    first = CrashMarker(path)
    first.consumed("in", 0, 9)
    first.flush()
    second = CrashMarker(path)  # restarted after the crash: offset 9 is a suspect
    verdict, crashes = second.verdict("in", 0, 9)
    assert verdict == "alone" and crashes == 0
    second.begin_alone("in", 0, 9, crashes)  # and the process dies of a fatal signal, with 9 alone:
    second.crash_log.write_text("Fatal Python error: Segmentation fault\n\nCurrent thread ...\n")
    third = CrashMarker(path)
    assert third.native_crash.startswith("Fatal Python error: Segmentation fault")
    assert third.verdict("in", 0, 9) == ("poison", 1)
    assert third.verdict("in", 0, 8) == ("alone", 0)  # the rest of the tail is still only suspect


def test_kills_without_a_crash_report_need_poison_after_deaths(tmp_path: Path) -> None:
    """A SIGKILL leaves no report: it may have nothing to do with the record (a node drain
    during recovery), so one is not enough to dead-letter a good record."""
    path = tmp_path / "m.json"
    m = CrashMarker(path, poison_after=3)
    m.begin_alone("in", 0, 3, 0)
    for deaths in (1, 2):
        m = CrashMarker(path, poison_after=3)
        assert m.verdict("in", 0, 3) == ("alone", deaths) and not m.native_crash
        m.begin_alone("in", 0, 3, deaths)
    assert CrashMarker(path, poison_after=3).verdict("in", 0, 3) == ("poison", 3)


def test_arm_makes_a_fatal_signal_leave_a_report(tmp_path: Path) -> None:
    """The real thing: a process that armed the marker and then aborts leaves faulthandler's
    report, which the next start reads as a native crash."""
    path = tmp_path / "inflight.g.w.json"
    script = (
        "import os, sys; from pathlib import Path; from worker.recovery import CrashMarker; "
        f"m = CrashMarker(Path({str(path)!r})); m.begin_alone('in', 0, 5, 0); m.arm(); os.abort()"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], capture_output=True)
    assert proc.returncode == -signal.SIGABRT
    m = CrashMarker(path)
    assert "Aborted" in m.native_crash and m.verdict("in", 0, 5) == ("poison", 1)
    m.clear()
    assert not path.exists() and not m.crash_log.exists()


def test_a_record_survived_alone_is_not_poison_and_a_clean_stop_clears(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    m = CrashMarker(path)
    m.begin_alone("in", 0, 3, 0)
    m.end_alone()
    assert CrashMarker(path).verdict("in", 0, 3)[0] == "normal"
    m.clear()
    assert not path.exists() and not CrashMarker(path).crashed


def test_an_unreadable_marker_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    for junk in (b"\x00garbage", b"[1, 2]", b'{"consumed": {"0:in": "x"}}', b'{"consumed": {}, "alone": {"topic": 1}}'):
        path.write_bytes(junk)
        assert CrashMarker(path).verdict("in", 0, 0) == ("normal", 0)


def test_marker_files_are_per_group_and_instance(tmp_path: Path) -> None:
    a = marker_path(tmp_path, "redheart", "pod-0")
    assert a != marker_path(tmp_path, "redheart", "pod-1") != marker_path(tmp_path, "other", "pod-0")
    assert marker_path(tmp_path, "g/../x", "a b").parent == tmp_path
