"""What commands print from data reaches the terminal escaped (issue 20 item 6): control and
escape sequences as ``\\xNN``, rich markup shown and not obeyed, for ``push dossier``'s errors,
``catalogue`` pull/match reports, ``adopt`` and every job's counts table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dvcsync.cli import main

pytestmark = pytest.mark.usefixtures("clean_env")

HOSTILE = "HS-1\x1b]0;owned\x07\x1b[2J[/red][blink]x[/blink]"


def _clean(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, text
    assert "\\x1b[2J" in text.replace("\n", ""), text
    assert "[blink]x[/blink]" in text.replace("\n", ""), text


def test_push_dossier_prints_an_unknown_code_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dvcsync.province.sample import generate

    generate(tmp_path / "onestop.db", 3, 1)
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        '[state]\nurl = "sqlite:///state.db"\n[province]\nsource_url = "sqlite:///onestop.db"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(sys, "argv", ["dvcsync", "-c", str(config), "push", "dossier", HOSTILE, "--dry-run"])
    with pytest.raises(SystemExit) as done:
        main()
    err = capsys.readouterr().err
    assert done.value.code == 1
    assert "no dossier" in err
    _clean(err)


def test_catalogue_reports_and_changes_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from dvcsync.cli._catalogue import _CHANGE_LABELS, _print_pull

    changes: dict[str, list[dict[str, str]]] = {key: [] for key, _ in _CHANGE_LABELS}
    changes["renamed"] = [{"code": "1.1", "name": HOSTILE, "old_name": "old"}]

    _print_pull(
        {
            "catalogue_date": f"2026-01-01{HOSTILE}",
            "pull_id": 1,
            "procedures": 1,
            "active": 1,
            "agencies": 0,
            "sectors": 0,
            "changes": changes,
            "reports": {
                "withdrawn": [{"local_code": HOSTILE, "local_name": HOSTILE, "national_code": "1.2"}],
                "unknown_code": [{"local_code": HOSTILE, "national_code": "9.9"}],
                "fees_differ": [
                    {"local_code": HOSTILE, "local_fees": "1", "national_fees": "2", "national_code": "1.3"}
                ],
                "agencies_abolished": [
                    {
                        "local_key": HOSTILE,
                        "national_code": "A",
                        "national_name": HOSTILE,
                        "abolished_on": "2025-07-01",
                        "successor": None,
                    }
                ],
            },
        }
    )
    out = capsys.readouterr().out
    _clean(out)
    assert out.count("\\x1b[2J") >= 6  # the title and every line


def test_job_counts_and_adopt_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from dvcsync.cli._adopt import _print_adopt
    from dvcsync.cli._common import _print_counts

    _print_counts(f"push {HOSTILE}", [(HOSTILE, HOSTILE)])
    _clean(capsys.readouterr().out)
    found = dict.fromkeys(
        [
            "read",
            "identical",
            "missing_on_portal",
            "differing",
            "history_present",
            "history_missing",
            "portal_only",
            "status_same",
            "status_differs",
        ],
        0,
    )
    _print_adopt(
        {
            "found": {**found, "differing_fields": {HOSTILE: 1}},
            "scanned": 1,
            "in_period": 1,
            "enqueue": {"quarantined": 0},
            "unsettled": 0,
            "calls": 0,
            "to_send": {HOSTILE: 1},
            "elapsed_s": 0.1,
        }
    )
    _clean(capsys.readouterr().out)
