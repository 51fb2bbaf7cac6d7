"""The inbound application: what the national side calls on the province.

Every request has passed ``AccessGuard`` (caller, credential, body size) before it gets here.
Bodies are then parsed as untrusted (depth, encoding, control characters) and validated against
the contract's model before anything is stored: a refusal stores nothing and names the field.
Accepted events go to the inbox first (deduplicated by their natural key), then to the province
through the sink, exactly once. No request ever gets a stack trace.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from dvcsync import metrics
from dvcsync.config import Settings
from dvcsync.contract import ThongBaoKhuyenMai, UntrustedInput, check_strings, examples, parse_json
from dvcsync.contract.openapi import Body, attach
from dvcsync.contract.payment import BillLookupReply, BillLookupRequest, CallbackReply, PaymentCallback
from dvcsync.contract.portal import ProvinceAnswer
from dvcsync.mapping import CompiledMapping, MappingSet
from dvcsync.province.payments import PaymentLedger
from dvcsync.province.schema import load_schema
from dvcsync.province.sink import SqlSink
from dvcsync.province.source import SqlSource, make_engine
from dvcsync.state import Inbox, StateStore
from dvcsync.sync.attachments import AttachmentStore, documents_dir
from dvcsync.sync.payment_inbound import REFUSED, BillError, handle_bill_lookup, handle_callback
from dvcsync.sync.take_in import TakeIn
from dvcsync.tenants import ensure_schema

from ._access import BILL_PATH, CALLBACK_PATH, AccessGuard
from ._refusals import RefusalCollector
from ._serve import DROPPED
from ._tenants import TenantRouter

log = logging.getLogger(__name__)

PROMOTION_MAPPING = "inbound_promotion"
RECEIPT_MAPPING = "payment_receipt"
RECEIPT_AFTER_MAPPING = "payment_receipt_after"
PORTAL_DOSSIER_PATH = "/inbound/dvcqg/hoso"

# What the access guard (and a busy province) may answer instead of the route: in the path's own
# contract shape (``MaLoi`` 99, an empty bill, ``error_code`` -1), never a stack trace.
GUARD_ANSWERS = {
    401: "No or a wrong credential where the path group asks one ([server] token_file, mutual TLS);"
    " WWW-Authenticate: Bearer",
    403: "The caller's address is not in the path group's [server] allow",
    503: "Busy (max_requests_in_flight, the tenant's share or rate), or the province cannot take it now;"
    " Retry-After says when to try again",
}
INBOUND_ANSWERS = {
    **GUARD_ANSWERS,
    413: "The body is larger than [server] max_body_bytes (or declares so); nothing is read or stored",
}
INBOUND_BODIES = {
    ("post", PORTAL_DOSSIER_PATH): Body(
        ThongBaoKhuyenMai, examples.PROMOTION, "A promotion notification", INBOUND_ANSWERS, ProvinceAnswer
    ),
    ("post", CALLBACK_PATH): Body(
        PaymentCallback,
        examples.PAYMENT_CALLBACK,
        "A paid result (CONFIRM, MaLoi 00)",
        INBOUND_ANSWERS,
        CallbackReply,
    ),
    ("post", BILL_PATH): Body(
        BillLookupRequest, examples.BILL_LOOKUP, "The bill of a dossier", INBOUND_ANSWERS, BillLookupReply
    ),
}
"""The inbound routes' request bodies, published in ``/openapi.json`` (dvcsync.contract.openapi)."""


def create_server_app(settings: Settings, mappings: MappingSet, store: StateStore | None = None) -> FastAPI:
    """The inbound application of a deployment without tenants: the inbound paths, ``/healthz``,
    ``/readyz``, ``/metrics`` and ``/docs``, all behind the access guard."""
    app = _inbound_app(settings, mappings, store)
    refused: Counter[tuple[str, int]] = Counter()
    store_engine, sink_engine = app.state.engines
    _monitoring(app, {"": store_engine}, {"state": store_engine, "province": sink_engine}, refused)
    app.add_middleware(AccessGuard, settings=settings.server, refused=refused)
    return app


