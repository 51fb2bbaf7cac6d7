"""``dvcsync adopt``: the first step of a migration from another integration (see README
"Adopting a province already on the portal")."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Any

import typer

from dvcsync.errors import ExitCode

from ._common import (
    JsonOpt,
    _live_settings,
    _load_mappings,
    _print_counts,
    _report,
    _run_cycles,
    app,
    console,
    err_console,
)
from ._errors import terminal_text
from ._progress import PhaseProgress


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    from dvcsync.reconcile.period import parse_day

    try:
        return parse_day(value, option)
    except ValueError as exc:
        err_console.print(terminal_text(exc), markup=False, highlight=False)
        raise typer.Exit(ExitCode.INVALID) from None


@app.command("adopt")
def adopt(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only dossiers received (else submitted) on or after this day."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only dossiers received (else submitted) up to this day.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read the portal back for the province's dossiers (one TraCuuHoSo each, within the rate
    budget), seed the state from what it holds and enqueue only the differences; nothing is
    written to the portal. Resumable: run it again after an outage or Ctrl-C. Creates the state
    when it does not exist. The next `dvcsync sync push` sends what differs."""
    from dvcsync.sync.cycles import run_adopt

    first, last = _day(since, "--since"), _day(until, "--until")
    if first is not None and last is not None and last < first:
        err_console.print(f"--until {last} is before --since {first}", markup=False)
        raise typer.Exit(ExitCode.INVALID)
    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    report = PhaseProgress("adopt", interactive=sys.stderr.isatty() and not as_json)
    try:
        with report:
            summary = _run_cycles(
                settings,
                "dvcsync adopt",
                lambda: run_adopt(settings, mset, since=first, until=last, progress=report.update),
                create=True,
            )
    except KeyboardInterrupt:
        err_console.print(
            "adopt interrupted: what was read back is kept in the state; run `dvcsync adopt` again"
            " with the same options to resume",
            markup=False,
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    _report(summary.as_dict(), as_json, _print_adopt, ok=summary.unsettled == 0)


def _print_adopt(data: dict[str, Any]) -> None:
    found = data["found"]
    rows = [
        ("province dossiers scanned", data["scanned"]),
        ("in the period", data["in_period"]),
        ("quarantined (cannot be mapped)", data["enqueue"]["quarantined"]),
        ("read back from the portal", found["read"]),
        ("identical on the portal", found["identical"]),
        ("missing on the portal (to create)", found["missing_on_portal"]),
        ("held differently (to replace)", found["differing"]),
        ("history entries already on the portal", found["history_present"]),
        ("history entries missing (to send)", found["history_missing"]),
        ("history entries only on the portal (conflicts)", found["portal_only"]),
        ("status reports already on the portal", found["status_same"]),
        ("status reports to send", found["status_differs"]),
        ("not read back yet (run adopt again)", data["unsettled"]),
        ("portal calls (reads only)", data["calls"]),
    ]
    _print_counts("adopt", rows)
    if found["differing_fields"]:
        fields = ", ".join(f"{name} {n}" for name, n in found["differing_fields"].items())
        console.print(terminal_text(f"fields held differently: {fields}"), markup=False, highlight=False)
    to_send = data["to_send"]
    console.print(
        terminal_text(
            "the next `dvcsync sync push` sends: "
            + (", ".join(f"{n} {kind}" for kind, n in sorted(to_send.items())) or "nothing")
        ),
        markup=False,
        highlight=False,
    )
    console.print(f"in {data['elapsed_s']:.2f}s")
