"""The SOAP 1.1 face of the mock portal (``soap-facade.md``): ``POST /soap``, WSDL at ``GET /soap?wsdl``.

It is a translation layer only: a SOAP request becomes the very JSON body a REST client would POST and
goes through the mock's shared dispatcher (``handle``), so both faces act on the same state under the
same rules. Business refusals come back as normal replies with a non-zero ``error_code``; protocol
failures (malformed or hostile XML, unknown operation) as a ``soap:Fault`` with HTTP 500.
Sessions come from the REST login (``/dvcqg/auth``): SOAP has no login operation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from dvcsync.contract import SHARE_SERVICES
from dvcsync.contract.wsdl import wsdl_bytes

from . import soap_citizens
from .soap_xml import MAX_BODY_BYTES, EmptyLists, SoapFault, build_fault, build_response, parse_request

Handle = Callable[[str, dict[str, Any], str | None], Awaitable[dict[str, Any]]]
"""``handle(endpoint, body, dstcode)``: endpoint ``"integration"`` or ``"share"``, body the JSON dict."""

XML_MEDIA_TYPE = "text/xml; charset=utf-8"
_log = logging.getLogger(__name__)
_SHIPPED_ADDRESS = b'<soap:address location="http://127.0.0.1:8080/soap"/>'


def wsdl_for(soap_url: str) -> bytes:
    """The shipped WSDL with ``soap_url`` as its service address: a client that takes the address
    from the WSDL (zeep's default service) must post where it fetched the WSDL from, not to the
    default port the file was written with. The URL is escaped (it comes from a ``Host`` header)."""
    shipped = wsdl_bytes()
    if shipped.count(_SHIPPED_ADDRESS) != 1:
        raise RuntimeError("the shipped WSDL's soap:address is not the one expected")
    location = quoteattr(soap_url).encode("utf-8")
    return shipped.replace(_SHIPPED_ADDRESS, b"<soap:address location=" + location + b"/>")


def _fault(code: str, message: str) -> Response:
    return Response(build_fault(code, message), status_code=500, media_type=XML_MEDIA_TYPE)


def _json_body(operation: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The REST body of ``operation``: ``service`` comes from the operation, never from the XML."""
    given = payload.pop("service", operation)
    if given != operation:
        raise SoapFault("Client", f"element service={given!r} contradicts operation {operation}")
    body: dict[str, Any] = {}
    for key in ("session", "madonvi"):
        if key in payload:
            body[key] = payload.pop(key)
    body["service"] = operation
    body.update(payload)
    return body


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise SoapFault("Client", f"request body of {declared} bytes exceeds {MAX_BODY_BYTES}")
    return await request.body()


def _request_base(request_base: str) -> str:
    return request_base.rstrip("/")


EMPTY_LISTS_HEADER = "x-empty-lists"


def _empty_lists_asked(request: Request, fixed: EmptyLists | None) -> EmptyLists:
    """How this reply writes ``[]``: ``fixed`` when the mock is configured so, else as the client
    asks with ``X-Empty-Lists: nil`` (the adapter does), else as no element, what any SOAP client
    reads (requests are read either way: a nil list element is always ``[]``)."""
    if fixed is not None:
        return fixed
    return "nil" if request.headers.get(EMPTY_LISTS_HEADER, "").strip().lower() == "nil" else "omit"


def soap_router(
    handle: Handle,
    base_url: Callable[[str], str] = _request_base,
    empty_lists: EmptyLists | None = None,
    count: Callable[[str, str], None] | None = None,
) -> APIRouter:
    """Routes ``POST /soap`` (SOAP 1.1 envelopes) and ``GET /soap?wsdl`` on the shared dispatcher;
    ``base_url(request_base)`` is where clients reach the mock (``MockConfig.base_url``);
    ``empty_lists`` how replies write ``[]`` (``None``: as each request asks, see ``_empty_lists_asked``)."""
    router = APIRouter(tags=["soap"])

    @router.get("/soap", summary="The WSDL (GET /soap?wsdl)")
    async def wsdl(request: Request) -> Response:
        if request.url.query.lower() != "wsdl":
            return Response(
                "POST SOAP 1.1 envelopes to /soap; the WSDL is at /soap?wsdl\n",
                status_code=400,
                media_type="text/plain; charset=utf-8",
            )
        return Response(wsdl_for(base_url(str(request.base_url)) + "/soap"), media_type=XML_MEDIA_TYPE)

    @router.post("/soap", summary="SOAP 1.1 endpoint (document/literal; operations as in the WSDL)")
    async def soap(request: Request) -> Response:
        try:
            operation, payload = parse_request(await _read_body(request))
            if operation == "TraCuuThongTinCongDan":
                # the population service lies outside the portal's dispatcher: counted here, so
                # /_admin/stats shows what a client asked of it like any other service
                reply = soap_citizens.lookup(payload)
                if count is not None:
                    count(operation, "ok")
            else:
                body = _json_body(operation, payload)
                endpoint = "share" if operation in SHARE_SERVICES else "integration"
                reply = await handle(endpoint, body, request.headers.get("dstcode"))
        except SoapFault as fault:
            return _fault(fault.code, fault.message)
        except HTTPException:
            raise  # status-level answers of the shared dispatcher (faults, 429) stay HTTP answers
        except Exception as exc:  # never a stack trace on the wire (nor personal data in the log)
            _log.error("SOAP request failed in the dispatcher: %s", type(exc).__name__)
            return _fault("Server", "internal error of the portal; the request may not have been applied")
        try:
            return Response(
                build_response(operation, reply, empty_lists=_empty_lists_asked(request, empty_lists)),
                media_type=XML_MEDIA_TYPE,
            )
        except (ValueError, TypeError) as exc:
            _log.error("SOAP %s reply cannot be written as XML: %s", operation, exc)
            return _fault("Server", f"the {operation} reply cannot be written as XML")

    return router
