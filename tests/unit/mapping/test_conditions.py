"""Row tests (a source's ``where``, ``each``/``exists`` filters, ``applies_to``): one language,
compiled to SQL with bound parameters and matched in Python with the same meaning."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import create_engine, text

from dvcsync.mapping import MappingSpecError, load_mappings
from dvcsync.mapping.engine import OUTSIDE_WHERE
from dvcsync.mapping.spec import AppliesTo
from dvcsync.source_spec import Condition, ConditionIn, RowFilter, SourceSpec, filter_matches, filter_sql

from .conftest import dossier_record

ROWS: list[tuple[int, Any, Any, Any]] = [
    # id, status (text), system (integer), flag (integer)
    (1, "new", 5, 0),
    (2, "", 5, 1),
    (3, None, None, None),
    (4, "processing", 6, 1),
    (5, "  ", 2, 0),
    (6, "done", 5, 1),
    (7, "5", 0, None),
]

FILTERS: list[dict[str, Any]] = [
    {"status": {"not_in": ["", "new"]}},
    {"status": ["new", None]},
    {"status": None},
    {"status": {"not": "new"}},
    {"status": {"filled": True}},
    {"status": {"filled": False}},
    {"status": {"not_null": True}},
    {"status": {"not_null": False}},
    {"system": 5},
    {"system": "5"},
    {"system": {"in": [5, 6]}, "flag": True},
    {"flag": False},
    {"status": {"not_in": ["", "new", None]}, "system": {"not": 6}},
    {"status": 5},
]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("conditions") / "rows.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, status TEXT, system INTEGER, flag INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", ROWS)
    return f"sqlite:///{path}"


def _parse(raw: dict[str, Any]) -> dict[str, Condition]:
    return TypeAdapter(RowFilter).validate_python(raw)


@pytest.mark.parametrize("raw", FILTERS, ids=[str(f) for f in FILTERS])
def test_sql_and_python_agree_on_a_real_table(table: str, raw: dict[str, Any]) -> None:
    where = _parse(raw)
    engine = create_engine(table)
    try:
        with engine.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            sql, params = filter_sql(where, quote)
            by_sql = [r[0] for r in conn.execute(text(f"SELECT id FROM t WHERE {sql} ORDER BY id"), params)]
    finally:
        engine.dispose()
    names = ("id", "status", "system", "flag")
    by_python = [row[0] for row in ROWS if filter_matches(where, dict(zip(names, row, strict=True)))]
    assert by_sql == by_python


def test_values_are_bound_parameters_never_sql_text(table: str) -> None:
    hostile = "x'); DROP TABLE t; --"
    sql, params = filter_sql(_parse({"status": {"not_in": [hostile, "new"]}}), lambda n: f'"{n}"')
    assert hostile not in sql and list(params.values()) == [hostile, "new"]
    assert sql == '("status" NOT IN (:_where0, :_where1))'
    engine = create_engine(table)
    try:
        with engine.connect() as conn:
            count = conn.execute(text(f"SELECT COUNT(*) FROM t WHERE {sql}"), params).scalar_one()
            assert count == 5  # the table is still there; NULL never matches not_in
    finally:
        engine.dispose()


def test_a_source_where_as_sql_for_every_read(table: str) -> None:
    spec = SourceSpec.model_validate(
        {"table": "t", "key": "id", "record_key": "id", "where": {"status": {"not_in": ["", "new"]}}}
    )
    engine = create_engine(table)
    try:
        with engine.connect() as conn:
            where, params = spec.where_sql(conn.dialect.identifier_preparer.quote)
            pages = (
                conn.execute(
                    text(f"SELECT id FROM t WHERE {where} AND id > :_last ORDER BY id"),
                    {**params, "_last": 0},
                )
                .scalars()
                .all()
            )
            count = conn.execute(text(f"SELECT COUNT(*) FROM t WHERE {where}"), params).scalar_one()
            by_key = conn.execute(
                text(f"SELECT id FROM t WHERE id = :k AND {where}"), {**params, "k": 1}
            ).all()
    finally:
        engine.dispose()
    assert pages == [4, 5, 6, 7] and count == 4 and by_key == []
    assert spec.takes({"status": "done"}) and not spec.takes({"status": "new"})
    assert SourceSpec(table="t", key="id", record_key="id").where_sql(str) == ("", {})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"x": {"not_in": []}}, "'not_in' takes a non-empty list"),
        ({"x": {"nope": 1}}, "unknown test 'nope'"),
        ({"x": {"not": 1, "in": [1]}}, "a test is one of"),
        ({"x": {"filled": "yes"}}, "'filled' takes true or false"),
        ({"x": {"equals": [1]}}, "'equals' takes one value"),
        ({"x": [{"a": 1}]}, "values must be text, numbers"),
    ],
)
def test_bad_tests_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _parse(raw)


def test_conditions_say_themselves() -> None:
    assert (
        TypeAdapter(ConditionIn).validate_python({"not_in": ["", "new"]}).describe() == "not in ('', 'new')"
    )
    assert TypeAdapter(ConditionIn).validate_python(5).describe() == "= 5"


def _edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text_ = path.read_text(encoding="utf-8")
    assert old in text_, old
    path.write_text(text_.replace(old, new, 1), encoding="utf-8")


def _line(folder: Path, name: str, needle: str) -> int:
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_a_bad_where_names_file_line_and_key(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  updated_at: updated_at\n",
        "  updated_at: updated_at\n  where:\n    trang_thai: {not_in: []}\n",
    )
    with pytest.raises(MappingSpecError) as info:
        load_mappings(mappings_dir)
    [(path, line, key, message)] = info.value.problems
    assert path.name == "dossier.yaml" and line == _line(mappings_dir, "dossier.yaml", "trang_thai: {not_in")
    assert key == "source.where.trang_thai" and "non-empty list" in message


def test_a_record_outside_the_source_where_is_left_out_not_mapped(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "  updated_at: updated_at\n",
        "  updated_at: updated_at\n  where:\n    trang_thai: {not_in: ['', new]}\n",
    )
    dossier = load_mappings(mappings_dir).get("dossier")
    draft = dossier.map(dossier_record(trang_thai="new"))
    assert draft.skipped is not None and draft.skipped.startswith(OUTSIDE_WHERE)
    assert "trang_thai not in ('', 'new')" in draft.skipped and draft.value is None
    assert dossier.map(dossier_record(trang_thai="processing")).ok


def test_applies_to_by_value_keeps_column_and_matches(mappings_dir: Path) -> None:
    by_value = AppliesTo.model_validate({"column": "systemId", "equals": 5})
    assert by_value.column == "systemId"
    assert by_value.matches({"systemId": 5}) and by_value.matches({"systemId": "5"})
    assert not by_value.matches({"systemId": 2}) and not by_value.matches({})
    listed = AppliesTo.model_validate({"column": "systemId", "in": [5, 6]})
    assert listed.matches({"systemId": 6}) and not listed.matches({"systemId": None})
    not_null = AppliesTo.model_validate({"column": "ref", "not_null": True})
    assert not_null.matches({"ref": ""}) and not not_null.matches({"ref": None})
    filled = AppliesTo.model_validate({"column": "ref"})  # as before: filled
    assert (
        filled.matches({"ref": "X"}) and not filled.matches({"ref": ""}) and not filled.matches({"ref": None})
    )
    assert filled.describe() == "ref filled"
    with pytest.raises(ValueError, match="one test"):
        AppliesTo.model_validate({"column": "x", "equals": 1, "in": [1]})
    _edit(
        mappings_dir,
        "status_report.yaml",
        "applies_to: {column: ma_ho_so_qg}",
        "applies_to: {column: nguon, equals: dvcqg}",
    )
    status = load_mappings(mappings_dir).get("status_report")
    assert status.applies(dossier_record(nguon="dvcqg")) and not status.applies(dossier_record())


def test_a_bad_applies_to_names_file_line_and_key(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "status_report.yaml",
        "applies_to: {column: ma_ho_so_qg}",
        "applies_to: {column: ma_ho_so_qg, in: []}",
    )
    with pytest.raises(MappingSpecError) as info:
        load_mappings(mappings_dir)
    [(path, line, key, message)] = info.value.problems
    assert (path.name, line, key) == (
        "status_report.yaml",
        _line(mappings_dir, "status_report.yaml", "applies_to"),
        "applies_to",
    )
    assert "'in' takes a non-empty list" in message


def test_each_where_takes_the_new_tests(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "DanhSachLePhi: {each: fees, mapping: fee}",
        "DanhSachLePhi: {each: fees, mapping: fee, where: {so_tien: {not: 0}}}",
    )
    record = dossier_record()
    record["fees"] = [{**record["fees"][0], "so_tien": 0}, {**record["fees"][0], "id": 2}]
    result = load_mappings(mappings_dir).get("dossier").map(record)
    assert result.ok, result.errors
    assert [str(fee.Gia) for fee in result.value.DanhSachLePhi] == ["8000"]


def test_the_shipped_specs_name_every_child_key() -> None:
    repo = Path(__file__).resolve().parents[3]
    for name in ("dossier", "payment_receipt", "payment_receipt_after"):
        spec = load_mappings(repo / "mappings").specs[name]
        assert spec.source is not None
        for child in spec.source.children.values():
            assert child.key and child.foreign_key and child.order_by


def test_a_child_without_its_foreign_key_fails_at_load_naming_it(mappings_dir: Path) -> None:
    _edit(
        mappings_dir,
        "dossier.yaml",
        "fees: {table: le_phi, key: id, foreign_key: ho_so_id, order_by: [id]}",
        "fees: {table: le_phi, key: id, order_by: [id]}",
    )
    with pytest.raises(MappingSpecError) as info:
        load_mappings(mappings_dir)
    [(path, line, key, message)] = info.value.problems
    assert (path.name, key, message) == (
        "dossier.yaml",
        "source.children.fees.foreign_key",
        "missing key 'foreign_key' (required)",
    )
    assert line == _line(mappings_dir, "dossier.yaml", "fees: {table: le_phi")
