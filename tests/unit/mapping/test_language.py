"""What real schemas need of the mapping language: fallbacks through code tables (first_of),
several rows into one wire list and one row into several (concat), ``{parent.x}`` templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dvcsync.mapping import MappingSpecError, load_mappings

from .conftest import dossier_record


def _edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(folder: Path) -> list[tuple[str, int | None, str, str]]:
    with pytest.raises(MappingSpecError) as info:
        load_mappings(folder)
    return [(p.name, line, key, msg) for p, line, key, msg in info.value.problems]


SUB_STATUSES = """\
name: sub_statuses
description: test table (OpenCPS-like sub-statuses → TrangThaiHoSo)
entries:
  cho_bo_sung: "5"
  cho_thanh_toan: "6"
"""

FIRST_OF = """\
  TrangThaiHoSo:
    first_of:
      - {path: ghi_chu, code: sub_statuses}
      - {path: trang_thai, code: statuses}
    required: true
"""


@pytest.fixture
def with_first_of(mappings_dir: Path) -> Path:
    (mappings_dir / "codes" / "sub_statuses.yaml").write_text(SUB_STATUSES, encoding="utf-8")
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  TrangThaiHoSo: {path: trang_thai, code: statuses, required: true}\n",
        FIRST_OF,
    )
    return mappings_dir


def test_first_of_takes_the_sub_status_code_then_falls_back_to_the_status(with_first_of: Path) -> None:
    dossier = load_mappings(with_first_of).get("dossier")
    by_sub = dossier.map(dossier_record(ghi_chu="cho_bo_sung", trang_thai="processing"))
    assert by_sub.ok and by_sub.value.TrangThaiHoSo == "5"
    no_code = dossier.map(dossier_record(ghi_chu="mot_trang_thai_la", trang_thai="processing"))
    assert no_code.ok and no_code.value.TrangThaiHoSo == "4"  # falls through, not an error
    empty = dossier.map(dossier_record(ghi_chu=None, trang_thai="done"))
    assert empty.ok and empty.value.TrangThaiHoSo == "10"


def test_first_of_with_no_alternative_says_every_reason(with_first_of: Path) -> None:
    result = (
        load_mappings(with_first_of).get("dossier").map(dossier_record(ghi_chu="la", trang_thai="archived"))
    )
    [error] = result.errors
    assert error.field == "TrangThaiHoSo" and error.source == "ghi_chu | trang_thai"
    assert "no entry 'la' in code table 'sub_statuses'" in error.reason
    assert "no entry 'archived' in code table 'statuses'" in error.reason


def test_first_of_references_are_checked_at_load(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  TrangThaiHoSo: {path: trang_thai, code: statuses, required: true}\n",
        FIRST_OF,
    )
    lines = (mappings_dir / "dossier.yaml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "code: sub_statuses" in text)
    assert _problems(mappings_dir) == [
        ("dossier.yaml", line, "fields.TrangThaiHoSo.first_of.0.code", "no code table 'sub_statuses'")
    ]


def test_first_of_alternatives_give_one_value(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  GhiChu: {path: ghi_chu, format: text}\n",
        "  GhiChu:\n    first_of:\n      - {each: fees, mapping: fee}\n",
    )
    [(name, _, key, message)] = _problems(mappings_dir)
    assert (name, key) == ("dossier.yaml", "fields.GhiChu")
    assert "first_of[0]: an alternative gives one value, not 'each'" in message


PAYMENT_FEES = """\
name: file_fee
description: one payment file → its fee line (test)
output: LePhi
fields:
  TenPhiLePhi: {template: "Phí hồ sơ {parent.so_ho_so}"}
  HinhThucThu: {const: "1"}
  Gia: {path: phi, format: amount, required: true}
  LoaiPhiLePhi: {const: "1"}
"""

PAYMENT_CHARGES = """\
name: file_charge
description: one payment file → its charge line (test)
output: LePhi
fields:
  TenPhiLePhi: {const: "Lệ phí"}
  HinhThucThu: {const: "1"}
  Gia: {path: le_phi, format: amount, required: true}
  LoaiPhiLePhi: {const: "2"}
