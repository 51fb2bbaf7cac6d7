"""What came from the portal's side: dossiers submitted there that the province has not taken in,
and withdrawals that contradict the province's processing (recorded by the pull as conflicts).

Both are read from the state (the inbox and the conflict table, a few rows); with a portal check,
the portal's own list of dossiers still waiting to be acknowledged is read too, which also finds
the ones the pull never received (pull stopped, or failing before the inbox).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dvcsync.portal import PortalClient
from dvcsync.state import InboxKind, StateStore
from dvcsync.state.reads import conflicts_on, portal_dossiers_not_taken_in, received_keys
from dvcsync.sync.payment_ledger import wire_to_local_iso

from .period import Period, local_iso
from .workbook import WorkBook

LIST_PAGE = 100
MAX_PAGES = 1000


def _wire_local(value: Any) -> str | None:
    return wire_to_local_iso(str(value or ""))


def _summary(payload: str) -> dict[str, Any]:
    """The dossier's codes and dates from a received body: never the citizen's data."""
    try:
        body = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: body.get(k) for k in ("MaHoSo", "MaTTHC", "NgayNopHoSo", "TrangThaiHoSo") if body.get(k)}


def check_inbox(store: StateStore, book: WorkBook, period: Period) -> dict[str, int]:
    counts = {"portal_dossier_not_taken_in": 0, "withdrawal_conflict": 0, "history_portal_only": 0}
    with store.reader.connect() as conn:
        for key, state, error, payload, received_at in portal_dossiers_not_taken_in(conn):
            received = local_iso(received_at)
            if not period.contains(received):
                continue
            counts["portal_dossier_not_taken_in"] += 1
            book.finding(
                "portal_dossier_not_taken_in",
                key,
                None,
                {"inbox_state": state, "error": error},
                _summary(payload),
                received,
            )
        for key, mine, theirs, note, detected in conflicts_on(conn, "TrangThaiHoSo"):
            when = local_iso(detected)
            if not period.contains(when):
                continue
            counts["withdrawal_conflict"] += 1
            book.finding(
                "withdrawal_conflict",
                key,
                {"status": mine},
                {"note": note},
                {"TrangThaiHoSo": theirs},
                when,
            )
        # read back at first contact (adoption, a new state): entries the portal holds and the
        # province does not, kept on the portal (it never removes one), never sent again
        for key, _mine, theirs, note, detected in conflicts_on(conn, "QuaTrinhXuLy"):
            when = local_iso(detected)
            if not (period.contains(when) or period.contains(_entry_day(theirs))):
                continue
            counts["history_portal_only"] += 1
            book.finding("history_portal_only", key, None, {"note": note}, {"QuaTrinhXuLy": theirs}, when)
    book.flush()
    return counts


def _entry_day(described: str | None) -> str | None:
    """The day of a described history entry (``ThoiDiemXuLy`` yyyyMMdd…) as ISO, if readable."""
    try:
        moment = str(json.loads(described or "{}").get("ThoiDiemXuLy", ""))
    except (ValueError, AttributeError):
        return None
    if len(moment) < 8 or not moment[:8].isdigit():
        return None
    return f"{moment[:4]}-{moment[4:6]}-{moment[6:8]}"


async def check_listing(
    client: PortalClient,
    store: StateStore,
    book: WorkBook,
    period: Period,
    held: Callable[[list[str]], set[str]],
) -> int:
    """Dossiers submitted on the portal in the period, listed as not yet acknowledged, that
    dvcsync never received and the province does not hold (``held``: the codes it has)."""
    listed: list[dict[str, Any]] = []
    for page in range(1, MAX_PAGES + 1):
        reply = await client.call(
            "DanhSachHoSo", {"trang": str(page), "sobanghi": str(LIST_PAGE)}, typed=False
        )
        if not reply.ok:
            break
        items = [i for i in reply.result or [] if isinstance(i, dict)]
        listed.extend(items)
        if len(items) < LIST_PAGE:
            break
    codes = sorted(
        {
            str(i.get("MaHoSo"))
            for i in listed
            if i.get("MaHoSo") and period.contains(_wire_local(i.get("NgayNopHoSo")))
        }
    )
    if not codes:
        return 0
    codes = sorted(set(codes) - held(codes))
    with store.reader.connect() as conn:
        known = received_keys(conn, InboxKind.PORTAL_DOSSIER, codes)
    found = 0
    by_code = {str(i.get("MaHoSo")): i for i in listed}
    for code in codes:
        if code in known:
            continue  # received: its inbox state says whether it was taken in (check_inbox)
        found += 1
        body = by_code[code]
        book.finding(
            "portal_dossier_not_taken_in",
            code,
            None,
            {"inbox_state": "not received"},
            {k: body.get(k) for k in ("MaHoSo", "MaTTHC", "NgayNopHoSo") if body.get(k)},
            _wire_local(body.get("NgayNopHoSo")),
        )
    book.flush()
    return found


__all__ = ["check_inbox", "check_listing"]
