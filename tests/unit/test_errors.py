"""Failures a user can cause or meet end in one line naming the thing and the fix, with the
README's exit code, never a traceback (issue 20 item 5); data reaches the terminal escaped
(item 6). ``main()`` runs in-process, on real SQLite files and a refused loopback port."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dvcsync.cli import main
from dvcsync.cli._errors import cell_text, explain, terminal_text

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


def _refused_port() -> int:
    """A loopback port nobody listens on (bound, then closed: connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dvcsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["status"], ["db", "upgrade"], ["sync", "push"], ["reconcile"]])
def test_unreachable_postgres_state_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    pytest.importorskip("psycopg2")
    port = _refused_port()
    config = _config(tmp_path, f'[state]\nurl = "postgresql+psycopg2://u:secret@127.0.0.1:{port}/x"\n')
    code, _, err = _run(monkeypatch, capsys, "-c", str(config), *command)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"port {port}" in err and "[state] url" in err and "secret" not in err


def test_config_check_opens_the_state_and_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("psycopg2")
    port = _refused_port()
    (tmp_path / "not-a-db.db").write_bytes(b"hello, not sqlite" * 10)
    config = _config(
        tmp_path,
        f'[state]\nurl = "postgresql+psycopg2://u:secret@127.0.0.1:{port}/x"\n'
        '[province]\nsource_url = "sqlite:///not-a-db.db"\n',
    )
    code, _, err = _run(monkeypatch, capsys, "-c", str(config), "config", "check")
    assert code == 1 and "configuration OK" not in err
    assert f"[state] url: postgresql+psycopg2://u:***@127.0.0.1:{port}/x: cannot be reached" in err
    assert "[province] source_url:" in err and "not a database" in err
    assert "secret" not in err


def test_a_missing_province_database_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path, '[state]\nurl = "sqlite:///state/state.db"\n[province]\nsource_url = "sqlite:///gone.db"\n'
    )
    assert _run(monkeypatch, capsys, "-c", str(config), "db", "upgrade")[0] == 0
    code, _, err = _run(monkeypatch, capsys, "-c", str(config), "sync", "push")
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"the province database {tmp_path / 'gone.db'} does not exist (province.source_url)"
    ]


def test_a_state_url_naming_a_folder_changes_no_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "state.db"
    folder.mkdir()
    folder.chmod(0o755)
    config = _config(tmp_path, '[state]\nurl = "sqlite:///state.db"\n')
    for command in (["db", "upgrade"], ["status"]):
        code, _, err = _run(monkeypatch, capsys, "-c", str(config), *command)
        assert code == 2 and "Traceback" not in err, err
        assert "names a folder, not a state file" in err and str(folder) in err
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_a_foreign_file_keeps_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not a state\n", encoding="utf-8")
    other.chmod(0o644)
    config = _config(tmp_path, '[state]\nurl = "sqlite:///notes.txt"\n')
    code, _, err = _run(monkeypatch, capsys, "-c", str(config), "db", "upgrade")
    assert code == 2 and "Traceback" not in err and "[state] url" in err, err
    assert stat.S_IMODE(other.stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_state_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, '[state]\nurl = "sqlite:///state.db"\n')
    assert _run(monkeypatch, capsys, "-c", str(config), "db", "upgrade")[0] == 0
    (tmp_path / "state.db").chmod(0)
    try:
        code, _, err = _run(monkeypatch, capsys, "-c", str(config), "status")
    finally:
        (tmp_path / "state.db").chmod(0o600)
    assert code == 2 and "Traceback" not in err and "Permission denied" in err


def test_explain_names_a_permission_problem_and_a_dtd() -> None:
    from zeep.exceptions import DTDForbidden

    denied = explain(PermissionError(13, "Permission denied", "/var/lib/dvcsync/state.db"))
    assert denied.code == 2 and denied.message.startswith("/var/lib/dvcsync/state.db: Permission denied")
    dtd = explain(DTDForbidden("x", "y", "z"))
    assert dtd.code == 1 and "DTD" in dtd.message and "[portal] soap_url" in dtd.message
    bug = explain(ZeroDivisionError("division by zero"))
    assert bug.code == 1 and "-v" in bug.message and "ZeroDivisionError" in bug.message


def test_verbose_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "state.db").mkdir()
    config = _config(tmp_path, '[state]\nurl = "sqlite:///state.db"\n')
    code, _, err = _run(monkeypatch, capsys, "-v", "-c", str(config), "status")
    assert code == 2 and "Traceback" in err and "IsADirectoryError" in err


def test_terminal_text_escapes_controls_and_markup() -> None:
    hostile = "HS-1\x1b]0;owned\x07\x1b[2J[red]x[/red]\u202e"
    shown = terminal_text(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\\x1b" in shown and "\\u202e" in shown
    assert cell_text(hostile).count("\\[red]") == 1
    assert terminal_text("line one\nline two") == "line one\nline two"


def test_status_prints_a_hostile_code_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dvcsync.province.sample import generate
    from dvcsync.state import StateStore

    generate(tmp_path / "onestop.db", 3, 1)
    config = _config(
        tmp_path, '[state]\nurl = "sqlite:///state.db"\n[province]\nsource_url = "sqlite:///onestop.db"\n'
    )
    assert _run(monkeypatch, capsys, "-c", str(config), "db", "upgrade")[0] == 0
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.record_conflict("HS\x1b[2J\x1b]0;owned\x07", "TrangThai", "1", "2", "[red]note[/red]\x1b[31m")
    store.close()
    code, out, err = _run(monkeypatch, capsys, "-c", str(config), "status")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and "[red]note[/red]" in out


_DTD_REPLY = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&a;</soap:Body>'
    b"</soap:Envelope>"
)


class _HostilePortal(BaseHTTPRequestHandler):
    """Logs in (REST), then answers every SOAP call with a reply that declares a DTD."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        soap = "soap" in self.path or b"Envelope" in body
        reply = _DTD_REPLY if soap else json.dumps({"error_code": 0, "session": "s"}).encode()
        self.send_response(200)
        self.send_header("content-type", "text/xml" if soap else "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


def test_a_soap_reply_with_a_dtd_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dvcsync.province.sample import generate

    generate(tmp_path / "onestop.db", 3, 1)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostilePortal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        config = _config(
            tmp_path,
            '[state]\nurl = "sqlite:///state.db"\n[province]\nsource_url = "sqlite:///onestop.db"\n'
            f'[portal]\ntransport = "soap"\nadapter_url = "{base}/dvcqg"\nsoap_url = "{base}/soap"\n',
        )
        assert _run(monkeypatch, capsys, "-c", str(config), "db", "upgrade")[0] == 0
        code, _, err = _run(monkeypatch, capsys, "-c", str(config), "catalogue", "pull")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith("hostile XML refused in the reply: DTDForbidden")


def test_dvcsync_debug_shows_the_traceback_and_is_no_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "state.db").mkdir()
    config = _config(tmp_path, '[state]\nurl = "sqlite:///state.db"\n')
    monkeypatch.setenv("DVCSYNC_DEBUG", "1")
    code, _, err = _run(monkeypatch, capsys, "-c", str(config), "status")
    assert code == 2 and "Traceback" in err and "names a folder" in err.strip().splitlines()[-1]