def create_tenants_app(settings: Settings, tenants: Mapping[str, tuple[Settings, MappingSet]]) -> FastAPI:
    """One inbound server for several tenants: each tenant's inbound application (its own
    payment secret, mappings, state and province database) under ``/t/<code>/``; ``/healthz``,
    ``/readyz``, ``/metrics`` (``?tenant=<code>`` for one) and ``/docs`` at the root. Unprefixed
    inbound paths answer 404 in the contract's shape. The access guard covers every path, with
    each tenant's ``[tenants.<code>.server]`` caller rules on its own paths."""
    apps = {code: _inbound_app(own, own_mappings) for code, (own, own_mappings) in tenants.items()}
    app = FastAPIOffline(title="dvcsync inbound (tenants)", version="1", docs_url="/docs")
    refused: Counter[tuple[str, int]] = Counter()
    states = {code: sub.state.engines[0] for code, sub in apps.items()}
    ready = {
        f"{code}.{name}": engine
        for code, sub in apps.items()
        for name, engine in zip(("state", "province"), sub.state.engines, strict=True)
    }
    _monitoring(app, states, ready, refused)
    app.add_middleware(TenantRouter, tenants=apps)
    app.add_middleware(
        AccessGuard,
        settings=settings.server,
        refused=refused,
        tenants={code: own.server for code, (own, _) in tenants.items()},
    )
    app.state.engines = tuple(engine for sub in apps.values() for engine in sub.state.engines)
    return app


@dataclass(frozen=True)
class _Inbound:
    """What one tenant's inbound handlers act on (``app.state.inbound`` of its application)."""

    settings: Settings
    inbox: Inbox
    ledger: PaymentLedger
    take_in: TakeIn | None
    receipt: CompiledMapping | None
    receipt_after: CompiledMapping | None
    receipt_source: SqlSource | None
    max_depth: int


def _inbound(request: Request) -> _Inbound:
    """The tenant this request reached: its own application's (the tenant router mounts one each)."""
    inbound: _Inbound = request.app.state.inbound
    return inbound


def _inbound_app(settings: Settings, mappings: MappingSet, store: StateStore | None = None) -> FastAPI:
    """The inbound paths of one tenant (or of a deployment without tenants), without the guard
    and the monitoring paths; ``app.state.engines`` is (state, province), for whoever runs it to
    dispose of."""
    if store is None:
        ensure_schema(settings.state.url)  # a tenant's own PostgreSQL schema, before migrations
        store = StateStore(settings.state.url)
    store.prepare()
    sink_engine = make_engine(settings.province.effective_sink_url)
    # /docs with its scripts served from here (a province's server often has no Internet access);
    # they live under /static-offline-docs, in the monitoring group like /docs itself.
    app = FastAPIOffline(title="dvcsync inbound", version="1", docs_url="/docs")
    attach(app, INBOUND_BODIES)
    app.add_exception_handler(Exception, _unexpected)
    app.add_api_route(
        PORTAL_DOSSIER_PATH,
        portal_dossier,
        methods=["POST"],
        summary="A dossier submitted on the portal, pushed by the portal",
    )
    app.add_api_route(
        CALLBACK_PATH,
        payment_callback,
        methods=["POST"],
        summary="Payment result callback: MaLoi 00 accepted (a paid result applied once), 99 refused",
    )
    app.add_api_route(
        BILL_PATH,
        bill_lookup,
        methods=["POST"],
        summary="Bill look-up: error_code 1 with the bill, 0 nothing to pay, -1 unknown dossier",
    )
    app.state.inbound = _wire(settings, mappings, Inbox(store), sink_engine)
    app.state.engines = (store.engine, sink_engine)  # disposed by whoever runs the server
    return app


