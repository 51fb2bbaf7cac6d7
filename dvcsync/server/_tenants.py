"""Several tenants behind one inbound server: ``/t/<code>/…`` goes to that tenant's application.

A plain ASGI dispatcher rather than Starlette mounts: it sets ``current_tenant`` for the request
(the tenant's metrics and log lines), and answers the paths that belong to no tenant (an
unprefixed inbound path, an unknown code) with 404 in the contract's own shape, so a payment
platform or portal still configured with the old address gets an answer it can read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from dvcsync.metrics import current_tenant

from ._access import TENANT_PREFIX, ASGIApp, Receive, Scope, Send, contract_refusal, split_tenant

INBOUND = "/inbound/"
NOT_FOUND = "không có đường dẫn này trên hệ thống một cửa"


class TenantRouter:
    """``/t/<code>/…`` to the tenant's application (the prefix as its ``root_path``); other paths
    to ``app``, but for unprefixed inbound paths, which no tenant owns when there are tenants."""

    def __init__(self, app: ASGIApp, tenants: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.tenants = dict(tenants)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code, inner = split_tenant(scope["path"])
        if code is None:
            if inner.startswith(INBOUND):
                await not_found(inner, send)
                return
            await self.app(scope, receive, send)
            return
        tenant_app = self.tenants.get(code)
        if tenant_app is None:
            await not_found(inner, send)
            return
        child = dict(scope)
        child["root_path"] = scope.get("root_path", "") + TENANT_PREFIX + code
        token = current_tenant.set(code)
        try:
            await tenant_app(child, receive, send)
        finally:
            current_tenant.reset(token)


async def not_found(path: str, send: Send) -> None:
    """404 in the shape the path's contract answers in (``path`` without its tenant prefix)."""
    payload = json.dumps(contract_refusal(path, NOT_FOUND), ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
