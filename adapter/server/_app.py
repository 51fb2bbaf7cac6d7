"""The adapter's inbound HTTP server: what the national side calls on the province.

Every event goes to the inbox first (deduplicated by its natural key), then to the province
through the sink, exactly once; answers follow the contract. No request ever gets a stack trace.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from adapter.config import Settings
from adapter.mapping import MappingSet
from adapter.province.sink import SinkError, SqlSink
from adapter.province.source import SqlSource, make_engine
from adapter.state import Inbox, StateStore
from adapter.sync.payment_inbound import REFUSED, BillError, handle_bill_lookup, handle_callback
from adapter.sync.payment_ledger import PaymentLedger

log = logging.getLogger(__name__)

PROMOTION_MAPPING = "inbound_promotion"
RECEIPT_MAPPING = "payment_receipt"


def create_server_app(settings: Settings, mappings: MappingSet, store: StateStore | None = None) -> FastAPI:
    store = store or StateStore(settings.state.url)
    store.upgrade()
    inbox = Inbox(store)
    sink_engine = make_engine(settings.province.effective_sink_url)
    sink = SqlSink(sink_engine)
    promotion = mappings.get(PROMOTION_MAPPING) if PROMOTION_MAPPING in mappings else None
    ledger = PaymentLedger(sink_engine)
    receipt = mappings.get(RECEIPT_MAPPING) if RECEIPT_MAPPING in mappings else None
    receipt_spec = mappings.specs[RECEIPT_MAPPING].source if receipt is not None else None
    receipt_source = SqlSource(sink_engine, receipt_spec) if receipt_spec is not None else None

    app = FastAPI(title="dvcsync inbound", version="1", docs_url="/docs")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"error_code": -1, "message": "lỗi nội bộ của hệ thống một cửa"}, status_code=500)

    @app.post("/inbound/dvcqg/hoso", summary="A dossier submitted on the portal, pushed by the portal")
    async def portal_dossier(request: Request) -> JSONResponse:
        """Answers ``error_code`` 0 created, 1 duplicate (already received), -1 rejected with the
        reason; HTTP 503 when the province cannot take it now (the portal retries)."""
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _answer(-1, "nội dung không phải JSON")
        return await run_in_threadpool(_take_in_promotion, body)  # database work off the event loop

    def _take_in_promotion(body: Any) -> JSONResponse:
        if not isinstance(body, dict) or not body.get("MaHoSo"):
            return _answer(-1, "thiếu MaHoSo hoặc nội dung không phải một đối tượng JSON")
        if promotion is None:
            return _answer(-1, f"không có mapping {PROMOTION_MAPPING}")
        code = str(body["MaHoSo"])
        item = inbox.receive("promotion", code, body)
        if item.state in ("applied", "acknowledged"):
            return _answer(1, f"Hồ sơ {code} đã được tiếp nhận trước đó")
        result = promotion.map(body)
        if not result.ok:
            reason = "; ".join(str(e) for e in result.errors)
            inbox.mark(item.id, "rejected", error=reason)
            return _answer(-1, reason)
        try:
            _, created = sink.create(promotion.spec.output, result.value)
        except SinkError as exc:
            inbox.mark(item.id, "received", error=str(exc))
            log.warning("promotion %s not taken in: %s", code, exc)
            return JSONResponse(
                {"error_code": -1, "message": "hệ thống một cửa tạm thời không nhận được hồ sơ"},
                status_code=503,
            )
        inbox.mark(item.id, "applied", local_key=str(result.value["so_ho_so"]))
        return _answer(
            0 if created else 1, f"Đã tiếp nhận hồ sơ {code}" if created else f"Hồ sơ {code} đã có"
        )

    @app.post(
        "/inbound/payment/dpnhankqthanhtoanhs",
        summary="Payment result callback: MaLoi 00 accepted (a paid result applied once), 99 refused",
    )
    async def payment_callback(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            reply = await run_in_threadpool(handle_callback, raw, settings.payment, ledger, inbox)
        except Exception:  # the platform retries until 00: say 99, never a stack trace
            log.exception("payment callback not processed")
            reply = {"MaLoi": REFUSED, "MoTaLoi": "lỗi nội bộ của hệ thống một cửa"}
        return JSONResponse(reply)

    @app.post(
        "/inbound/payment/dptracuuthanhtoanhs",
        summary="Bill look-up: error_code 1 with the bill, 0 nothing to pay, -1 unknown dossier",
    )
    async def bill_lookup(request: Request) -> JSONResponse:
        raw = await request.body()
        if receipt is None or receipt_source is None:
            return JSONResponse({"error_code": -1, "message": []})
        try:
            reply = await run_in_threadpool(handle_bill_lookup, raw, ledger, receipt, receipt_source)
        except BillError as exc:  # the mapping masks personal data in its messages
            log.warning("bill look-up: the bill cannot be built: %s", exc)
            return JSONResponse({"error_code": -1, "message": []}, status_code=500)
        return JSONResponse(reply)

    @app.get("/healthz", summary="The process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The state store and the province database answer")
    def readyz() -> JSONResponse:
        problems = {}
        for name, engine in (("state", store.engine), ("province", sink_engine)):
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except Exception as exc:  # any failure means not ready; say which
                problems[name] = type(exc).__name__
        return JSONResponse(
            {"ready": not problems, "problems": problems}, status_code=503 if problems else 200
        )

    @app.get(
        "/metrics",
        summary="Prometheus text: outbox backlog, inbox, quarantine",
        response_class=PlainTextResponse,
    )
    def metrics() -> PlainTextResponse:
        lines = ["# TYPE dvcsync_outbox_entries gauge"]
        for key, count in sorted(store.backlog().items()):
            state, kind = key.split(":", 1)
            lines.append(f'dvcsync_outbox_entries{{state="{state}",kind="{kind}"}} {count}')
        lines.append("# TYPE dvcsync_inbox_events gauge")
        for key, count in sorted(inbox.counts().items()):
            kind, state = key.split(":", 1)
            lines.append(f'dvcsync_inbox_events{{kind="{kind}",state="{state}"}} {count}')
        lines.append("# TYPE dvcsync_quarantined_records gauge")
        lines.append(f"dvcsync_quarantined_records {store.count('quarantine')}")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    app.state.engines = (store.engine, sink_engine)  # disposed by whoever runs the server
    return app


def _answer(code: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message})
