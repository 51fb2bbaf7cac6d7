"""Decisions in the mapping: the overlay table over the procedures table (accepted code, "no
national equivalent" skip), how apply writes it, and how the review file reads back."""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from dvcsync.catalogue.decisions import Accepted, write_decisions
from dvcsync.catalogue.local import mapped_code
from dvcsync.catalogue.matcher import LocalProcedure, Matcher, NationalProcedure
from dvcsync.catalogue.review import ReviewError, ReviewRow, decisions, write_review
from dvcsync.mapping import MappingSpecError, load_mappings
from dvcsync.province.sample.generator import generate

REPO = Path(__file__).resolve().parents[3]
AT = datetime(2026, 11, 30, 9, 0)


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return folder


def _overlay(folder: Path) -> Path:
    return folder / "codes" / "procedure_decisions.yaml"


def test_an_accepted_code_and_a_skip_change_what_the_dossier_maps_to(mappings: Path) -> None:
    counts = write_decisions(
        _overlay(mappings),
        [
            Accepted(
                "DD-HG-01",
                {
                    "ma_tthc": "1.003554",
                    "ten_tthc": "Hòa giải tranh chấp đất đai",
                    "ma_linh_vuc": "TN-DD",
                    "ten_linh_vuc": "Đất đai",
                },
            )
        ],
        ["XN-TT-01"],
        by="Lan",
        at=AT,
    )
    assert counts == {"accepted": 1, "no_equivalent": 1, "unchanged": 0}
    mset = load_mappings(mappings)
    assert mapped_code(mset, "DD-HG-01").code == "1.003554"
    assert mapped_code(mset, "HT-KS-01").code == "1.001193"  # the generated table still answers
    skipped = mapped_code(mset, "XN-TT-01")
    assert skipped.code is None and skipped.skipped == "no national equivalent"
    assert mapped_code(mset, "TM-HE-01").missing
    record = {
        "so_ho_so": "X-1",
        "ma_thu_tuc": "XN-TT-01",
        "steps": [],
        "fees": [],
        "payments": [],
        "documents": [],
    }
    result = mset.get("dossier").map(record)
    assert result.skipped and "no national equivalent" in result.skipped and "by Lan" in result.skipped
    assert [e.field for e in result.errors] == ["MaTTHC"]  # one clear reason, until the push counts skips
    # the inbound side reads the decision too: the national code maps back to the local one
    assert mset.codes["procedures"].reverse_lookup("1.003554", "ma_tthc") == "DD-HG-01"
    text = _overlay(mappings).read_text(encoding="utf-8")
    assert '"decided_by": "Lan"' not in text and 'decided_by: "Lan"' in text
    again = write_decisions(_overlay(mappings), [], ["XN-TT-01"], by="Lan", at=AT)
    assert again == {"accepted": 0, "no_equivalent": 0, "unchanged": 1}
    # changing one's mind: the skipped code gets a national one, the skip goes
    write_decisions(_overlay(mappings), [Accepted("XN-TT-01", {"ma_tthc": "1.005683"})], [], by="Minh", at=AT)
    table = yaml.safe_load(_overlay(mappings).read_text(encoding="utf-8"))
    assert "XN-TT-01" not in table["skip"] and table["entries"]["XN-TT-01"]["decided_by"] == "Minh"


def test_a_broken_overlay_is_refused_at_load_time_with_file_and_key(mappings: Path) -> None:
    _overlay(mappings).write_text(
        "name: procedure_decisions\noverlays: nowhere\nentries: {}\nskip: {}\n", encoding="utf-8"
    )
    with pytest.raises(
        MappingSpecError, match=r"procedure_decisions.yaml:2: overlays: no code table 'nowhere'"
    ):
        load_mappings(mappings)
    _overlay(mappings).write_text(
        'name: procedure_decisions\noverlays: procedures\nentries:\n  X-1: {ma_tthc: "1.000001"}\nskip: {}\n',
        encoding="utf-8",
    )
    with pytest.raises(MappingSpecError, match="lack attribute 'ten_tthc'"):
        load_mappings(mappings)


def _rows() -> list[ReviewRow]:
    matcher = Matcher(
        [
            NationalProcedure("1.001193", "Đăng ký khai sinh"),
            NationalProcedure("1.004884", "Đăng ký lại khai sinh"),
            NationalProcedure("2.000620", "Cấp Giấy phép bán lẻ sản phẩm rượu"),
        ]
    )
    return [
        ReviewRow(matcher.match(LocalProcedure("L-1", "Đăng ký khai sinh (cấp xã)")), "unmapped", None),
        ReviewRow(matcher.match(LocalProcedure("L-2", "Cấp GP bán buôn rượu")), "unmapped", None),
        ReviewRow(
            matcher.match(LocalProcedure("L-3", "Đăng ký khai sinh lại cho con")), "unverified", "1.000000"
        ),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_review_file_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"review{suffix}"
    write_review(path, _rows())
    found = decisions(path)  # as written: the automatic acceptance only
    assert [(d.local_code, d.national_code) for d in found] == [("L-1", "1.001193")]
    if suffix == ".csv":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
        with path.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
        rows[2][4], rows[3][4] = "none", "1"  # column E: decision
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f).writerows(rows)
    else:
        from openpyxl import load_workbook

        book = load_workbook(path)
        sheet = book["review"]
        sheet["E3"] = "Không"
        sheet["E4"] = 1
        book.save(path)
    found = decisions(path)
    assert [(d.local_code, d.national_code) for d in found] == [
        ("L-1", "1.001193"),
        ("L-2", None),
        ("L-3", _rows()[2].match.candidates[0].code),
    ]


def test_a_bad_decision_names_the_file_the_line_and_the_value(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("local_code,decision\nL-1,1.001193\nL-2,maybe\n", encoding="utf-8")
    with pytest.raises(ReviewError, match=rf"{path}:3: decision 'maybe' for L-2"):
        decisions(path)
    path.write_text("local_code,decision\nL-1,1.001193\nL-1,none\n", encoding="utf-8")
    with pytest.raises(ReviewError, match=rf"{path}:3: local_code 'L-1' again \(first on line 2\)"):
        decisions(path)
    path.write_text("code,choice\n", encoding="utf-8")
    with pytest.raises(ReviewError, match=rf"{path}:1: the header"):
        decisions(path)


def test_local_catalogue_reads_the_sample_with_its_fees(tmp_path: Path) -> None:
    from dvcsync.catalogue.local import read_local
    from dvcsync.province.source import make_engine

    generate(tmp_path / "onestop.db", 200, 7)
    engine = make_engine(f"sqlite:///{tmp_path / 'onestop.db'}")
    try:
        local = {p.code: p for p in read_local(engine)}
    finally:
        engine.dispose()
    assert local["DD-HG-01"].national_code is None and local["TM-KM-01"].unverified
    assert local["HT-KS-01"].national_code == "1.001193" and local["HT-KS-01"].days == 1
