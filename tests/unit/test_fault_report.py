"""The fault suite's figures: a plain test run keeps them out of the tracked tree, a publishing
run (`make reliability`) renders them into docs/RELIABILITY.md, and the published page is the
rendering of the published rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults import report


def _row(scenario: str, duplicates: int) -> dict:
    return {
        "scenario": scenario,
        "broker": "embedded",
        "delivery": "exactly-once",
        "events": 100,
        "kills": 1,
        "missing": 0,
        "duplicates": duplicates,
        "identical": "yes",
        "dead_letters": 0,
        "notes": "n",
    }


def test_a_plain_run_writes_outside_the_tracked_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report.PUBLISH_ENV, raising=False)
    assert report.destinations() == report.LOCAL
    for path in report.LOCAL:
        assert path.relative_to(report.ROOT).parts[0] == "build"  # ignored by .gitignore
    monkeypatch.setenv(report.PUBLISH_ENV, "0")
    assert report.destinations() == report.LOCAL


def test_a_publishing_run_writes_the_tracked_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(report.PUBLISH_ENV, "1")
    assert report.destinations() == report.PUBLISHED
    assert report.PUBLISHED[1] == report.ROOT / "docs" / "RELIABILITY.md"


def test_rows_merge_by_scenario_and_render_sorted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    to = (tmp_path / "rows" / "faults.json", tmp_path / "page" / "RELIABILITY.md")
    report.record(_row("zeta", 3), to=to)
    report.record(_row("alpha", 5), to=to)
    report.record(_row("zeta", 7), to=to)  # same scenario, broker and delivery: replaces its row
    rows = json.loads(to[0].read_text())
    assert sorted(rows) == ["alpha|embedded|exactly-once", "zeta|embedded|exactly-once"]
    assert rows["zeta|embedded|exactly-once"]["duplicates"] == 7
    page = to[1].read_text()
    assert page.startswith(report.HEADER)
    table = page[len(report.HEADER) :].splitlines()
    assert [line.split(" | ")[0] for line in table] == ["| alpha", "| zeta"]
    assert "| 7 | yes |" in table[1]
    assert "zeta" in capsys.readouterr().out  # the figures reach the run's output too


def test_the_published_page_renders_the_published_rows() -> None:
    rows_path, page_path = report.PUBLISHED
    page = page_path.read_text()
    assert page.startswith(report.HEADER), "docs/RELIABILITY.md's header differs from tests/faults/report.py"
    assert page == report.render(json.loads(rows_path.read_text()))
