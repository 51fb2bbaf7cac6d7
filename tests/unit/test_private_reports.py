"""Reports with personal data in clear are owner-only at rest (issue 20 item 7): every file
0600 before it takes its name, the reconcile working file 0600 from its creation; a folder that
already exists keeps its mode (nothing changes a mode dvcsync did not create)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dvcsync.reconcile.report import Report
from dvcsync.reconcile.run import write_report
from dvcsync.reconcile.workbook import WorkBook

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reconcile" / "sample-report.json"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_report_with_names_in_clear_is_0600(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    report = Report.read_json(FIXTURE)
    report.period["personal_data"] = "shown"
    out = tmp_path / "given"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    files = write_report(report, out, ["html", "xlsx", "csv"])
    assert len(files) == 4
    assert all(_mode(f) == 0o600 for f in files), {f.name: oct(_mode(f)) for f in files}
    assert _mode(out) == 0o755  # given with --out: its mode is the operator's
    assert any("can be listed by others" in r.getMessage() for r in caplog.records)


def test_a_masked_report_is_not_made_private(tmp_path: Path) -> None:
    report = Report.read_json(FIXTURE)
    report.period["personal_data"] = "masked"
    files = write_report(report, tmp_path, ["csv"])
    assert all(f.is_file() for f in files)  # written as before, under the umask


def test_the_working_file_is_created_0600(tmp_path: Path) -> None:
    book = WorkBook(tmp_path / "reports" / ".work-x.sqlite", "x")
    try:
        assert _mode(tmp_path / "reports" / ".work-x.sqlite") == 0o600
    finally:
        book.close(finished=False)
