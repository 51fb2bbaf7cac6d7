"""``create_app(config)``: the mock national portal and payment platform as one FastAPI app.

The fault layer wraps the whole application from outside (``MockApp.__call__``), because dropping a
connection needs uvicorn's own ``send``; the portal object on ``app.state.portal`` is the dispatcher
both the REST and the SOAP faces call. ``/docs`` is Swagger UI served from the ``fastapi-offline``
package, so it works on a provincial network without Internet access.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from dvcsync.contract import examples
from dvcsync.contract.openapi import Body, attach
from dvcsync.contract.payment import GetBillRequest, InitReply, InitRequest, QueryReply, QueryRequest

from .admin import admin_router
from .admin_catalogue import catalogue_admin_router
from .callbacks import CallbackDeliverer, ProvincePusher
from .catalogue import Catalogue
from .config import MockConfig
from .faults import FaultInjector, FaultMiddleware, Receive, Scope, Send
from .payments import PaymentPlatform
from .portal import Portal
from .rest import payment_router, portal_router
from .sessions import Sessions
from .stats import Stats
from .store import Store

ADMIN_PREFIX = "/_admin"

_FAULTS = {
    503: "An injected fault (/_admin/faults): the platform is down; other statuses, delays and"
    " dropped connections as injected"
}
PAYMENT_BODIES = {
    ("post", "/payment/init"): Body(InitRequest, examples.PAYMENT_INIT, "INIT a payment", _FAULTS, InitReply),
    ("post", "/payment/query"): Body(
        QueryRequest, examples.PAYMENT_QUERY, "QUERY a payment", _FAULTS, QueryReply
    ),
    ("post", "/payment/bill"): Body(
        GetBillRequest, examples.PAYMENT_GET_BILL, "GET_BILL: the PDF receipt (JSON MaLoi if none)", _FAULTS
    ),
}
"""The payment platform's request bodies, published in ``/openapi.json`` (dvcsync.contract.openapi)."""


class MockApp(FastAPI):
    """FastAPI with the fault layer as its outermost ASGI wrapper, and the admin token's check
    outside even that (a fault rule must not open or close the admin API)."""

    fault_layer: FaultMiddleware | None = None
    admin_token: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.admin_token is not None
            and scope["type"] == "http"
            and _is_admin(scope["path"])
            and not _bearer_ok(scope, self.admin_token)
        ):
            await _unauthorized(send)
            return
        if self.fault_layer is None:
            await super().__call__(scope, receive, send)
        else:
            await self.fault_layer(scope, receive, send)

    async def _inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(config: MockConfig | None = None) -> FastAPI:
    config = config or MockConfig()
    store = Store(config.state)
    stats = Stats()
    sessions = Sessions()
    portal = Portal(config, store, stats, sessions, Catalogue.load())
    deliverer = CallbackDeliverer(
        store,
        lambda: config.callback_url,
        lambda: config.callback_retry_s,
        lambda: config.callback_max_attempts,
        lambda: config.callback_token,
    )
    pusher = ProvincePusher(
        store,
        lambda: config.province_url,
        lambda: config.push_retry_s,
        lambda: config.push_max_attempts,
        lambda: config.province_token,
    )
    portal.on_seeded = pusher.schedule
    payments = PaymentPlatform(config, store, stats, deliverer)
    injector = FaultInjector(config.faults)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pusher.resume()
        yield
        await deliverer.close()
        await pusher.close()
        store.close()

    seed_from_file(portal, config.seed_dossiers)
    app = FastAPIOffline(
        title="dvcsync mock national portal",
        description="A strict stand-in for the National Public Service Portal (Cổng DVC Quốc gia) and its "
        "payment platform: REST under /dvcqg, payments under /payment, SOAP at /soap, admin at /_admin.",
        version="1.0",
        lifespan=lifespan,
    )
    # FastAPIOffline is a factory of plain FastAPI objects; the fault layer needs MockApp.__call__,
    # and MockApp adds no state of its own, so the object becomes one.
    app.__class__ = MockApp
    assert isinstance(app, MockApp)
    app.fault_layer = FaultMiddleware(app._inner, injector, stats.count)
    app.admin_token = config.admin_token.encode() if config.admin_token else None
    app.state.config = config
    app.state.portal = portal
    app.state.store = store
    app.state.stats = stats
    app.state.payments = payments
    app.state.faults = injector
    app.include_router(portal_router(portal))
    app.include_router(payment_router(payments))
    attach(app, PAYMENT_BODIES)
    app.include_router(admin_router(portal, payments, injector, stats, sessions))
    app.include_router(catalogue_admin_router(portal.catalogue))
    _include_soap(app, portal, config, stats)
    return app


def _is_admin(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def _bearer_ok(scope: Scope, token: bytes) -> bool:
    values = [v for k, v in scope.get("headers", ()) if k == b"authorization"]
    if len(values) != 1:
        return False
    scheme, _, presented = values[0].partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(presented.strip(), token)


async def _unauthorized(send: Send) -> None:
    body = b'{"error": "the admin API needs Authorization: Bearer <admin token>"}'
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="mock-portal-admin"'),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def seed_from_file(portal: Portal, path: str | None) -> list[str]:
    """Load ``--seed-dossiers``: what the portal already holds when it starts (dossiers citizens
    submitted on it, whose status the province reports). Codes the state holds are skipped, so a
    restart on the same state file with the same seed works. Raises ValueError (bad JSON or record)
    or OSError (unreadable file)."""
    if not path:
        return []
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    items = body.get("dossiers") if isinstance(body, dict) and "dossiers" in body else body
    try:
        items = items if isinstance(items, list) else [items]
        return portal.seed_portal_dossiers(items, push=False, skip_known=True)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _include_soap(app: FastAPI, portal: Portal, config: MockConfig, stats: Stats) -> None:
    from .soap import soap_router

    app.include_router(soap_router(portal.handle, config.base_url, count=stats.count))


__all__ = ["MockConfig", "create_app"]
