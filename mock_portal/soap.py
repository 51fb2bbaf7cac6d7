"""The SOAP 1.1 face of the mock portal (``soap-facade.md``): ``POST /soap``, WSDL at ``GET /soap?wsdl``.

Interface fixed with the rest of the mock: ``soap_router(handle)`` where ``handle(endpoint, body,
dstcode)`` is the mock's shared dispatcher (the same one the REST face calls) and answers the JSON
reply dict. Work in progress: the envelope parsing lands in the next commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response

Handle = Callable[[str, dict[str, Any], str | None], Awaitable[dict[str, Any]]]
"""``handle(endpoint, body, dstcode)``: endpoint ``"integration"`` or ``"share"``, body the JSON dict."""


def soap_router(handle: Handle) -> APIRouter:
    """Routes ``POST /soap`` (SOAP 1.1 envelopes) and ``GET /soap?wsdl`` on the shared dispatcher."""
    router = APIRouter(tags=["soap"])

    @router.get("/soap")
    async def wsdl(request: Request) -> Response:
        return Response("WSDL not yet shipped", status_code=501, media_type="text/plain")

    @router.post("/soap")
    async def soap(request: Request) -> Response:
        return Response("SOAP face not yet implemented", status_code=501, media_type="text/plain")

    return router
