"""The REST face: ``/dvcqg/{auth,integration,share}`` and the payment platform's ``/payment/...``.

Bodies are read raw and parsed once (no FastAPI body models): malformed JSON must become a
contract reply, not a 422, and a 100-dossier batch must cost no more than it has to.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from .payments import STATE_NAMES, PaymentPlatform
from .portal import Portal


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=headers,
    )


def statement_response(platform: PaymentPlatform, day: str | None, fmt: str | None) -> Response:
    """The daily statement as CSV (default) or JSON, or a 400 ``{"error": ...}``; shared by
    ``/payment/statement`` (the platform's own) and ``/_admin/payments/statement`` (kept for old callers)."""
    if day is None:
        return json_response({"error": "date is required: ?date=YYYY-MM-DD"}, status=400)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        return json_response({"error": f"date={day!r}: expected YYYY-MM-DD"}, status=400)
    try:
        date.fromisoformat(day)
    except ValueError:
        return json_response({"error": f"date={day!r}: not a calendar date"}, status=400)
    fmt = fmt or "csv"
    if fmt not in ("csv", "json"):
        return json_response({"error": f"format={fmt!r}: csv or json"}, status=400)
    rows = platform.statement(day)
    if fmt == "json":
        return json_response(rows)
    return Response(
        platform.statement_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f"attachment; filename=statement-{day}.csv"},
    )


def _body_doc(example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"example": example}}},
        "parameters": [{"name": "dstcode", "in": "header", "required": True, "schema": {"type": "string"}}],
    }


def portal_router(portal: Portal) -> APIRouter:
    router = APIRouter(tags=["portal (REST)"])

    @router.post(
        "/dvcqg/auth",
        summary="Login: returns an opaque session",
        openapi_extra=_body_doc({"username": "dvcsync", "password": "..."}),
    )
    async def auth(request: Request) -> Response:
        return json_response(
            await portal.handle_bytes("auth", await request.body(), request.headers.get("dstcode"))
        )

    @router.post(
        "/dvcqg/integration",
        summary="Writes and most reads, chosen by the body's service",
        openapi_extra=_body_doc(
            {
                "session": "...",
                "madonvi": "000.00.01.H40",
                "service": "TraCuuHoSo",
                "mahoso": "000.00.01.H40-251120-0001",
            }
        ),
    )
    async def integration(request: Request) -> Response:
        return json_response(
            await portal.handle_bytes("integration", await request.body(), request.headers.get("dstcode"))
        )

    @router.post(
        "/dvcqg/share",
        summary="Catalogue reads (LayDanhSachTTHC, LayDanhMucCoQuan, LayDanhMucLinhVuc)",
        openapi_extra=_body_doc({"session": "...", "madonvi": "000.00.01.H40", "service": "LayDanhSachTTHC"}),
    )
    async def share(request: Request) -> Response:
        return json_response(
            await portal.handle_bytes("share", await request.body(), request.headers.get("dstcode"))
        )

    @router.api_route("/dvcqg/{endpoint}", methods=["GET", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    async def not_post(endpoint: str) -> Response:
        """Every portal call is a POST: anything else gets the contract's error shape, not a bare 405."""
        return json_response(
            {"error_code": "6", "message": f"/dvcqg/{endpoint}: chỉ hỗ trợ phương thức POST"},
            status=405,
            headers={"allow": "POST"},
        )

    return router


def payment_router(platform: PaymentPlatform) -> APIRouter:
    router = APIRouter(tags=["payment platform"])

    @router.post("/payment/init", summary="INIT: create a payment, answers UrlThanhToan")
    async def init(request: Request) -> Response:
        base = platform.config.base_url(str(request.base_url))
        return json_response(platform.init(await request.body(), base))

    @router.post("/payment/query", summary="QUERY: TrangThaiGD 1 paid, 3 pending, 4 failed")
    async def query(request: Request) -> Response:
        return json_response(platform.query(await request.body()))

    @router.post("/payment/bill", summary="GET_BILL: the PDF receipt of a paid payment")
    async def bill(request: Request) -> Response:
        result = platform.bill(await request.body())
        if isinstance(result, bytes):
            return Response(result, media_type="application/pdf")
        return json_response(result)

    @router.get(
        "/payment/statement",
        summary="Daily statement (đối soát): payments by transaction time, settlement or creation"
        " while pending. ?date=YYYY-MM-DD[&format=csv|json]",
    )
    async def statement(
        day: str | None = Query(None, alias="date"), fmt: str | None = Query(None, alias="format")
    ) -> Response:
        return statement_response(platform, day, fmt)

    @router.get("/payment/pay/{ref}", response_class=HTMLResponse, summary="The citizen's pay page")
    async def pay_page(ref: str) -> HTMLResponse:
        payment = platform.store.payment(ref)
        if payment is None:
            return HTMLResponse("<h1>Không tìm thấy giao dịch</h1>", status_code=404)
        bill = payment["init_body"].get("ThongTinBienLai") or {}
        state = STATE_NAMES[payment["state"]]
        buttons = (
            ""
            if payment["state"] != "3"
            else (
                "<form method='post'><button name='outcome' value='pay'>Thanh toán</button> "
                "<button name='outcome' value='fail'>Hủy / thất bại</button></form>"
            )
        )
        return HTMLResponse(
            "<!doctype html><meta charset='utf-8'><title>Cổng thanh toán (giả lập)</title>"
            f"<h1>Thanh toán hồ sơ {html.escape(str(bill.get('MaHoSo') or ''))}</h1>"
            f"<p>Mã tham chiếu: {html.escape(ref)}</p><p>Số tiền: {payment['so_tien']:,} VND</p>"
            f"<p>Nội dung: {html.escape(str(payment['init_body'].get('ThongTinGiaoDich', '')))}</p>"
            f"<p>Trạng thái: {state}</p>{buttons}"
        )

    @router.post("/payment/pay/{ref}", response_class=HTMLResponse, summary="The pay page's buttons")
    async def pay_submit(ref: str, request: Request) -> HTMLResponse:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        outcome = (form.get("outcome") or ["pay"])[0]
        try:
            platform.settle(ref, paid=outcome == "pay")
        except KeyError:
            return HTMLResponse("<h1>Không tìm thấy giao dịch</h1>", status_code=404)
        except ValueError as exc:
            return HTMLResponse(f"<h1>{html.escape(str(exc))}</h1>", status_code=409)
        word = "thành công" if outcome == "pay" else "thất bại"
        return HTMLResponse(
            f"<!doctype html><meta charset='utf-8'><h1>Giao dịch {html.escape(ref)}: {word}</h1>"
        )

    return router
