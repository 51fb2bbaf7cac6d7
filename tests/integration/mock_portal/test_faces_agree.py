"""The REST fast path for valid DongBoHoSoMC batches and the general dispatcher (used by the SOAP
face and for invalid batches) must answer and store the same things."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from mock_portal.testing import InProcessMock

from .support import PortalClient, sample_dossier

TWIN = "000.00.01.H40-251120-T00001"


def via_dispatcher(mock: InProcessMock, body: dict[str, Any]) -> dict[str, Any]:
    assert mock.app is not None
    reply: dict[str, Any] = asyncio.run(mock.app.state.portal.handle("integration", body, "H40"))
    return reply


def without_code(dossier: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dossier.items() if k not in {"MaHoSo", "created_at", "updated_at"}}


def test_fast_path_and_dispatcher_agree(mock: InProcessMock, portal: PortalClient) -> None:
    rest = portal.push(sample_dossier(1), sample_dossier(2))
    body = {
        "session": portal.session,
        "madonvi": "000.00.01.H40",
        "service": "DongBoHoSoMC",
        "isUpdating": "False",
        "data": [sample_dossier(1, MaHoSo=TWIN), sample_dossier(4)],
    }
    direct = via_dispatcher(mock, json.loads(json.dumps(body)))
    assert [i["error_code"] for i in rest["result"]] == [i["error_code"] for i in direct["result"]] == [0, 0]
    assert rest["message"] == direct["message"]
    one = portal.admin("GET", f"/dossiers/{sample_dossier(1)['MaHoSo']}").json()
    twin = portal.admin("GET", f"/dossiers/{TWIN}").json()
    assert without_code(one) == without_code(twin)
    again = via_dispatcher(mock, {**body, "data": [sample_dossier(1)]})
    assert again["result"][0]["error_code"] == "3", "the dispatcher sees what the fast path stored"


def test_fast_path_keeps_the_check_order(portal: PortalClient) -> None:
    body = {
        "session": "stale",
        "madonvi": "000.00.01.H40",
        "service": "DongBoHoSoMC",
        "isUpdating": "False",
        "data": [sample_dossier(1)],
    }
    assert portal.post("/dvcqg/integration", body).json()["error_code"] == 401
    assert (
        portal.http.post("/dvcqg/integration", json=body, headers={"dstcode": "X"}).json()["error_code"]
        == 403
    )
    wrong_unit = {**body, "session": portal.session, "madonvi": "000.00.09.H40"}
    assert portal.post("/dvcqg/integration", wrong_unit).json()["error_code"] == 403
    over = {**body, "session": portal.session, "data": [sample_dossier(i) for i in range(101)]}
    assert portal.post("/dvcqg/integration", over).json()["error_code"] == "5"
    decoy = {
        "session": portal.session,
        "madonvi": "000.00.01.H40",
        "service": "TraCuuHoSo",
        "mahoso": "x",
        "note": {"service": "DongBoHoSoMC"},
    }
    assert portal.post("/dvcqg/integration", decoy).json()["result"] == []