def _wire(settings: Settings, mappings: MappingSet, inbox: Inbox, sink_engine: Engine) -> _Inbound:
    """The sink, ledger, take-in and receipt mappings of one tenant's inbound paths."""
    schema = load_schema(mappings.folder)
    # a pushed dossier is found in the province by the portal's code, as the pull finds its own
    sink = SqlSink(sink_engine, schema, key_column=schema.dossiers.portal_code)
    receipt = mappings.get(RECEIPT_MAPPING) if RECEIPT_MAPPING in mappings else None
    receipt_after = mappings.get(RECEIPT_AFTER_MAPPING) if RECEIPT_AFTER_MAPPING in mappings else None
    receipt_spec = mappings.specs[RECEIPT_MAPPING].source if receipt is not None else None
    attachments = AttachmentStore(documents_dir(settings))
    take_in = (
        TakeIn("promotion", inbox, mappings.get(PROMOTION_MAPPING), sink, attachments)
        if PROMOTION_MAPPING in mappings
        else None
    )
    return _Inbound(
        settings=settings,
        inbox=inbox,
        ledger=PaymentLedger(sink_engine, schema),
        take_in=take_in,
        receipt=receipt,
        receipt_after=receipt_after,
        receipt_source=SqlSource(sink_engine, receipt_spec) if receipt_spec is not None else None,
        max_depth=settings.server.max_json_depth,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return JSONResponse({"error_code": -1, "message": "lỗi nội bộ của hệ thống một cửa"}, status_code=500)


async def portal_dossier(request: Request) -> JSONResponse:
    """Answers ``error_code`` 0 created, 1 duplicate (already received), -1 rejected with the
    reason; HTTP 503 when the province cannot take it now (the portal retries)."""
    inbound = _inbound(request)
    raw = await request.body()
    try:
        body = parse_json(raw, max_depth=inbound.max_depth)
        if not isinstance(body, dict):
            raise UntrustedInput("", "nội dung phải là một đối tượng JSON")
        check_strings(body)
        ThongBaoKhuyenMai.model_validate(body)
    except UntrustedInput as exc:
        return _answer(-1, str(exc))
    except ValidationError as exc:
        return _answer(-1, _fields_refused(exc))
    # database work off the event loop
    return await run_in_threadpool(_take_in_promotion, inbound.take_in, body, raw)


def _take_in_promotion(take_in: TakeIn | None, body: dict[str, Any], raw: bytes) -> JSONResponse:
    if take_in is None:
        return _answer(-1, f"không có mapping {PROMOTION_MAPPING}")
    code = str(body["MaHoSo"])
    # a body the province refuses is kept as a digest only: it is the caller's data, not ours
    taken = take_in(code, body, refused_payload=_digest(raw, code))
    if taken.outcome == "created":
        return _answer(0, f"Đã tiếp nhận hồ sơ {code}")
    if taken.outcome == "duplicate":
        return _answer(1, f"Hồ sơ {code} đã được tiếp nhận trước đó")
    if taken.outcome == "rejected":
        return _answer(-1, taken.reason)
    if taken.outcome == "busy":  # replicas: another one is taking the same notification in
        return JSONResponse(
            {"error_code": -1, "message": f"hồ sơ {code} đang được tiếp nhận, gửi lại sau"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse(
        {"error_code": -1, "message": "hệ thống một cửa tạm thời không nhận được hồ sơ"},
        status_code=503,
    )


async def payment_callback(request: Request) -> JSONResponse:
    inbound = _inbound(request)
    raw = await request.body()
    try:
        caller = request.scope.get("dvcsync.caller")
        reply = await run_in_threadpool(
            handle_callback,
            raw,
            inbound.settings.payment,
            inbound.ledger,
            inbound.inbox,
            inbound.max_depth,
            caller,
        )
    except Exception:  # the platform retries until 00: say 99, never a stack trace
        log.exception("payment callback not processed")
        reply = {"MaLoi": REFUSED, "MoTaLoi": "lỗi nội bộ của hệ thống một cửa"}
    return JSONResponse(reply)


async def bill_lookup(request: Request) -> JSONResponse:
    inbound = _inbound(request)
    raw = await request.body()
    receipt, receipt_source = inbound.receipt, inbound.receipt_source
    if receipt is None or receipt_source is None:
        return JSONResponse({"error_code": -1, "message": []})
    try:
        reply = await run_in_threadpool(
            handle_bill_lookup,
            raw,
            inbound.ledger,
            receipt,
            receipt_source,
            inbound.max_depth,
            inbound.receipt_after,
        )
    except BillError as exc:  # the mapping masks personal data in its messages
        log.warning("bill look-up: the bill cannot be built: %s", exc)
        return JSONResponse({"error_code": -1, "message": []}, status_code=500)
    return JSONResponse(reply)


def _monitoring(
    app: FastAPI,
    states: Mapping[str, Engine],
    ready: Mapping[str, Engine],
    refused: Counter[tuple[str, int]],
) -> None:
    """``/healthz``, ``/readyz`` (every engine of ``ready`` answers) and ``/metrics`` (the
    process's metrics, the backlog and the refused bodies of the ``states`` by tenant, the
    guard's and the server's refusals)."""
    scraped = metrics.exposition_registry(
        metrics.StateCollector(states),
        RefusalCollector(states),
        metrics.TallyCollector(
            "dvcsync_inbound_refused",
            "Inbound requests refused by the access guard, by path group and HTTP status.",
            ["group", "status"],
            refused,
        ),
        metrics.TallyCollector(
            "dvcsync_inbound_dropped_connections",
            "Inbound connections closed by the server's limits, by reason (headers, body, connections).",
            ["reason"],
            DROPPED,
        ),
    )

    app.state.monitoring = _Monitoring(states, ready, scraped)
    answers: dict[int | str, dict[str, Any]] = {k: {"description": v} for k, v in GUARD_ANSWERS.items()}
    app.add_api_route("/healthz", healthz, methods=["GET"], summary="The process answers", responses=answers)
    app.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        summary="The state store and the province database answer",
        responses=answers,
    )
    app.add_api_route(
        "/metrics",
        metrics_text,
        methods=["GET"],
        summary="Prometheus metrics: portal requests, cycles, backlog, inbound refusals, the process;"
        " ?tenant=<code> for one tenant's",
        response_class=Response,
        responses={
            **answers,
            200: {"content": {metrics.CONTENT_TYPE: {}}},
            404: {"description": "No such tenant"},
        },
    )


@dataclass(frozen=True)
class _Monitoring:
    """What the monitoring paths read (``app.state.monitoring``): the state engines by tenant, the
    engines that must answer for ``/readyz``, and the registry ``/metrics`` exposes."""

    states: Mapping[str, Engine]
    ready: Mapping[str, Engine]
    scraped: CollectorRegistry


def healthz() -> dict[str, str]:
    return {"status": "ok"}


def readyz(request: Request) -> JSONResponse:
    problems = {}
    for name, engine in request.app.state.monitoring.ready.items():
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means not ready; say which
            problems[name] = type(exc).__name__
    return JSONResponse({"ready": not problems, "problems": problems}, status_code=503 if problems else 200)


def metrics_text(request: Request, tenant: str | None = None) -> Response:
    # a sync route: the backlog queries run in the thread pool, off the event loop
    monitoring: _Monitoring = request.app.state.monitoring
    if tenant is not None and tenant not in monitoring.states:
        return Response("no such tenant\n", status_code=404, media_type="text/plain")
    return Response(metrics.exposition(monitoring.scraped, tenant=tenant), media_type=metrics.CONTENT_TYPE)


def _digest(raw: bytes, code: str) -> dict[str, Any]:
    return {"MaHoSo": code, "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}


def _answer(code: int, message: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _fields_refused(exc: ValidationError) -> str:
    """Which fields are wrong and why, never their values (they may be personal data)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:10]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "nội dung"
        parts.append(f"{where}: {error.get('msg', 'không hợp lệ')}")
    return "trường không hợp lệ: " + "; ".join(parts)
