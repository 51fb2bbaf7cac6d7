"""Progress of a long command (`adopt`, `sync push`): a bar with totals and time left on a terminal,
one plain line every 10 s otherwise, so that a push under cron or systemd is not silent for minutes
(issue 21 item 7). A total of 0 means not known yet (the source's changed rows are counted as they
are read): the line then shows the count alone."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ._common import err_console

PLAIN_EVERY_S = 10.0  # not on a terminal (cron, systemd): one progress line this often


class PhaseProgress:
    """One bar per phase (``update(phase, done, total)``: the push jobs' ProgressFn); ``name``
    starts each plain line, ``labels`` name the phases. ``totals`` (optional) is asked for a
    phase's total when the job passes 0, at most every ``PLAIN_EVERY_S / 5`` seconds."""

    def __init__(
        self,
        name: str,
        *,
        interactive: bool,
        labels: Mapping[str, str] | None = None,
        totals: Callable[[str, int], int] | None = None,
    ) -> None:
        self.name = name
        self.interactive = interactive
        self.labels = dict(labels or {})
        self.totals = totals
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=not interactive,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}
        self.last_line = time.monotonic()  # the first plain line after 10 s, not at once
        self.started: dict[str, float] = {}
        self.done: dict[str, int] = {}
        self._known: dict[str, tuple[float, int]] = {}  # phase -> (asked at, total)
        self._complete: set[str] = set()  # phases whose last line is printed

    def __enter__(self) -> PhaseProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def _total(self, phase: str, done: int, total: int) -> int:
        if total or self.totals is None:
            return total
        now = time.monotonic()
        asked, known = self._known.get(phase, (0.0, 0))
        if now - asked >= PLAIN_EVERY_S / 5:
            try:
                known = self.totals(phase, done)
            except Exception:  # a total is a courtesy: the push goes on without one
                known = 0
            self._known[phase] = (now, known)
        return max(known, done) if known else 0

    def update(self, phase: str, done: int, total: int) -> None:
        self.done[phase] = done
        total = self._total(phase, done, total)
        label = self.labels.get(phase, phase)
        if self.interactive:
            if phase not in self.tasks:
                self.tasks[phase] = self.bar.add_task(label, total=total or None)
            self.bar.update(self.tasks[phase], completed=done, total=total or None)
            return
        now = time.monotonic()
        began = self.started.setdefault(phase, now)
        complete = bool(total) and done >= total
        if complete and phase in self._complete:
            return
        if now - self.last_line < PLAIN_EVERY_S and not complete:
            return
        if complete:
            self._complete.add(phase)
        self.last_line = now
        rate = done / (now - began) if now > began else 0.0
        eta = f", about {int((total - done) / rate)} s left" if rate > 0 and total > done else ""
        shown = f"{done}/{total}" if total else f"{done}"
        print(f"{self.name}: {label} {shown}{eta}", file=sys.stderr, flush=True)
