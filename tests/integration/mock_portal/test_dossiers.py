"""DongBoHoSoMC, CapNhatTienDoHoSoMC and TraCuuHoSo with the strict rules of issue 3 item 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mock_portal.testing import run_mock_in_process

from .support import PortalClient, sample_dossier, step

CONTRACT = Path(__file__).resolve().parents[2] / "fixtures" / "contract"


def stored(portal: PortalClient, code: str) -> dict[str, Any]:
    response = portal.admin("GET", f"/dossiers/{code}")
    assert response.status_code == 200, response.text
    return response.json()


def test_create_then_look_up(portal: PortalClient) -> None:
    dossier = sample_dossier(1, NewFieldFrom2030="kept")
    reply = portal.push(dossier)
    assert reply["error_code"] == 0
    assert reply["result"] == [{"MaHoSo": dossier["MaHoSo"], "error_code": 0, "message": "Đã tạo"}]
    found = portal.call("TraCuuHoSo", mahoso=dossier["MaHoSo"])["result"]
    assert len(found) == 1 and found[0]["QuaTrinhXuLy"] == []
    assert found[0]["ChuHoSo"] == "Nguyễn Thị Hồng Nhung" and found[0]["NewFieldFrom2030"] == "kept"
    assert portal.call("TraCuuHoSo", mahoso="000.00.01.H40-000000-000000")["result"] == []


def test_golden_requests_are_accepted(portal: PortalClient) -> None:
    for name in (
        "dongbohosomc_request_create.json",
        "dongbohosomc_request_minimal.json",
        "dongbohosomc_request_opencps.json",
        "dongbohosomc_request_variants.json",
        "dongbohosomc_request_status1_no_reception.json",
    ):
        body = json.loads((CONTRACT / name).read_text(encoding="utf-8"))
        reply = portal.push(*body["data"])
        assert all(item["error_code"] in (0, "3") for item in reply["result"]), (name, reply)
    history = json.loads((CONTRACT / "capnhattiendohosomc_request.json").read_text(encoding="utf-8"))
    assert portal.history(*history["data"])["error_code"] == 0


def test_create_existing_fails_with_3(portal: PortalClient) -> None:
    dossier = sample_dossier(1)
    portal.push(dossier)
    again = portal.push(dossier, sample_dossier(2))
    assert again["result"][0]["error_code"] == "3" and "đã tồn tại" in again["result"][0]["message"]
    assert again["result"][1]["error_code"] == 0
    assert again["error_code"] == "3" and "1/2" in again["message"]
    twice_in_one = portal.push(sample_dossier(3), sample_dossier(3))
    assert [item["error_code"] for item in twice_in_one["result"]] == [0, "3"]


def test_update_replaces_and_counts_writes(portal: PortalClient) -> None:
    portal.push(sample_dossier(1, status="2"))
    reply = portal.push(sample_dossier(1, status="4", GhiChu="đang thẩm định"), updating=True)
    assert reply["error_code"] == 0 and reply["result"][0]["message"] == "Đã cập nhật"
    got = stored(portal, sample_dossier(1)["MaHoSo"])
    assert got["TrangThaiHoSo"] == "4" and got["GhiChu"] == "đang thẩm định" and got["writes"] == 2


def test_update_of_unknown_fails(portal: PortalClient) -> None:
    reply = portal.push(sample_dossier(9), updating=True)
    assert reply["error_code"] == "2" and "không tồn tại" in reply["result"][0]["message"]
    assert portal.admin("GET", f"/dossiers/{sample_dossier(9)['MaHoSo']}").status_code == 404


def test_first_push_in_any_status(portal: PortalClient) -> None:
    dossier = sample_dossier(1, status="10", NgayTra="20251122100000")
    assert portal.push(dossier)["error_code"] == 0


def test_illegal_move_refused_in_strict_mode(portal: PortalClient) -> None:
    portal.push(sample_dossier(1, status="10", NgayTra="20251122100000"))
    reply = portal.push(sample_dossier(1, status="4"), updating=True)
    assert reply["error_code"] == "4" and "10 → 4" in reply["result"][0]["message"]
    assert stored(portal, sample_dossier(1)["MaHoSo"])["TrangThaiHoSo"] == "10"


def test_lenient_mode_accepts_and_warns() -> None:
    with run_mock_in_process(strict=False) as mock:
        portal = PortalClient(mock)
        portal.push(sample_dossier(1, status="10", NgayTra="20251122100000"))
        assert portal.push(sample_dossier(1, status="4"), updating=True)["error_code"] == 0
        got = stored(portal, sample_dossier(1)["MaHoSo"])
        assert got["TrangThaiHoSo"] == "4"
        assert len(got["warnings"]) == 1 and "10 → 4" in got["warnings"][0]["message"]
        portal.close()


@pytest.mark.parametrize(
    "change, field, fragment",
    [
        ({"ChuHoSo": None}, "ChuHoSo", ""),
        ({"NgayTiepNhan": "2025-11-20 09:00"}, "NgayTiepNhan", "'2025-11-20 09:00'"),
        ({"NgayHenTra": "20250231170000"}, "NgayHenTra", "'20250231170000'"),
        ({"TrangThaiHoSo": "11"}, "TrangThaiHoSo", "'11'"),
        ({"KenhThucHien": "9"}, "KenhThucHien", "'9'"),
        ({"MaTTHC": "khai-sinh"}, "MaTTHC", "'khai-sinh'"),
        ({"TrichYeuHoSo": "x" * 1001}, "TrichYeuHoSo", "1001 ký tự"),
    ],
)
def test_invalid_values_name_record_field_and_value(
    portal: PortalClient, change: dict[str, Any], field: str, fragment: str
) -> None:
    dossier = sample_dossier(1)
    for key, value in change.items():
        if value is None:
            del dossier[key]
        else:
            dossier[key] = value
    reply = portal.push(dossier, sample_dossier(2))
    item = reply["result"][0]
    assert item["error_code"] == "1" and item["MaHoSo"] == dossier["MaHoSo"]
    assert dossier["MaHoSo"] in item["message"] and field in item["message"] and fragment in item["message"]
    assert reply["result"][1]["error_code"] == 0, "the valid record of the batch is stored"


def test_personal_data_is_masked_in_messages(portal: PortalClient) -> None:
    reply = portal.push(
        sample_dossier(
            1, DinhDanhCHS=[{"LoaiDinhDanh": "7", "SoDinhDanh": "001203004567"}], SoDienThoai=912345678.5
        )
    )
    message = reply["result"][0]["message"]
    assert "SoDienThoai" in message and "912345678.5" not in message


def test_record_without_code_is_named_by_position(portal: PortalClient) -> None:
    reply = portal.push({"ChuHoSo": "A"})
    assert reply["result"][0]["MaHoSo"].startswith("#0") and reply["error_code"] == "1"


def test_batch_limit_and_bad_envelopes(portal: PortalClient) -> None:
    over = portal.push(*[sample_dossier(i) for i in range(101)])
    assert over["error_code"] == "5" and "100" in over["message"] and "result" not in over
    assert portal.call("DongBoHoSoMC", isUpdating="False", data=[])["error_code"] == "1"
    assert portal.call("DongBoHoSoMC", isUpdating="False", data={"MaHoSo": "x"})["error_code"] == "1"
    assert portal.call("DongBoHoSoMC", isUpdating="Maybe", data=[sample_dossier(1)])["error_code"] == "1"
    assert portal.admin("GET", "/dossiers").json()["total"] == 0


def test_batch_limit_is_configurable() -> None:
    with run_mock_in_process(batch_limit=3) as mock:
        portal = PortalClient(mock)
        assert portal.push(*[sample_dossier(i) for i in range(4)])["error_code"] == "5"
        assert portal.push(*[sample_dossier(i) for i in range(3)])["error_code"] == 0
        portal.close()


def test_history_appends_without_deduplication(portal: PortalClient) -> None:
    code = sample_dossier(1)["MaHoSo"]
    portal.push(sample_dossier(1))
    entries = [step(code, "4", "20251120100000"), step(code, "9", "20251121090000")]
    assert portal.history(*entries)["error_code"] == 0
    assert portal.history(*entries)["error_code"] == 0, "a retried call is applied again"
    found = portal.call("TraCuuHoSo", mahoso=code)["result"][0]
    assert [e["ThoiDiemXuLy"] for e in found["QuaTrinhXuLy"]] == ["20251120100000", "20251121090000"] * 2
    got = stored(portal, code)
    assert got["writes"] == 5 and got["writes_by_service"] == {"DongBoHoSoMC": 1, "CapNhatTienDoHoSoMC": 4}


def test_history_for_unknown_dossier_or_bad_entry(portal: PortalClient) -> None:
    portal.push(sample_dossier(1))
    code = sample_dossier(1)["MaHoSo"]
    reply = portal.history(step("000.00.01.H40-000000-999999"), step(code, who="x" * 51), step(code))
    assert [item["error_code"] for item in reply["result"]] == ["2", "1", 0]
    assert "NguoiXuLy" in reply["result"][1]["message"]
    assert len(stored(portal, code)["QuaTrinhXuLy"]) == 1


def test_ratings_are_accepted_and_validated(portal: PortalClient) -> None:
    item = {
        "NgayTongHop": "11-2025",
        "TongSoNguoiDanhGia": "120",
        "PhanTramDanhGiaRatHaiLong": "40%",
        "PhanTramDanhGiaHaiLong": "55%",
        "PhanTramDanhGiaChuaHaiLong": "5%",
        "MaThuTuc": "1.001193",
    }
    assert portal.call("DongBoDanhGia", data=[item])["error_code"] == 0
    assert portal.admin("GET", "/ratings").json() == [item]
    bad = portal.call("DongBoDanhGia", data=[{**item, "NgayTongHop": "2025-11"}])
    assert bad["error_code"] == "1" and "NgayTongHop" in bad["message"]
