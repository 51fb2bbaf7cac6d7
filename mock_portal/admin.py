"""The admin API (``/_admin/...``): what arrived, portal-side actions, faults. Not part of the
real contract; it is how tests and demos look inside the mock and play the citizen's part."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from .faults import FaultInjector, FaultSpec
from .payments import PaymentPlatform
from .portal import Portal
from .rest import json_response
from .sessions import Sessions
from .stats import Stats


def _problem(status: int, message: str) -> Response:
    return json_response({"error": message}, status=status)


async def _json_body(request: Request, default: Any = None) -> Any:
    raw = await request.body()
    if not raw.strip():
        return default
    return json.loads(raw)


def admin_router(
    portal: Portal, payments: PaymentPlatform, injector: FaultInjector, stats: Stats, sessions: Sessions
) -> APIRouter:
    router = APIRouter(prefix="/_admin", tags=["admin (mock only)"])
    store = portal.store

    @router.get("/dossiers", summary="Stored dossiers, paged, in arrival order")
    async def dossiers(page: int = Query(1, ge=1), size: int = Query(50, ge=1, le=1000)) -> Response:
        total, rows = store.list_dossiers((page - 1) * size, size)
        items = [
            {
                "MaHoSo": code,
                "TrangThaiHoSo": status,
                "writes": writes,
                "history": n_history,
                "created_at": created,
                "updated_at": updated,
            }
            for code, status, writes, created, updated, n_history in rows
        ]
        return json_response({"total": total, "page": page, "size": size, "items": items})

    @router.get("/dossiers/{ma_ho_so}", summary="One stored dossier (wire names), its history and writes")
    async def dossier(ma_ho_so: str) -> Response:
        stored = store.dossier(ma_ho_so)
        if stored is None:
            return _problem(404, f"dossier {ma_ho_so} not stored")
        body = stored["body"]
        body["QuaTrinhXuLy"] = store.history_of(ma_ho_so)
        body["writes"] = stored["writes"]
        body["writes_by_service"] = {
            "DongBoHoSoMC": stored["sync_writes"],
            "CapNhatTienDoHoSoMC": stored["history_writes"],
        }
        body["warnings"] = store.warnings_of(ma_ho_so)
        body["created_at"], body["updated_at"] = stored["created_at"], stored["updated_at"]
        return json_response(body)

    @router.post("/dossiers/{ma_ho_so}/withdraw", summary="The citizen withdraws (status 7, portal side)")
    async def withdraw(ma_ho_so: str) -> Response:
        problem = portal.withdraw(ma_ho_so)
        if problem is None:
            return json_response({"MaHoSo": ma_ho_so, "TrangThaiHoSo": "7"})
        return _problem(404 if "không tồn tại" in problem else 409, problem)

    @router.get("/stats", summary="Requests per service and outcome")
    async def get_stats() -> Response:
        snapshot = stats.snapshot()
        snapshot["sessions"] = len(sessions)
        snapshot["deliveries_in_flight"] = payments.deliverer.busy
        return json_response(snapshot)

    @router.post("/reset", summary="Forget all stored data and counters (sessions too with ?sessions=true)")
    async def reset(sessions_too: bool = Query(False, alias="sessions")) -> Response:
        store.reset()
        stats.reset()
        if sessions_too:
            sessions.clear()
        return json_response({"reset": True})

    @router.post(
        "/portal-dossiers",
        summary="Seed dossiers submitted on the portal (one, a list, or"
        ' {"dossiers": [...]}); promotion notifications are POSTed to --province-url',
    )
    async def seed(request: Request, push: bool = Query(True)) -> Response:
        try:
            body = await _json_body(request)
        except ValueError as exc:
            return _problem(400, f"body is not JSON: {exc}")
        items = body.get("dossiers") if isinstance(body, dict) and "dossiers" in body else body
        items = items if isinstance(items, list) else [items]
        try:
            codes = portal.seed_portal_dossiers(items, push=push)
        except ValueError as exc:
            return _problem(422, str(exc))
        return json_response({"seeded": codes}, status=201)

    @router.get("/portal-dossiers", summary="Seeded portal dossiers with acknowledgement, status and push")
    async def portal_dossiers() -> Response:
        return json_response([store.portal_dossier(code) for code in store.list_portal_dossiers()])

    @router.get("/portal-dossiers/{ma_ho_so}")
    async def portal_dossier(ma_ho_so: str) -> Response:
        item = store.portal_dossier(ma_ho_so)
        return (
            json_response(item) if item is not None else _problem(404, f"portal dossier {ma_ho_so} unknown")
        )

    @router.get("/ratings", summary="Satisfaction figures received by DongBoDanhGia, in arrival order")
    async def ratings() -> Response:
        return json_response(store.ratings_all())

    @router.get("/payments/statement", summary="Daily statement (CSV or JSON)")
    async def statement(
        day: str = Query(..., alias="date"), fmt: str = Query("csv", alias="format")
    ) -> Response:
        try:
            date.fromisoformat(day)
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
                raise ValueError(day)
        except ValueError:
            return _problem(400, f"date={day!r}: expected YYYY-MM-DD")
        rows = payments.statement(day)
        if fmt == "json":
            return json_response(rows)
        if fmt != "csv":
            return _problem(400, f"format={fmt!r}: csv or json")
        return Response(
            payments.statement_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f"attachment; filename=statement-{day}.csv"},
        )

    @router.get("/payments", summary="Every payment with its state and callback deliveries")
    async def list_payments() -> Response:
        return json_response(store.payments_all())

    @router.get("/payments/{ref}")
    async def get_payment(ref: str) -> Response:
        item = store.payment(ref)
        return json_response(item) if item is not None else _problem(404, f"payment {ref} unknown")

    async def _settle(ref: str, request: Request, paid: bool) -> Response:
        try:
            options = await _json_body(request, {}) or {}
        except ValueError as exc:
            return _problem(400, f"body is not JSON: {exc}")
        try:
            result = payments.settle(
                ref,
                paid,
                bank=options.get("MaNganHang"),
                duplicate=options.get("duplicate"),
                delay_s=options.get("delay_s"),
                transaction=options.get("MaGiaoDich"),
                when=options.get("ThoiGianGD"),
                info=options.get("ThongTinGiaoDich"),
            )
        except KeyError:
            return _problem(404, f"payment {ref} unknown")
        except ValueError as exc:
            return _problem(409, str(exc))
        return json_response(result)

    @router.post(
        "/payments/{ref}/pay",
        summary="The citizen pays: state 1, signed callback delivered."
        " Optional body {MaNganHang, MaGiaoDich, ThoiGianGD, ThongTinGiaoDich, duplicate, delay_s}",
    )
    async def pay(ref: str, request: Request) -> Response:
        return await _settle(ref, request, True)

    @router.post("/payments/{ref}/fail", summary="The payment fails: state 4, callback with MaLoi != 00")
    async def fail(ref: str, request: Request) -> Response:
        return await _settle(ref, request, False)

    @router.get("/faults", summary="The fault spec in force")
    async def get_faults() -> Response:
        return json_response(injector.spec.model_dump(mode="json"))

    @router.put("/faults", summary="Replace the fault spec (its seed restarts the random stream)")
    async def put_faults(request: Request) -> Response:
        try:
            spec = FaultSpec.model_validate(await _json_body(request, {}))
        except ValueError as exc:
            detail = json.loads(exc.json(include_url=False)) if isinstance(exc, ValidationError) else str(exc)
            return json_response({"error": "invalid fault spec", "detail": detail}, status=422)
        injector.set(spec)
        return json_response(spec.model_dump(mode="json"))

    return router
