"""The admin API: paged dossiers, one dossier with history and writes, stats, reset, OpenAPI."""

from __future__ import annotations

from .support import PortalClient, sample_dossier, step


def test_dossiers_paged_in_arrival_order(portal: PortalClient) -> None:
    portal.push(*[sample_dossier(i) for i in (5, 3, 9, 1)])
    first = portal.admin("GET", "/dossiers", params={"page": 1, "size": 3}).json()
    second = portal.admin("GET", "/dossiers", params={"page": 2, "size": 3}).json()
    assert first["total"] == 4 and len(first["items"]) == 3 and len(second["items"]) == 1
    order = [item["MaHoSo"][-1] for item in first["items"] + second["items"]]
    assert order == ["5", "3", "9", "1"]
    assert first["items"][0]["writes"] == 1 and first["items"][0]["TrangThaiHoSo"] == "4"
    assert portal.admin("GET", "/dossiers", params={"size": 0}).status_code == 422


def test_one_dossier_with_wire_names_history_and_writes(portal: PortalClient) -> None:
    code = sample_dossier(1)["MaHoSo"]
    portal.push(sample_dossier(1, status="2"))
    portal.history(step(code, "4", "20251120110000"), step(code, "4", "20251120100000"))
    portal.push(sample_dossier(1, status="4"), updating=True)
    got = portal.admin("GET", f"/dossiers/{code}").json()
    assert (
        got["MaHoSo"] == code and got["TrangThaiHoSo"] == "4" and got["DinhDanhCHS"][0]["LoaiDinhDanh"] == "1"
    )
    assert [e["ThoiDiemXuLy"] for e in got["QuaTrinhXuLy"]] == ["20251120110000", "20251120100000"]
    assert got["writes"] == 4
    assert portal.admin("GET", "/dossiers/unknown").status_code == 404


def test_stats_count_services_and_outcomes(portal: PortalClient) -> None:
    portal.push(sample_dossier(1))
    portal.push(sample_dossier(1))
    portal.call("Nope")
    stats = portal.admin("GET", "/stats").json()
    assert stats["services"]["DongBoHoSoMC"] == {"ok": 1, "error:3": 1}
    assert stats["services"]["auth"] == {"ok": 1} and stats["services"]["unknown"] == {"error:6": 1}
    assert stats["total"] == 4 and stats["sessions"] == 1


def test_reset_forgets_everything_but_sessions(portal: PortalClient) -> None:
    portal.push(sample_dossier(1))
    assert portal.admin("POST", "/reset").json() == {"reset": True}
    assert portal.admin("GET", "/dossiers").json()["total"] == 0
    assert portal.admin("GET", "/stats").json()["total"] == 0
    assert portal.push(sample_dossier(1))["error_code"] == 0, "same session, same code: created again"
    portal.admin("POST", "/reset", params={"sessions": "true"})
    assert portal.push(sample_dossier(1))["error_code"] == 401


def test_openapi_lists_the_faces(portal: PortalClient) -> None:
    paths = portal.http.get("/openapi.json").json()["paths"]
    assert {"/dvcqg/auth", "/dvcqg/integration", "/payment/init", "/_admin/faults"} <= set(paths)
    assert portal.http.get("/docs").status_code == 200
