"""The admin API (``/_admin/...``): what arrived, portal-side actions, faults. Not part of the
real contract; it is how tests and demos look inside the mock and play the citizen's part.

The "planted mismatch" routes (PATCH/DELETE of a dossier, a history entry duplicated or dropped,
a payment settled without its callback or with another amount) simulate the portal's and the
platform's own data going wrong, so reconciliation can be tested. They are not client writes:
``writes`` stay what clients did, and each edit is listed in ``admin_edits``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError

from . import replies as r
from .faults import FaultInjector, FaultSpec
from .payments import PaymentPlatform
from .portal import Portal
from .rest import json_response, statement_response
from .sessions import Sessions
from .stats import Stats
from .store import Store

MAX_DELAY_S = 86_400  # a day: later than any test waits, and never an endless sleep
MAX_AMOUNT = 10**15  # far above any fee, well inside SQLite's INTEGER

# The options of /_admin/payments/{ref}/pay and /fail: settle() keyword and JSON type (null = not
# given). Unknown keys are refused: a misspelt {"deliverd": false} must not quietly deliver.
_SETTLE_OPTIONS: dict[str, tuple[str, str]] = {
    "MaNganHang": ("bank", "a string"),
    "MaGiaoDich": ("transaction", "a string"),
    "ThoiGianGD": ("when", "a string"),
    "ThongTinGiaoDich": ("info", "a string"),
    "duplicate": ("duplicate", "true or false"),
    "delay_s": ("delay_s", "a number of seconds from 0 to 86400"),
    "deliver": ("deliver", "true or false"),
}


def _fits(kind: str, value: Any) -> bool:
    if kind == "a string":
        return isinstance(value, str)
    if kind == "true or false":
        return isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_DELAY_S


def _problem(status: int, message: str) -> Response:
    return json_response({"error": message}, status=status)


async def _json_body(request: Request, default: Any = None) -> Any:
    raw = await request.body()
    if not raw.strip():
        return default
    return json.loads(raw)


def _settle_options(body: Any) -> dict[str, Any]:
    """The pay/fail body as ``PaymentPlatform.settle`` keywords; ValueError names a bad key or type."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValueError(f"body must be a JSON object of options, not {type(body).__name__}")
    options: dict[str, Any] = {}
    for key, value in body.items():
        if key not in _SETTLE_OPTIONS:
            raise ValueError(f"unknown option {key!r}: one of {', '.join(_SETTLE_OPTIONS)}")
        name, kind = _SETTLE_OPTIONS[key]
        if value is None:
            continue
        if not _fits(kind, value):
            raise ValueError(f"{key} = {json.dumps(value, ensure_ascii=False)}: expected {kind}")
        options[name] = value
    return options


def _entry_number(n: str) -> int | None:
    """A 1-based history entry number from the path, None when it is not one."""
    return int(n) if re.fullmatch(r"[1-9]\d{0,8}", n) else None


@dataclass(frozen=True)
class _Mock:
    """What the admin handlers act on: one mock's portal, payments, faults, counters and sessions."""

    portal: Portal
    payments: PaymentPlatform
    injector: FaultInjector
    stats: Stats
    sessions: Sessions

    @property
    def store(self) -> Store:
        return self.portal.store


def _mock(request: Request) -> _Mock:
    """The mock this request reached, bound by its ``admin_router`` (several mocks share a process)."""
    mock: _Mock = request.state.mock_admin
    return mock


Mock = Annotated[_Mock, Depends(_mock)]

# The handlers, at module level; admin_router() binds them to one mock under /_admin.
_routes = APIRouter()


def admin_router(
    portal: Portal, payments: PaymentPlatform, injector: FaultInjector, stats: Stats, sessions: Sessions
) -> APIRouter:
    """The admin routes under ``/_admin``, acting on these objects."""
    mock = _Mock(portal, payments, injector, stats, sessions)

    def bind(request: Request) -> None:
        request.state.mock_admin = mock

    router = APIRouter(prefix="/_admin", tags=["admin (mock only)"], dependencies=[Depends(bind)])
    router.include_router(_routes)
    return router


def _dossier_view(store: Store, ma_ho_so: str) -> Response:
    with store.lock:
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
        body["admin_edits"] = store.admin_edits_of("dossier", ma_ho_so)
        body["created_at"], body["updated_at"] = stored["created_at"], stored["updated_at"]
    return json_response(body)


def _payment_view(store: Store, ref: str) -> Response:
    with store.lock:
        item = store.payment(ref)
        if item is None:
            return _problem(404, f"payment {ref} unknown")
        item["admin_edits"] = store.admin_edits_of("payment", ref)
    return json_response(item)


