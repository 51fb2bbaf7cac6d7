"""Progress off a terminal (issue 21 item 7): one line every 10 s with the total and the time left
when a total is known, the count alone when not, and the last line of a phase once."""

from __future__ import annotations

import pytest

from dvcsync.cli import _progress
from dvcsync.cli._progress import PhaseProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(_progress.time, "monotonic", clock)
    return clock


def test_plain_lines_every_ten_seconds_with_the_total_and_time_left(
    clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[tuple[str, int]] = []

    def totals(phase: str, done: int) -> int:
        asked.append((phase, done))
        return 0 if phase == "enqueue" else done + 300

    report = PhaseProgress("push", interactive=False, labels={"deliver": "delivered"}, totals=totals)
    with report:
        report.update("enqueue", 50, 0)
        report.update("deliver", 100, 0)
        clock.now += 5
        report.update("enqueue", 500, 0)  # within 10 s of the start: no line
        clock.now += 6
        report.update("enqueue", 700, 0)
        report.update("deliver", 200, 0)  # within 10 s of the last line
        clock.now += 10
        report.update("deliver", 300, 0)
        clock.now += 10
        report.update("deliver", 400, 400)  # done: its last line, once
        report.update("deliver", 400, 400)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "push: enqueue 700"  # the source's changed rows: no total
    assert lines[1].startswith("push: delivered 300/600, about ") and lines[1].endswith(" s left")
    assert lines[2] == "push: delivered 400/400"
    assert len(lines) == 3
    assert ("deliver", 100) in asked


def test_a_failing_total_leaves_the_count(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    def totals(phase: str, done: int) -> int:
        raise OSError("state gone")

    report = PhaseProgress("push", interactive=False, totals=totals)
    clock.now += 11
    report.update("deliver", 7, 0)
    assert capsys.readouterr().err == "push: deliver 7\n"
