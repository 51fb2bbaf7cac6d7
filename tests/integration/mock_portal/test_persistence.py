"""State kept across restarts in the SQLite file: across a re-created app (in process), and after a
real ``python -m mock_portal`` process is killed."""

from __future__ import annotations

from pathlib import Path

import httpx

from mock_portal.testing import run_mock_in_process, run_mock_process

from .support import PortalClient, init_body, receiver, sample_dossier, step, wait_until


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "mock.db")
    code = sample_dossier(1)["MaHoSo"]
    with run_mock_in_process(state=state) as mock:
        portal = PortalClient(mock)
        portal.login()
        portal.push(sample_dossier(1))
        portal.history(step(code), step(code, "9", "20251121090000"))
        portal.http.post("/payment/init", json=init_body("REF-1"))
        portal.admin(
            "POST",
            "/portal-dossiers",
            json={"MaHoSo": "G22.99-251120-0001", "MaTTHC": "1.001193", "NgayNopHoSo": "20251120080000"},
        )
        portal.close()
    with run_mock_in_process(state=state) as mock:
        portal = PortalClient(mock)
        portal.login()
        found = portal.call("TraCuuHoSo", mahoso=code)["result"][0]
        assert [e["TrangThai"] for e in found["QuaTrinhXuLy"]] == ["4", "9"]
        assert portal.push(sample_dossier(1))["result"][0]["error_code"] == "3"
        assert portal.http.get("/_admin/payments/REF-1").json()["state"] == "3"
        assert [d["MaHoSo"] for d in portal.call("DanhSachHoSo")["result"]] == ["G22.99-251120-0001"]
        portal.close()


def test_state_survives_a_killed_process(tmp_path: Path) -> None:
    state = str(tmp_path / "mock.db")
    with run_mock_process(state=state) as mock:
        portal = PortalClient(mock)
        portal.login()
        assert portal.push(*[sample_dossier(i) for i in range(50)])["error_code"] == 0
        mock.kill()
        portal.close()
    with run_mock_process(state=state) as mock:
        assert httpx.get(f"{mock.url}/_admin/dossiers", trust_env=False).json()["total"] == 50
        old_session = PortalClient(mock)
        old_session.session = "from-before-the-restart"
        assert old_session.call("TraCuuHoSo", mahoso="x")["error_code"] == 401, "sessions do not survive"
        old_session.close()


def test_unanswered_push_resumes_after_restart(tmp_path: Path) -> None:
    import json

    state = str(tmp_path / "mock.db")
    golden = Path(__file__).resolve().parents[2] / "fixtures" / "contract" / "thongbaokhuyenmai_push.json"
    promotion = json.loads(golden.read_text(encoding="utf-8"))
    with run_mock_in_process(state=state) as mock:  # no --province-url yet: the push waits
        portal = PortalClient(mock)
        assert portal.admin("POST", "/portal-dossiers", json=promotion).status_code == 201
        assert (
            portal.admin("GET", f"/portal-dossiers/{promotion['MaHoSo']}").json()["push_state"] == "pending"
        )
        portal.close()
    with (
        receiver({"error_code": 1, "message": "Đã nhận trước đó"}) as province,
        run_mock_in_process(state=state, province_url=province.url) as mock,
    ):
        assert province.wait_for(1)[0]["MaHoSo"] == promotion["MaHoSo"]
        portal = PortalClient(mock)
        wait_until(
            lambda: (
                portal.admin("GET", f"/portal-dossiers/{promotion['MaHoSo']}").json()["push_state"]
                == "duplicate"
            )
        )
        portal.close()