@_routes.get("/dossiers", summary="Stored dossiers, paged, in arrival order")
async def dossiers(mock: Mock, page: int = Query(1, ge=1), size: int = Query(50, ge=1, le=1000)) -> Response:
    total, rows = mock.store.list_dossiers((page - 1) * size, size)
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


@_routes.get(
    "/dossiers/{ma_ho_so}",
    summary="One stored dossier (wire names), its history, client writes and admin edits",
)
async def dossier(ma_ho_so: str, mock: Mock) -> Response:
    return _dossier_view(mock.store, ma_ho_so)


@_routes.patch(
    "/dossiers/{ma_ho_so}",
    summary="Plant a mismatch: replace wire fields of the stored dossier, as a portal operator's edit"
    ' would (e.g. {"TrangThaiHoSo": "5"}; null removes a field). Not a client write',
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"example": {"NgayHenTra": "20261201170000"}}},
        }
    },
)
async def patch_dossier(ma_ho_so: str, request: Request, mock: Mock) -> Response:
    try:
        fields = await _json_body(request)
    except ValueError as exc:
        return _problem(400, f"body is not JSON: {exc}")
    try:
        mock.portal.admin_patch(ma_ho_so, fields)
    except LookupError as exc:
        return _problem(404, str(exc))
    except ValueError as exc:
        return _problem(400, str(exc))
    return _dossier_view(mock.store, ma_ho_so)


@_routes.delete(
    "/dossiers/{ma_ho_so}",
    summary="Plant a mismatch: the portal loses the dossier and its history (TraCuuHoSo finds"
    " nothing, an update is refused as unknown, a create succeeds again)",
)
async def delete_dossier(ma_ho_so: str, mock: Mock) -> Response:
    try:
        lost = mock.portal.admin_delete(ma_ho_so)
    except LookupError as exc:
        return _problem(404, str(exc))
    return json_response(
        {"MaHoSo": ma_ho_so, "deleted": True, **{k: v for k, v in lost.items() if k != "action"}}
    )


async def _history_edit(mock: _Mock, ma_ho_so: str, n: str, duplicate: bool) -> Response:
    number = _entry_number(n)
    if number is None:
        return _problem(400, f"history entry {n!r}: expected a number from 1 (stored order)")
    portal = mock.portal
    try:
        (portal.admin_duplicate_history if duplicate else portal.admin_drop_history)(ma_ho_so, number)
    except LookupError as exc:
        return _problem(404, str(exc))
    return _dossier_view(mock.store, ma_ho_so)


@_routes.post(
    "/dossiers/{ma_ho_so}/history/{n}/duplicate",
    summary="Plant a mismatch: history entry n (1-based, stored order) stored again, appended last,"
    " as a blind re-send after a lost answer. Not a client write",
)
async def duplicate_history(ma_ho_so: str, n: str, mock: Mock) -> Response:
    return await _history_edit(mock, ma_ho_so, n, duplicate=True)


@_routes.delete(
    "/dossiers/{ma_ho_so}/history/{n}",
    summary="Plant a mismatch: the portal loses history entry n (1-based, stored order)",
)
async def drop_history(ma_ho_so: str, n: str, mock: Mock) -> Response:
    return await _history_edit(mock, ma_ho_so, n, duplicate=False)


@_routes.post("/dossiers/{ma_ho_so}/withdraw", summary="The citizen withdraws (status 7, portal side)")
async def withdraw(ma_ho_so: str, mock: Mock) -> Response:
    problem = mock.portal.withdraw(ma_ho_so)
    if problem is None:
        return json_response({"MaHoSo": ma_ho_so, "TrangThaiHoSo": "7"})
    return _problem(404 if "không tồn tại" in problem else 409, problem)


@_routes.get("/stats", summary="Requests per service and outcome")
async def get_stats(mock: Mock) -> Response:
    snapshot = mock.stats.snapshot()
    snapshot["sessions"] = len(mock.sessions)
    snapshot["deliveries_in_flight"] = mock.payments.deliverer.busy
    return json_response(snapshot)


@_routes.post("/reset", summary="Forget all stored data and counters (sessions too with ?sessions=true)")
async def reset(mock: Mock, sessions_too: bool = Query(False, alias="sessions")) -> Response:
    mock.store.reset()
    mock.stats.reset()
    if sessions_too:
        mock.sessions.clear()
    return json_response({"reset": True})


@_routes.post(
    "/portal-dossiers",
    summary="Seed dossiers submitted on the portal (one, a list, or"
    ' {"dossiers": [...]}); promotion notifications are POSTed to --province-url',
)
async def seed(request: Request, mock: Mock, push: bool = Query(True)) -> Response:
    try:
        body = await _json_body(request)
    except ValueError as exc:
        return _problem(400, f"body is not JSON: {exc}")
    items = body.get("dossiers") if isinstance(body, dict) and "dossiers" in body else body
    items = items if isinstance(items, list) else [items]
    try:
        codes = mock.portal.seed_portal_dossiers(items, push=push)
    except ValueError as exc:
        return _problem(422, str(exc))
    return json_response({"seeded": codes}, status=201)


