"""``reconcile repair`` finds the last report written wherever ``--out`` put it (issue 20 item 10):
a pointer in the tenant's reports root, falling back to the newest dated folder."""

from __future__ import annotations

import stat
from pathlib import Path

from dvcsync.reconcile.run import JSON_NAME, POINTER_NAME, last_report, remember_report


def _report(folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / JSON_NAME
    path.write_text("{}", encoding="utf-8")
    return path


def test_the_last_report_is_found_outside_the_reports_root(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    dated = _report(root / "2026-01-02_030405")
    elsewhere = _report(tmp_path / "elsewhere" / "r")
    remember_report(root, elsewhere)
    assert last_report(root) == elsewhere.resolve()
    assert stat.S_IMODE((root / POINTER_NAME).stat().st_mode) == 0o600
    remember_report(root, dated)  # a later run into the root is then the last one
    assert last_report(root) == dated.resolve()


def test_without_a_pointer_or_with_its_report_gone_the_newest_dated_one(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    assert last_report(root) is None
    older, newer = _report(root / "2026-01-02_030405"), _report(root / "2026-02-02_030405")
    assert last_report(root) == newer
    gone = tmp_path / "gone" / JSON_NAME
    (root / POINTER_NAME).write_text(f"{gone}\n", encoding="utf-8")
    assert last_report(root) == newer
    (root / POINTER_NAME).write_text("relative/reconcile.json\n", encoding="utf-8")
    assert last_report(root) == newer
    assert older.is_file()
