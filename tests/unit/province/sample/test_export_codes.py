"""The committed code tables are exactly the export of the sample data, and the mapping reads them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from dvcsync.mapping.codes import CodeTable
from dvcsync.mapping.spec import CodeTableSpec
from dvcsync.province.sample import export_codes
from dvcsync.province.sample.catalogue import agencies, procedures

CODES = Path(__file__).parents[4] / "mappings" / "codes"


def test_committed_tables_equal_the_export() -> None:
    for name, render in export_codes.EXPORTS.items():
        assert (CODES / name).read_text(encoding="utf-8") == render(), (
            f"mappings/codes/{name} is stale: run python -m dvcsync.province.sample.export_codes"
        )


def test_check_mode_reports_a_stale_table_and_write_mode_fixes_it(tmp_path: Path) -> None:
    assert export_codes.main([str(tmp_path)]) == 0
    assert export_codes.main(["--check", str(tmp_path)]) == 0
    (tmp_path / "agencies.yaml").write_text("name: agencies\n", encoding="utf-8")
    assert export_codes.main(["--check", str(tmp_path)]) == 1
    assert export_codes.main([str(tmp_path)]) == 0
    assert export_codes.main(["--check", str(tmp_path)]) == 0


def test_procedure_table_maps_every_mapped_procedure_and_omits_the_rest() -> None:
    table = CodeTable(CodeTableSpec.model_validate(yaml.safe_load(export_codes.procedures_yaml())))
    for proc in procedures():
        if proc.ma_tthc_qg is None:
            assert proc.ma_thu_tuc not in table.keys()  # noqa: SIM118 (CodeTable has no __contains__)
            continue
        assert table.lookup(proc.ma_thu_tuc) == {
            "ma_tthc": proc.ma_tthc_qg,
            "ten_tthc": proc.ten_thu_tuc,
            "ma_linh_vuc": proc.ma_linh_vuc,
            "ten_linh_vuc": proc.ten_linh_vuc,
        }
    assert table.lookup("HT-KS-01")["ma_tthc"] == "1.001193"


def test_agency_table_is_dated_and_resolves_successors() -> None:
    table = CodeTable(CodeTableSpec.model_validate(yaml.safe_load(export_codes.agencies_yaml())))
    assert table.dated and len(table) == len(agencies())
    old = next(a for a in agencies() if a.cap == "xa" and a.valid_to is not None)
    new = next(a for a in agencies() if a.ma_don_vi == old.successor)
    assert table.lookup(old.ma_don_vi, date(2025, 6, 30))["ma"] == old.ma_qg
    assert table.lookup(old.ma_don_vi, date(2025, 7, 1)) == {"ma": new.ma_qg, "ten": new.ten_don_vi}
