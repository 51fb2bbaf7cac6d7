"""The local field (sector) and agency take part in matching (issue 20 item 9): a candidate whose
field or agency conflicts, or whose name adds qualifying words to the local one, is never accepted
automatically, however high its score."""

from __future__ import annotations

from dvcsync.catalogue.matcher import LocalProcedure, Matcher, NationalProcedure

COPY = NationalProcedure(
    "2.001914",
    "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc",
    sector_code="GD-VB",
    sector_name="Văn bằng, chứng chỉ",
    agencies=("Sở Giáo dục và Đào tạo",),
)
BIRTH = NationalProcedure(
    "1.001193", "Đăng ký khai sinh", sector_name="Hộ tịch", agencies=("Ủy ban nhân dân cấp xã",)
)
OTHER = NationalProcedure("1.000001", "Đăng ký kết hôn", sector_name="Hộ tịch")


def _matcher() -> Matcher:
    # a low threshold: in a three-name catalogue the scores are not the real catalogue's, and what is
    # under test is that the blockers alone keep a candidate from being accepted
    return Matcher([COPY, BIRTH, OTHER], threshold=0.5)


def test_the_issue_case_a_strict_subset_with_a_conflicting_field_is_not_accepted() -> None:
    match = _matcher().match(LocalProcedure("CT-01", "Cấp bản sao từ sổ gốc", sector_name="Chứng thực"))
    assert match.accepted is None
    assert match.candidates[0].code == "2.001914"  # still proposed to a person
    assert match.why_not is not None
    assert "the national name adds qualifying words: van bang chung chi" in match.why_not
    assert "field: local Chứng thực, national Văn bằng, chứng chỉ" in match.why_not


def test_a_strict_subset_is_not_accepted_even_without_a_field() -> None:
    match = _matcher().match(LocalProcedure("CT-01", "Cấp bản sao từ sổ gốc"))
    assert match.accepted is None
    assert "qualifying words" in (match.why_not or "")


def test_a_conflicting_field_blocks_an_exact_name_and_ranks_it_lower() -> None:
    same = _matcher().match(
        LocalProcedure(
            "VB-01", "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", sector_name="Văn bằng, chứng chỉ"
        )
    )
    other = _matcher().match(
        LocalProcedure("VB-01", "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", sector_name="Chứng thực")
    )
    assert same.accepted == "2.001914"
    assert other.accepted is None and "field:" in (other.why_not or "")
    assert other.candidates[0].score < same.candidates[0].score


def test_conflicting_sector_codes_without_names_block() -> None:
    match = _matcher().match(
        LocalProcedure("VB-01", "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", sector_code="CT")
    )
    assert match.accepted is None and "field: local CT, national Văn bằng, chứng chỉ" in (match.why_not or "")


def test_the_agency_takes_part() -> None:
    matcher = _matcher()
    commune = matcher.match(LocalProcedure("HT-01", "Đăng ký khai sinh", agency="UBND xã Tân An"))
    department = matcher.match(LocalProcedure("HT-01", "Đăng ký khai sinh", agency="Sở Tư pháp"))
    named = matcher.match(
        LocalProcedure("VB-01", "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", agency="Sở Giáo dục và Đào tạo")
    )
    assert commune.accepted == "1.001193"
    assert "same agency" in commune.candidates[0].reason
    assert department.accepted is None
    assert "agency: local Sở Tư pháp, national Ủy ban nhân dân cấp xã" in (department.why_not or "")
    assert named.accepted == "2.001914"


def test_filler_words_added_by_the_national_name_do_not_block() -> None:
    national = NationalProcedure("1.000002", "Cấp Giấy xác nhận tình trạng hôn nhân")
    match = Matcher([national, OTHER]).match(LocalProcedure("HT-02", "Xác nhận tình trạng hôn nhân"))
    assert match.accepted == "1.000002"
