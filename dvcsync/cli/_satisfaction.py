"""``dvcsync sync satisfaction``: the monthly satisfaction figures (``DongBoDanhGia``), each month
sent once, corrections re-sent as replacements."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._common import JsonOpt, _live_settings, _load_mappings, _print_counts, _report, _run_cycles, sync_app


@sync_app.command("satisfaction")
def sync_satisfaction(
    months: Annotated[
        int,
        typer.Option(
            "--months", min=1, max=120, help="How many complete months back (never the current one)."
        ),
    ] = 12,
    as_json: JsonOpt = False,
) -> None:
    """Aggregate citizens' ratings of returned dossiers per month, procedure and agency and send the
    figures the portal does not hold yet (new, or changed since they were sent). Exit 1 when the
    portal refused some."""
    from dvcsync.sync.satisfaction import run_satisfaction

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    summary = _run_cycles(
        settings, "dvcsync sync satisfaction", lambda: run_satisfaction(settings, mset, months=months)
    )
    _report(summary.as_dict(), as_json, _print_satisfaction, ok=summary.failed == 0)


def _print_satisfaction(data: dict[str, Any]) -> None:
    skipped = data["skipped"]
    months = data["months"]
    rows = [
        ("months", f"{months[0]} … {months[-1]}" if months else "none"),
        ("ratings read", data["ratings"]),
        ("figures (month × procedure × agency)", data["figures"]),
        ("sent for the first time", data["sent"]),
        ("re-sent as corrections", data["resent"]),
        ("unchanged (not sent)", data["unchanged"]),
        ("refused by the portal", data["failed"]),
        ("sent before, no rating left now", data["vanished"]),
        ("ratings left out: no national procedure", skipped.get("no_national_procedure", 0)),
        ("ratings left out: no national agency", skipped.get("no_national_agency", 0)),
        ("ratings left out: unknown level", skipped.get("unknown_level", 0)),
        ("portal calls", data["calls"]),
    ]
    _print_counts("satisfaction figures", rows)
