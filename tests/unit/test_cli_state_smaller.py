"""Issue 20 item 10, the state commands: a dead-letter id that names none is refused (exit 2,
the id named, nothing changed) instead of "0 dead letters back"; ``status`` in text mode says why
a run failed, as ``--json`` does. ``main()`` in-process, on real SQLite files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dvcsync.cli import main

pytestmark = pytest.mark.usefixtures("clean_env")


def _run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dvcsync", *args])
    with pytest.raises(SystemExit) as done:
        main()
    out, err = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    from dvcsync.province.sample import generate

    generate(tmp_path / "onestop.db", 3, 1)
    path = tmp_path / "dvcsync.toml"
    path.write_text(
        '[state]\nurl = "sqlite:///state.db"\n[province]\nsource_url = "sqlite:///onestop.db"\n',
        encoding="utf-8",
    )
    assert _run(monkeypatch, capsys, "-c", str(path), "db", "upgrade")[0] == 0
    return path


@pytest.mark.parametrize("verb", ["retry", "discard"])
def test_an_id_that_names_no_dead_letter_is_refused(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    code, out, err = _run(monkeypatch, capsys, "-c", str(config), "dead-letters", verb, "99999")
    assert code == 2, (out, err)
    assert "no dead letter with id 99999" in err
    assert "dead letters back" not in out and "discarded" not in out


def test_retry_without_ids_and_nothing_dead_is_still_fine(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(monkeypatch, capsys, "-c", str(config), "dead-letters", "retry")
    assert code == 0 and "0 dead letters back in the outbox" in out


def test_status_in_text_says_why_a_run_failed(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dvcsync.state import StateStore

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    run = store.start_run("push")
    store.finish_run(run, "failed", error="portal unreachable: connection refused\x1b[2J [red]x[/red]")
    store.close()
    code, out, err = _run(monkeypatch, capsys, "-c", str(config), "status")
    assert code == 0, err
    assert "push failed" in out and "portal unreachable: connection refused" in out
    assert "\x1b" not in out and "\\x1b[2J" in out and "[red]x[/red]" in out
