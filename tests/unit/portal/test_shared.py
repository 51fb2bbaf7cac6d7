"""One rate budget and one session per tenant and portal, shared by every job's client of a
process (issue 21 item 3): the province's budget is not multiplied by the number of jobs."""

from __future__ import annotations

import asyncio

import httpx
import respx

from dvcsync.config import PortalSettings
from dvcsync.portal import PortalClient
from dvcsync.portal.shared import share_rate, shared_for

BASE = "http://portal.test/dvcqg"
OK = {"error_code": 0, "message": "", "result": []}


def _settings(**overrides: object) -> PortalSettings:
    return PortalSettings.model_validate(
        {"adapter_url": BASE, "dstcode": "H40", "madonvi": "000.00.00.H40", "rate_limit": 5.0, **overrides}
    )


@respx.mock(assert_all_called=False)
def test_every_job_of_a_tenant_shares_one_login_and_one_budget(respx_mock: respx.MockRouter) -> None:
    logins = respx_mock.post(f"{BASE}/auth").mock(
        return_value=httpx.Response(200, json={"error_code": 0, "session": "S1", "message": "ok"})
    )
    respx_mock.post(f"{BASE}/integration").mock(return_value=httpx.Response(200, json=OK))

    async def jobs() -> tuple[object, object, object]:
        settings = _settings()
        clients = []
        for _job in ("push", "pull", "catalogue"):  # each cycle builds its own client and http
            shared = shared_for(settings, "tinh-a")
            clients.append(
                PortalClient(settings, httpx.AsyncClient(), rate=shared.rate, sessions=shared.sessions)
            )
        await asyncio.gather(*(c.call("TraCuuHoSo", {"mahoso": "X"}) for c in clients))
        other = shared_for(settings, "tinh-b")  # another tenant: its own budget and login
        return clients[0].rate, clients[2].rate, other.rate

    first, last, other = asyncio.run(jobs())
    assert first is last and other is not first
    assert logins.call_count == 1  # one login for the three jobs


def test_replicas_divide_the_provinces_budget() -> None:
    async def share() -> list[float]:
        shared = shared_for(_settings(rate_limit=30.0))
        return [share_rate(shared, 30.0, n) for n in (1, 3, 0)] + [shared.rate.rate]

    assert asyncio.run(share()) == [30.0, 10.0, 30.0, 30.0]