@_routes.get("/portal-dossiers", summary="Seeded portal dossiers with acknowledgement, status and push")
async def portal_dossiers(mock: Mock) -> Response:
    store = mock.store
    return json_response([store.portal_dossier(code) for code in store.list_portal_dossiers()])


@_routes.get("/portal-dossiers/{ma_ho_so}")
async def portal_dossier(ma_ho_so: str, mock: Mock) -> Response:
    item = mock.store.portal_dossier(ma_ho_so)
    return json_response(item) if item is not None else _problem(404, f"portal dossier {ma_ho_so} unknown")


@_routes.get("/ratings", summary="Satisfaction figures received by DongBoDanhGia, in arrival order")
async def ratings(mock: Mock) -> Response:
    return json_response(mock.store.ratings_all())


@_routes.get(
    "/payments/statement",
    summary="Daily statement (CSV or JSON); the same as GET /payment/statement, kept for old callers",
)
async def statement(
    mock: Mock, day: str | None = Query(None, alias="date"), fmt: str | None = Query(None, alias="format")
) -> Response:
    return statement_response(mock.payments, day, fmt)


@_routes.get("/payments", summary="Every payment with its state and callback deliveries")
async def list_payments(mock: Mock) -> Response:
    return json_response(mock.store.payments_all())


@_routes.get("/payments/{ref}", summary="One payment: state, callback deliveries, admin edits")
async def get_payment(ref: str, mock: Mock) -> Response:
    return _payment_view(mock.store, ref)


@_routes.patch(
    "/payments/{ref}",
    summary='Plant a mismatch: the platform records another amount ({"so_tien": N}), shown by the'
    " statement, QUERY and later callbacks. Not a client request",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"example": {"so_tien": 9000}}}}
    },
)
async def patch_payment(ref: str, request: Request, mock: Mock) -> Response:
    try:
        body = await _json_body(request)
    except ValueError as exc:
        return _problem(400, f"body is not JSON: {exc}")
    if not isinstance(body, dict) or set(body) != {"so_tien"}:
        return _problem(400, 'body must be {"so_tien": N} (the only field that can be edited)')
    amount = body["so_tien"]
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT:
        return _problem(
            400, f"so_tien = {json.dumps(amount)}: expected a whole number of VND from 0 to {MAX_AMOUNT}"
        )
    try:
        mock.payments.set_amount(ref, amount)
    except KeyError:
        return _problem(404, f"payment {ref} unknown")
    return _payment_view(mock.store, ref)


async def _settle(mock: _Mock, ref: str, request: Request, paid: bool) -> Response:
    try:
        body = await _json_body(request, {})
    except ValueError as exc:
        return _problem(400, f"body is not JSON: {exc}")
    try:
        options = _settle_options(body)
    except ValueError as exc:
        return _problem(400, str(exc))
    try:
        result = mock.payments.settle(ref, paid, **options)
    except KeyError:
        return _problem(404, f"payment {ref} unknown")
    except ValidationError as exc:  # a callback field the contract refuses; nothing was settled
        return _problem(400, f"payment {ref}: {r.describe(exc)}")
    except ValueError as exc:
        return _problem(409, str(exc))
    return json_response(result)


@_routes.post(
    "/payments/{ref}/pay",
    summary="The citizen pays: state 1, signed callback delivered. Optional body {MaNganHang,"
    " MaGiaoDich, ThoiGianGD, ThongTinGiaoDich, duplicate, delay_s, deliver}; deliver=false settles"
    " without any callback (plants 'paid on the platform, the province never heard')",
)
async def pay(ref: str, request: Request, mock: Mock) -> Response:
    return await _settle(mock, ref, request, True)


@_routes.post(
    "/payments/{ref}/fail",
    summary="The payment fails: state 4, callback with MaLoi != 00 (same optional body as /pay)",
)
async def fail(ref: str, request: Request, mock: Mock) -> Response:
    return await _settle(mock, ref, request, False)


@_routes.get("/faults", summary="The fault spec in force")
async def get_faults(mock: Mock) -> Response:
    return json_response(mock.injector.spec.model_dump(mode="json"))


@_routes.put("/faults", summary="Replace the fault spec (its seed restarts the random stream)")
async def put_faults(request: Request, mock: Mock) -> Response:
    try:
        spec = FaultSpec.model_validate(await _json_body(request, {}))
    except ValueError as exc:
        detail = json.loads(exc.json(include_url=False)) if isinstance(exc, ValidationError) else str(exc)
        return json_response({"error": "invalid fault spec", "detail": detail}, status=422)
    mock.injector.set(spec)
    return json_response(spec.model_dump(mode="json"))
