"""A pull saved in the state with exactly what changed since the pull before."""

from __future__ import annotations

from pathlib import Path

from dvcsync.state import StateStore
from dvcsync.state.catalogue import (
    AgencyRecord,
    ProcedureRecord,
    SectorRecord,
    Snapshot,
    agencies,
    last_pull,
    procedures,
    save_pull,
)


def _proc(code: str, name: str, *, active: bool = True, fees: tuple[int, ...] = (0,)) -> ProcedureRecord:
    return ProcedureRecord(code, name, active, "1" if active else "0", "TP-HT", "Hộ tịch", fees, 3.0, {})


def test_first_pull_is_the_baseline_then_each_change_is_listed_once(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.prepare()
    try:
        base = Snapshot(
            [
                _proc("1.000001", "Đăng ký khai sinh"),
                _proc("1.000002", "Đăng ký khai tử"),
                _proc("1.000003", "Cũ"),
            ],
            [AgencyRecord("000.00.01.H40", "Sở Tư pháp", "2", True, None)],
            [SectorRecord("TP-HT", "Hộ tịch", "TP")],
        )
        _, first = save_pull(store, base, now=1_000.0)
        assert first.first and first.count == 0
        _, same = save_pull(store, base, now=2_000.0)
        assert not same.first and same.count == 0
        moved = Snapshot(
            [
                _proc("1.000001", "Đăng ký khai sinh (sửa)", fees=(5000,)),
                _proc("1.000002", "Đăng ký khai tử", active=False),
                _proc("1.000004", "Mới"),
            ],
            [AgencyRecord("000.00.01.H40", "Sở Tư pháp", "2", False, "2025-06-30")],
            [SectorRecord("TP-HT", "Hộ tịch", "TP"), SectorRecord("TP-CT", "Chứng thực", "TP")],
        )
        pull_id, changes = save_pull(store, moved, now=3_000.0)
        assert changes.new == [{"code": "1.000004", "name": "Mới"}]
        assert changes.renamed == [
            {"code": "1.000001", "name": "Đăng ký khai sinh (sửa)", "old_name": "Đăng ký khai sinh"}
        ]
        assert sorted(c["code"] for c in changes.withdrawn) == [
            "1.000002",
            "1.000003",
        ]  # one by status, one gone
        assert changes.fees_changed == [
            {"code": "1.000001", "name": "Đăng ký khai sinh (sửa)", "old_fees": [0], "fees": [5000]}
        ]
        assert changes.agencies_abolished == [
            {"code": "000.00.01.H40", "name": "Sở Tư pháp", "valid_to": "2025-06-30"}
        ]
        assert changes.sectors_new == [{"code": "TP-CT", "name": "Chứng thực"}]
        assert changes.count == 7
        saved = last_pull(store)
        assert saved is not None and saved["id"] == pull_id and saved["changes"] == changes.as_dict()
        assert {p.code: p.active for p in procedures(store)} == {
            "1.000001": True,
            "1.000002": False,
            "1.000003": False,
            "1.000004": True,
        }
        assert [a.active for a in agencies(store)] == [False]
    finally:
        store.close()


def test_a_pull_is_dated_by_the_provinces_day_not_the_machines(tmp_path: Path) -> None:
    """17:30 UTC on 7 December is 00:30 on 8 December in the province (UTC+7): the catalogue is
    the one of the 8th, whatever zone the machine runs in."""
    from datetime import UTC, datetime

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.prepare()
    try:
        moment = datetime(2026, 12, 7, 17, 30, tzinfo=UTC).timestamp()
        save_pull(store, Snapshot([_proc("1.000001", "Đăng ký khai sinh")], [], []), now=moment)
        pull = last_pull(store)
        assert pull is not None and pull["catalogue_date"] == "2026-12-08"
    finally:
        store.close()
