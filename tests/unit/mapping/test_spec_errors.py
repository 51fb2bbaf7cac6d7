"""A bad spec fails at load time, naming the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvcsync.mapping import MappingSpecError, load_mappings


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(folder: Path) -> list[tuple[str, int | None, str, str]]:
    with pytest.raises(MappingSpecError) as info:
        load_mappings(folder)
    return [(p.name, line, key, msg) for p, line, key, msg in info.value.problems]


def test_shipped_specs_load_with_test_code_tables(mappings_dir: Path) -> None:
    mset = load_mappings(mappings_dir)
    assert {"dossier", "step", "fee", "document", "result_document"} <= set(mset.names())


def test_unknown_key_names_file_line_and_key(mappings_dir: Path) -> None:
    spec = mappings_dir / "fee.yaml"
    lines = spec.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("MaPhiLePhi:"))
    lines[index] = "  MaPhiLePhi: {path: ma_phi, fromat: text}"
    spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = _problems(mappings_dir)
    assert problems == [("fee.yaml", index + 1, "fields.MaPhiLePhi.fromat", "unknown key 'fromat'")]
    with pytest.raises(MappingSpecError, match=rf"fee\.yaml:{index + 1}: fields\.MaPhiLePhi\.fromat"):
        load_mappings(mappings_dir)


def test_field_with_two_sources(tmp_path: Path) -> None:
    _write(tmp_path, "x.yaml", "name: x\noutput: LePhi\nfields:\n  TenPhiLePhi:\n    path: a\n    const: b\n")
    [(name, line, key, msg)] = _problems(tmp_path)
    assert (name, line, key) == ("x.yaml", 4, "fields.TenPhiLePhi")
    assert "exactly one of path" in msg and "path, const" in msg


def test_unknown_code_table_and_output_field(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "x.yaml",
        "name: x\noutput: LePhi\nfields:\n  TenPhiLePhi: {path: a}\n  LoaiPhiLePhi:\n    path: b\n"
        "    code: nope\n  TenPhi: {path: c}\n",
    )
    problems = _problems(tmp_path)
    assert ("x.yaml", 7, "fields.LoaiPhiLePhi.code", "no code table 'nope'") in problems
    assert ("x.yaml", 8, "fields.TenPhi", "LePhi has no field 'TenPhi'") in problems


def test_unknown_output_model(tmp_path: Path) -> None:
    _write(tmp_path, "x.yaml", "name: x\noutput: HoSoo\nfields:\n  A: {path: a}\n")
    assert _problems(tmp_path) == [("x.yaml", 2, "output", "'HoSoo' is not a contract model")]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    _write(tmp_path, "x.yaml", "name: x\noutput: LePhi\nfields:\n  A: {path: a\n  B: 1\n")
    [(name, line, _key, msg)] = _problems(tmp_path)
    assert name == "x.yaml" and line is not None and line >= 4
    assert "YAML syntax error" in msg


def test_duplicate_key(tmp_path: Path) -> None:
    _write(tmp_path, "x.yaml", "name: x\noutput: LePhi\nfields:\n  A: {path: a}\n  A: {path: b}\n")
    assert _problems(tmp_path) == [("x.yaml", 5, "", "duplicate key 'A'")]


def test_name_must_match_file(tmp_path: Path) -> None:
    _write(tmp_path, "x.yaml", "name: y\noutput: LePhi\nfields:\n  TenPhiLePhi: {path: a}\n")
    assert _problems(tmp_path) == [("x.yaml", 1, "name", "name 'y' differs from the file name 'x'")]


def test_dated_code_table_successor_must_exist(tmp_path: Path) -> None:
    (tmp_path / "codes").mkdir()
    _write(
        tmp_path / "codes",
        "agencies.yaml",
        "name: agencies\ndated: true\nentries:\n  - key: A\n    value: {ten: x}\n    successor: B\n",
    )
    [(name, line, key, msg)] = _problems(tmp_path)
    assert (name, line, key) == ("agencies.yaml", 6, "entries[0].successor")
    assert "successor 'B' is not in the table" in msg


def test_code_table_attribute_must_exist_on_every_entry(mappings_dir: Path) -> None:
    spec = mappings_dir / "dossier.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("attr: ten_tthc", "attr: ten_thu_tuc"), encoding="utf-8"
    )
    [(name, _line, key, msg)] = _problems(mappings_dir)
    assert (name, key) == ("dossier.yaml", "fields.TenTTHC.attr")
    assert "lack attribute 'ten_thu_tuc'" in msg


def test_each_must_name_a_child_of_the_source(mappings_dir: Path) -> None:
    spec = mappings_dir / "dossier.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("each: fees", "each: fee_rows"), encoding="utf-8"
    )
    [(name, _line, key, msg)] = _problems(mappings_dir)
    assert (name, key) == ("dossier.yaml", "fields.DanhSachLePhi.each")
    assert "'fee_rows' is not a child of the source" in msg


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "name: a\noutput: Nope\nfields:\n  A: {path: a}\n")
    _write(tmp_path, "b.yaml", "name: b\noutput: LePhi\nfields:\n  TenPhiLePhi: {pth: a}\n")
    assert {p[0] for p in _problems(tmp_path)} == {"a.yaml", "b.yaml"}
