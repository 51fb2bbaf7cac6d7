"""``sync.readback``: what the portal already holds of a dossier, decided from its read-back.
Pure functions: field comparison (``differing_fields``) and history matched as a multiset
(``settle_history``), by examples and by properties."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dvcsync.sync.readback import (
    HISTORY_IDENTITY,
    describe_entry,
    differing_fields,
    history_fingerprint,
    settle_history,
)

CODE = "000.00.01.H40-261120-000001"


def _entry(
    when: str, who: str = "Cán bộ A", what: str = "Tiếp nhận", status: str = "2", **extra: Any
) -> dict[str, Any]:
    return {
        "MaHoSo": CODE,
        "ThoiDiemXuLy": when,
        "NguoiXuLy": who,
        "NoiDungXuLy": what,
        "TrangThai": status,
        **extra,
    }


# ---------------------------------------------------------------------- differing_fields


def test_absent_none_and_empty_are_the_same() -> None:
    mapped = {"MaHoSo": CODE, "GhiChu": "", "Fax": None, "NgayTra": ""}
    portal = {"MaHoSo": CODE, "Fax": ""}  # GhiChu and NgayTra absent, Fax empty
    assert differing_fields(mapped, portal) == []
    assert differing_fields({"GhiChu": "x"}, {}) == ["GhiChu"]
    assert differing_fields({"GhiChu": ""}, {"GhiChu": "x"}) == ["GhiChu"]  # the portal's value counts


def test_surrounding_whitespace_does_not_make_a_difference_but_inner_text_does() -> None:
    assert differing_fields({"ChuHoSo": "Nguyễn Văn An"}, {"ChuHoSo": " Nguyễn Văn An "}) == []
    assert differing_fields({"ChuHoSo": "Nguyễn Văn An"}, {"ChuHoSo": "Nguyễn Văn  An"}) == ["ChuHoSo"]
    assert differing_fields({"ChuHoSo": "Nguyễn Văn An"}, {"ChuHoSo": "nguyễn văn an"}) == ["ChuHoSo"]


def test_fields_only_the_portal_has_are_ignored() -> None:
    mapped = {"MaHoSo": CODE, "TrangThaiHoSo": "4"}
    portal = {"MaHoSo": CODE, "TrangThaiHoSo": "4", "NgayCapNhat": "20261120", "writes": 3, "X": {"a": 1}}
    assert differing_fields(mapped, portal) == []


def test_the_history_field_is_never_a_field_difference() -> None:
    mapped = {"MaHoSo": CODE, "QuaTrinhXuLy": [_entry("20261120080000")]}
    assert differing_fields(mapped, {"MaHoSo": CODE, "QuaTrinhXuLy": []}) == []
    assert differing_fields(mapped, {"MaHoSo": CODE}) == []


def test_differences_are_named_sorted_and_once() -> None:
    mapped = {"TrangThaiHoSo": "10", "ChuHoSo": "B", "MaHoSo": CODE, "Email": "a@b.vn"}
    portal = {"TrangThaiHoSo": "9", "ChuHoSo": "A", "MaHoSo": CODE, "Email": "a@b.vn"}
    assert differing_fields(mapped, portal) == ["ChuHoSo", "TrangThaiHoSo"]


def test_numbers_and_their_text_are_the_same_value() -> None:
    assert differing_fields({"Gia": "50000", "LoaiDoiTuong": 1}, {"Gia": 50000, "LoaiDoiTuong": "1"}) == []
    assert differing_fields({"Gia": "50000"}, {"Gia": 50001}) == ["Gia"]
    assert differing_fields({"Gia": "0"}, {}) == ["Gia"]  # 0 is a value, not absence
    assert differing_fields({"Gia": 0}, {"Gia": ""}) == ["Gia"]
    assert differing_fields({"IsDeleted": "False"}, {"IsDeleted": False}) == []
    assert differing_fields({"IsDeleted": "True"}, {"IsDeleted": False}) == ["IsDeleted"]


def _documents(*names: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"TepDinhKemId": f"1-{k}", "TenTepDinhKem": name, **extra} for k, name in enumerate(names)]


def test_lists_compare_item_by_item_on_the_mapped_keys() -> None:
    mapped = {"TaiLieuNop": _documents("a.pdf", "b.pdf")}
    # the portal keeps keys of its own on each item: not differences
    assert differing_fields(mapped, {"TaiLieuNop": _documents("a.pdf", "b.pdf", IdNoiBo="77")}) == []
    # one item's mapped key differs
    changed = _documents("a.pdf", "b.pdf")
    changed[1]["TenTepDinhKem"] = "c.pdf"
    assert differing_fields(mapped, {"TaiLieuNop": changed}) == ["TaiLieuNop"]
    # same items, other order: position matters
    assert differing_fields(mapped, {"TaiLieuNop": list(reversed(_documents("a.pdf", "b.pdf")))}) == [
        "TaiLieuNop"
    ]


def test_a_list_of_another_length_differs() -> None:
    mapped = {"TaiLieuNop": _documents("a.pdf", "b.pdf")}
    assert differing_fields(mapped, {"TaiLieuNop": _documents("a.pdf")}) == ["TaiLieuNop"]
    assert differing_fields(mapped, {"TaiLieuNop": _documents("a.pdf", "b.pdf", "c.pdf")}) == ["TaiLieuNop"]
    assert differing_fields(mapped, {"TaiLieuNop": []}) == ["TaiLieuNop"]
    assert differing_fields(mapped, {}) == ["TaiLieuNop"]
    assert differing_fields({"TaiLieuNop": []}, {"TaiLieuNop": _documents("a.pdf")}) == ["TaiLieuNop"]


def test_an_empty_list_and_an_absent_one_are_the_same() -> None:
    assert differing_fields({"DanhSachLePhi": []}, {}) == []
    assert differing_fields({"DanhSachLePhi": []}, {"DanhSachLePhi": None}) == []
    assert differing_fields({"DanhSachLePhi": []}, {"DanhSachLePhi": []}) == []


def test_a_list_against_a_scalar_differs() -> None:
    assert differing_fields({"TaiLieuNop": _documents("a.pdf")}, {"TaiLieuNop": "a.pdf"}) == ["TaiLieuNop"]
    assert differing_fields({"GhiChu": "a"}, {"GhiChu": ["a"]}) == ["GhiChu"]


def test_nested_dicts_compare_on_the_mapped_keys() -> None:
    mapped = {
        "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001203004567", "Them": {"a": "1", "b": ""}}]
    }
    same = {"DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001203004567", "Them": {"a": 1, "c": "x"}}]}
    assert differing_fields(mapped, same) == []
    deep = {"DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001203004567", "Them": {"a": "2"}}]}
    assert differing_fields(mapped, deep) == ["DinhDanhCHS"]
    assert differing_fields({"X": {"a": "1"}}, {"X": {"a": "1", "b": "2"}}) == []
    assert differing_fields({"X": {"a": "1"}}, {"X": {"a": "2"}}) == ["X"]
    assert differing_fields({"X": {"a": "1"}}, {"X": "1"}) == ["X"]  # a dict against a scalar
    assert differing_fields({"X": "1"}, {"X": {"a": "1"}}) == ["X"]
    assert differing_fields({"X": {"a": ""}}, {}) == []  # nothing mapped inside: nothing to differ


# ---------------------------------------------------------------------- fingerprints


def test_the_fingerprint_is_the_five_identity_fields_as_compared_text() -> None:
    entry = _entry("20261120080000", extra="ignored")
    assert history_fingerprint(entry) == (CODE, "20261120080000", "Cán bộ A", "Tiếp nhận", "2")
    assert history_fingerprint({**entry, "TrangThai": 2}) == history_fingerprint(entry)
    assert history_fingerprint({**entry, "NguoiXuLy": " Cán bộ A "}) == history_fingerprint(entry)
    assert history_fingerprint({**entry, "GhiChu": "khác"}) == history_fingerprint(entry)
    for key in HISTORY_IDENTITY:
        assert history_fingerprint({**entry, key: "other"}) != history_fingerprint(entry), key


def test_a_described_entry_carries_no_dossier_code() -> None:
    text = describe_entry(_entry("20261120080000", what="Thẩm định"))
    assert CODE not in text and "Thẩm định" in text and "20261120080000" in text


# ---------------------------------------------------------------------- settle_history


A, B, C, D = (_entry(f"2026112008{m:02d}00", what=w) for m, w in enumerate(["a", "b", "c", "d"]))


def test_an_empty_portal_sends_everything_in_order() -> None:
    result = settle_history([[A, B], [C]], [])
    assert result.missing == [[0, 1], [0]]
    assert (result.present, result.missing_count, result.portal_only) == (0, 3, [])


def test_a_complete_portal_sends_nothing() -> None:
    result = settle_history([[A, B], [C]], [C, B, A])  # the portal's order does not matter
    assert result.missing == [[], []]
    assert (result.present, result.missing_count, result.portal_only) == (3, 0, [])


def test_a_step_twice_in_the_province_once_on_the_portal_is_sent_once() -> None:
    result = settle_history([[A, B, A]], [A, B])
    assert result.missing == [[2]]  # the second A, not the first
    assert (result.present, result.portal_only) == (2, [])
    # and across outbox entries: the later occurrence is the missing one
    result = settle_history([[A], [B], [A]], [B, A])
    assert result.missing == [[], [], [0]]
    # twice on the portal, twice in the province: nothing to send
    assert settle_history([[A, A]], [A, A]).missing == [[]]


def test_missing_indexes_keep_the_province_order_across_entries() -> None:
    result = settle_history([[A, B, C], [D, B]], [B])
    assert result.missing == [[0, 2], [0, 1]]
    assert result.present == 1


def test_portal_only_leftovers_come_in_the_portal_order() -> None:
    extra1, extra2 = _entry("20261119000000", what="x1"), _entry("20261119000001", what="x2")
    result = settle_history([[A, B]], [extra2, A, extra1, extra2, B])
    assert result.portal_only == [extra2, extra1, extra2]
    assert result.missing == [[]]
    # a leftover is a copy: changing it leaves the portal's list alone
    result.portal_only[0]["NguoiXuLy"] = "changed"
    assert extra2["NguoiXuLy"] == "Cán bộ A"


def test_a_duplicate_on_the_portal_is_a_portal_only_leftover() -> None:
    result = settle_history([[A]], [A, A])
    assert (result.missing, result.present, result.portal_only) == ([[]], 1, [A])


def test_acknowledged_items_account_for_portal_entries() -> None:
    # A is known on the portal already: the portal's A is not portal-only, and the pending A
    # (a second occurrence) is missing
    result = settle_history([[A]], [A], acknowledged=[A])
    assert (result.missing, result.present, result.portal_only) == ([[0]], 0, [])
    # acknowledged items the portal does not show are ignored, not negative counts
    result = settle_history([[B]], [B], acknowledged=[A, A])
    assert (result.missing, result.present, result.portal_only) == ([[]], 1, [])
    result = settle_history([], [A, B], acknowledged=[B])
    assert result.portal_only == [A]


def test_entries_equal_on_identity_but_not_elsewhere_are_the_same_entry() -> None:
    richer = {**A, "GhiChu": "portal's own note", "TrangThai": 2}
    result = settle_history([[A]], [richer])
    assert (result.missing, result.present, result.portal_only) == ([[]], 1, [])


def test_no_pending_entries() -> None:
    result = settle_history([], [])
    assert (result.missing, result.present, result.portal_only, result.missing_count) == ([], 0, [], 0)
    assert settle_history([[]], [A]).missing == [[]]


# ---------------------------------------------------------------------- properties

# a small alphabet so that equal entries (duplicates) are frequent
_entries = st.builds(
    _entry,
    when=st.sampled_from(["20261120080000", "20261120090000"]),
    who=st.sampled_from(["A", "B"]),
    what=st.sampled_from(["x", "y"]),
    status=st.sampled_from(["2", "4"]),
)
_pending = st.lists(st.lists(_entries, max_size=5), max_size=4)
_portal = st.lists(_entries, max_size=12)
BOUNDED = settings(max_examples=200)


def _fingerprints(items: Any) -> Counter[tuple[str, ...]]:
    return Counter(history_fingerprint(e) for e in items)


@BOUNDED
@given(pending=_pending, portal=_portal)
def test_every_province_entry_is_present_or_missing(
    pending: list[list[dict[str, Any]]], portal: list[dict[str, Any]]
) -> None:
    result = settle_history(pending, portal)
    total = sum(len(items) for items in pending)
    assert result.present + result.missing_count == total
    assert len(result.missing) == len(pending)
    for items, missing in zip(pending, result.missing, strict=True):
        assert missing == sorted(set(missing)) and all(0 <= i < len(items) for i in missing)


@BOUNDED
@given(pending=_pending, portal=_portal)
def test_portal_only_is_the_portal_minus_what_was_matched(
    pending: list[list[dict[str, Any]]], portal: list[dict[str, Any]]
) -> None:
    result = settle_history(pending, portal)
    flat = [e for items in pending for e in items]
    assert result.present == sum((_fingerprints(flat) & _fingerprints(portal)).values())
    assert len(result.portal_only) == len(portal) - result.present
    assert _fingerprints(result.portal_only) == _fingerprints(portal) - _fingerprints(flat)
    # leftovers keep the portal's relative order
    order = [history_fingerprint(e) for e in portal]
    positions = []
    cursor = 0
    for entry in result.portal_only:
        cursor = order.index(history_fingerprint(entry), cursor)
        positions.append(cursor)
        cursor += 1
    assert positions == sorted(positions)


@BOUNDED
@given(pending=_pending, portal=_portal)
def test_sending_the_missing_ones_completes_the_portal_and_a_second_settlement_finds_nothing(
    pending: list[list[dict[str, Any]]], portal: list[dict[str, Any]]
) -> None:
    result = settle_history(pending, portal)
    sent = [items[i] for items, missing in zip(pending, result.missing, strict=True) for i in missing]
    after = portal + sent
    flat = [e for items in pending for e in items]
    assert not (_fingerprints(flat) - _fingerprints(after))  # the portal's multiset ⊇ the province's
    assert len(sent) == sum((_fingerprints(flat) - _fingerprints(portal)).values())  # nothing sent twice
    again = settle_history(pending, after)
    assert again.missing_count == 0
    assert _fingerprints(again.portal_only) == _fingerprints(result.portal_only)


@BOUNDED
@given(pending=_pending, portal=_portal, acknowledged=st.lists(_entries, max_size=6))
def test_acknowledged_never_makes_more_portal_only_and_never_less_missing(
    pending: list[list[dict[str, Any]]], portal: list[dict[str, Any]], acknowledged: list[dict[str, Any]]
) -> None:
    plain = settle_history(pending, portal)
    known = settle_history(pending, portal, acknowledged=acknowledged)
    assert len(known.portal_only) <= len(plain.portal_only)
    assert known.missing_count >= plain.missing_count
    available = _fingerprints(portal) - _fingerprints(acknowledged)
    flat = [e for items in pending for e in items]
    assert known.present == sum((_fingerprints(flat) & available).values())
