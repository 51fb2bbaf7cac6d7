"""Dossiers submitted on the portal: seeding, DanhSachHoSo, XacNhanHoSo, DongBoTrangThaiHoSo,
withdrawal, and the promotion notification POSTed to the province."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dvcsync.contract import DanhSachHoSoReply
from mock_portal.testing import run_mock_in_process

from .support import PortalClient, receiver, sample_dossier, wait_until

CONTRACT = Path(__file__).resolve().parents[2] / "fixtures" / "contract"
PROMOTION = json.loads((CONTRACT / "thongbaokhuyenmai_push.json").read_text(encoding="utf-8"))


def portal_dossier(n: int, day: str = "20251120") -> dict[str, Any]:
    return {
        "MaHoSo": f"G22.99-{day[2:]}-{n:04d}",
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "ChuHoSo": "Phạm Văn Long",
        "LoaiDoiTuong": "1",
        "SoGiayToChuHoSo": "036090001111",
        "NgayNopHoSo": f"{day}0{n % 10}0000",
        "TaiLieuNop": [
            {
                "TepDinhKemId": f"F{n}",
                "TenTepDinhKem": "To khai.pdf",
                "DuongDanTaiTepTin": f"https://dichvucong.example/f/{n}",
            }
        ],
    }


def status(code: str, state: str, when: str = "20251121090000") -> dict[str, Any]:
    return {
        "MaHoSo": code,
        "MaHoSoDonVi": "000.00.41.H40-251121-0001",
        "NoiDung": "Đã tiếp nhận",
        "NgayXuLy": when,
        "TrangThai": state,
    }


def test_seed_list_page_and_acknowledge(portal: PortalClient) -> None:
    seeded = portal.admin(
        "POST", "/portal-dossiers", json=[portal_dossier(1), portal_dossier(2), portal_dossier(3, "20251125")]
    )
    assert seeded.status_code == 201 and len(seeded.json()["seeded"]) == 3
    listed = DanhSachHoSoReply.model_validate(portal.call("DanhSachHoSo"))
    assert listed.result is not None and [d.MaHoSo for d in listed.result] == [
        "G22.99-251120-0001",
        "G22.99-251120-0002",
        "G22.99-251125-0003",
    ]
    page2 = portal.call("DanhSachHoSo", trang="2", sobanghi="2")["result"]
    assert [d["MaHoSo"] for d in page2] == ["G22.99-251125-0003"]
    window = portal.call("DanhSachHoSo", tungay="20251124000000", denngay="20251126000000")["result"]
    assert [d["MaHoSo"] for d in window] == ["G22.99-251125-0003"]
    assert portal.call("XacNhanHoSo", mahoso="G22.99-251120-0001", mahosodonvi="L-1")["error_code"] == 0
    left = [d["MaHoSo"] for d in portal.call("DanhSachHoSo")["result"]]
    assert left == ["G22.99-251120-0002", "G22.99-251125-0003"]
    assert portal.call("XacNhanHoSo", mahoso="G22.99-000000-9999")["error_code"] == "2"
    assert portal.call("DanhSachHoSo", trang="0")["error_code"] == "1"
    assert portal.call("DanhSachHoSo", tungay="2025-11-24")["error_code"] == "1"


def test_seed_refuses_invalid_and_duplicate(portal: PortalClient) -> None:
    bad = portal.admin("POST", "/portal-dossiers", json={**portal_dossier(1), "NgayNopHoSo": "hôm qua"})
    assert bad.status_code == 422 and "NgayNopHoSo" in bad.json()["error"]
    assert portal.admin("POST", "/portal-dossiers", json=portal_dossier(1)).status_code == 201
    again = portal.admin("POST", "/portal-dossiers", json=portal_dossier(1))
    assert again.status_code == 422 and "đã tồn tại" in again.json()["error"]


def test_status_reports_first_any_then_strict(portal: PortalClient) -> None:
    portal.admin("POST", "/portal-dossiers", json=portal_dossier(1))
    code = portal_dossier(1)["MaHoSo"]
    assert portal.call("DongBoTrangThaiHoSo", type="2", data=status(code, "2"))["error_code"] == 0
    assert portal.call("DongBoTrangThaiHoSo", type="2", data=status(code, "4"))["error_code"] == 0
    illegal = portal.call("DongBoTrangThaiHoSo", type="2", data=status(code, "1"))
    assert illegal["error_code"] == "4" and "4 → 1" in illegal["message"]
    assert portal.call("DongBoTrangThaiHoSo", type="3", data=status(code, "9"))["error_code"] == "1"
    unknown = portal.call("DongBoTrangThaiHoSo", type="2", data=status("G22.99-000000-9999", "2"))
    assert unknown["error_code"] == "2"
    recorded = portal.admin("GET", f"/portal-dossiers/{code}").json()
    assert recorded["status"] == "4" and [s["TrangThai"] for s in recorded["status_reports"]] == ["2", "4"]
    golden = json.loads((CONTRACT / "dongbotrangthaihoso_request.json").read_text(encoding="utf-8"))
    portal.admin("POST", "/portal-dossiers", json=PROMOTION, params={"push": "false"})
    assert portal.call("DongBoTrangThaiHoSo", type="2", data=golden["data"])["error_code"] == 0


def test_withdraw_on_the_portal_side(portal: PortalClient) -> None:
    portal.push(sample_dossier(1, status="4"))
    code = sample_dossier(1)["MaHoSo"]
    assert portal.admin("POST", f"/dossiers/{code}/withdraw").json() == {"MaHoSo": code, "TrangThaiHoSo": "7"}
    found = portal.call("TraCuuHoSo", mahoso=code)["result"][0]
    assert found["TrangThaiHoSo"] == "7" and found["QuaTrinhXuLy"][-1]["TrangThai"] == "7"
    late = portal.push(sample_dossier(1, status="9"), updating=True)
    assert late["error_code"] == "4", "7 is final: the province must take the withdrawal in"
    assert portal.admin("POST", f"/dossiers/{code}/withdraw").status_code == 409
    assert portal.admin("POST", "/dossiers/nope/withdraw").status_code == 404
    portal.admin("POST", "/portal-dossiers", json=portal_dossier(5))
    assert portal.admin("POST", f"/dossiers/{portal_dossier(5)['MaHoSo']}/withdraw").status_code == 200
    after = portal.call("DongBoTrangThaiHoSo", type="2", data=status(portal_dossier(5)["MaHoSo"], "2"))
    assert after["error_code"] == "4"


def test_promotion_is_listed_and_pushed_to_the_province() -> None:
    with (
        receiver({"error_code": 0, "message": "Đã tiếp nhận"}, answers=[(500, b"down")]) as province,
        run_mock_in_process(province_url=province.url, push_retry_s=0.05) as mock,
    ):
        portal = PortalClient(mock)
        assert portal.admin("POST", "/portal-dossiers", json=PROMOTION).status_code == 201
        received = province.wait_for(2)
        assert received[0] == received[1] and received[1]["TenThuongNhan"] == PROMOTION["TenThuongNhan"]
        assert received[1]["TaiLieuNop"][0]["Base64"] == PROMOTION["TaiLieuNop"][0]["Base64"]

        def answered() -> bool:
            return (
                portal.admin("GET", f"/portal-dossiers/{PROMOTION['MaHoSo']}").json()["push_state"]
                == "created"
            )

        wait_until(answered)
        listed = portal.call("DanhSachHoSo")["result"]
        assert listed[0]["MaHoSo"] == PROMOTION["MaHoSo"] and listed[0]["LoaiDoiTuong"] == "2"
        portal.close()