"""


def test_concat_makes_one_list_of_several_rows_and_one_row_into_several(mappings_dir: Path) -> None:
    (mappings_dir / "file_fee.yaml").write_text(PAYMENT_FEES, encoding="utf-8")
    (mappings_dir / "file_charge.yaml").write_text(PAYMENT_CHARGES, encoding="utf-8")
    _edit(
        mappings_dir,
        "dossier.yaml",
        "    documents: {table: tai_lieu",
        "    files: {table: payment_file, key: id, foreign_key: ho_so_id, order_by: [id]}\n"
        "    documents: {table: tai_lieu",
    )
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  DanhSachLePhi: {each: fees, mapping: fee}\n",
        "  DanhSachLePhi:\n"
        "    concat:\n"
        "      - {each: fees, mapping: fee}\n"
        "      - {each: files, mapping: file_fee, where: {phi: {not: 0}}}\n"
        "      - {each: files, mapping: file_charge, where: {le_phi: {not: 0}}}\n",
    )
    record: dict[str, Any] = dossier_record()
    record["files"] = [
        {"id": 1, "ho_so_id": 7, "phi": 50000, "le_phi": 10000},
        {"id": 2, "ho_so_id": 7, "phi": 20000, "le_phi": 0},
    ]
    result = load_mappings(mappings_dir).get("dossier").map(record)
    assert result.ok, result.errors
    fees = [(f.TenPhiLePhi, str(f.Gia), str(f.LoaiPhiLePhi)) for f in result.value.DanhSachLePhi]
    assert fees == [
        ("Lệ phí đăng ký khai sinh", "8000", "2"),
        ("Phí hồ sơ 000.00.01.H40-250812-0007", "50000", "1"),
        ("Phí hồ sơ 000.00.01.H40-250812-0007", "20000", "1"),
        ("Lệ phí", "10000", "2"),
    ]
    record["files"][1]["phi"] = "nhiều"
    [error] = load_mappings(mappings_dir).get("dossier").map(record).errors
    assert error.field == "DanhSachLePhi[2].Gia" and error.reason == "not a whole number"


def test_concat_references_are_checked_at_load(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  DanhSachLePhi: {each: fees, mapping: fee}\n",
        "  DanhSachLePhi:\n    concat:\n"
        "      - {each: fees, mapping: fee}\n      - {each: files, mapping: nope}\n",
    )
    lines = (mappings_dir / "dossier.yaml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "mapping: nope" in text)
    problems = _problems(mappings_dir)
    assert ("dossier.yaml", line, "fields.DanhSachLePhi.concat.1.mapping", "no mapping 'nope'") in problems
    assert any(
        key == "fields.DanhSachLePhi.concat.1.each" and "'files' is not a child" in msg
        for _, _, key, msg in problems
    )


def test_a_parent_placeholder_in_a_template_reads_the_parent(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "step.yaml",
        "  NoiDungXuLy: {path: noi_dung, format: text, required: true}",
        '  NoiDungXuLy: {template: "{noi_dung} ({parent.so_ho_so}, {parent.missing}{thu_tu:03d})"}',
    )
    mset = load_mappings(mappings_dir)
    record = dossier_record()
    step = mset.get("step").map(record["steps"][0], parent=record, record_key="k")
    assert step.ok, step.errors
    assert step.value.NoiDungXuLy == "Tiếp nhận hồ sơ (000.00.01.H40-250812-0007, 001)"
    bad = mset.get("step").map({**record["steps"][0], "thu_tu": "một"}, parent=record, record_key="k")
    [error] = bad.errors
    assert error.field == "NoiDungXuLy" and "failed" in error.reason


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{0}", "must be a column path"),
        ("{a[0]}", "must be a column path"),
        ("{a:{b}}", "nested placeholders"),
        ("a } b", "Single '}'"),
    ],
)
def test_bad_templates_fail_at_load(mappings_dir: Path, template: str, message: str) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  GhiChu: {path: ghi_chu, format: text}",
        f"  GhiChu: {{template: '{template}'}}",
    )
    [(name, _, key, msg)] = _problems(mappings_dir)
    assert (name, key) == ("dossier.yaml", "fields.GhiChu") and message in msg


def test_escaped_braces_are_text(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  GhiChu: {path: ghi_chu, format: text}",
        "  GhiChu: {template: '{{x}} {so_ho_so}'}",
    )
    result = load_mappings(mappings_dir).get("dossier").map(dossier_record())
    assert result.ok and result.value.GhiChu == "{x} 000.00.01.H40-250812-0007"
