"""Generate a sample OpenCPS v2 database: the dossier-management tables of a province running
OpenCPS, filled with N realistic dossiers, for ``dvcsync sample-db --profile opencps``.

Why a second sample: dvcsync claims any one-stop schema is configuration; OpenCPS v2 (open source,
Liferay on MySQL/MariaDB, run by several provinces) is the real schema it is proven on. Tables and
columns are the real ones (see ``schema.py`` for the source file, ``tables.sql`` of
``backend-dossiermgt-service`` in VietOpenCPS/opencps-v2); the values follow what OpenCPS writes,
as read in its DVCQG integration (``DVCQGIntegrationActionImpl``):

- ``opencps_dossier``: ``dossierNo`` (→ MaHoSo), ``dossierStatus``/``dossierSubStatus`` (``new``,
  ``receiving``, ``processing``, ``waiting``, ``paying``, ``denied``, ``cancelled``,
  ``unresolved``, ``releasing``, ``done``; sub-statuses ``<status>_<n>``), ``serviceCode``,
  ``govAgencyCode``, ``applicantIdType`` (``citizen``/``business``), ``online_``, ``viaPostal``
  (2: the result is posted), ``fromViaPostal``, ``originality`` (1 online, 3 at the counter),
  ``submitDate``/``receiveDate``/``dueDate``/``releaseDate``/``finishDate``/``cancellingDate``,
  ``modifiedDate`` (moves whenever the dossier or one of its rows changes). Every dossier has a
  ``referenceUid`` (a UUID); one received from the national portal has ``systemId = 5`` and the
  portal's code as ``referenceUid``, ``dossierNo`` and ``originDossierNo`` (the number the dossier
  had where it came from; empty for the province's own, so it says which dossiers the portal
  owns: province.yaml's ``dossiers.portal_code``). Drafts (created online, never
  submitted) have an empty ``dossierStatus`` and ``dossierNo`` (Liferay stores an unset string as
  empty) and ``submitting = 0``.
- ``opencps_dossieraction``: the history, one row an action (``actionUser``, ``actionName``,
  ``actionNote``, ``stepCode``/``stepName``, ``fromStepCode``, ``createDate``, ``dueDate``,
  ``previousActionId``/``nextActionId``); the dossier's ``dossierActionId`` is the last one.
- ``opencps_paymentfile``: one a fee (``paymentFee`` its name, ``feeAmount`` for a charge,
  ``serviceAmount`` for a fee, ``advanceAmount`` when collected up front, ``paymentAmount``),
  ``paymentStatus`` 0 requested / 2 confirmed, ``paymentMethod`` (``KeyPayDVCQG`` online).
- ``opencps_dossierfile``: ``dossierPartType`` 1 submitted / 2 result, ``dossierPartNo``,
  ``displayName``, ``removed``, ``signCheck`` (a signed digital copy), ``referenceUid``.
- ``opencps_voting``/``opencps_votingresult``: citizens' ratings of returned dossiers, one
  question (``className`` ``dossier``, ``classPK`` the dossierId) and its answer (``selected`` 1
  very satisfied, 2 satisfied, 3 not satisfied; ``createDate`` when), drawn last from a generator
  of their own, as the sample's ratings are, so every other row of a seed stays as it was.
- ``opencps_serviceinfo``/``opencps_serviceinfomapping`` (serviceCode → serviceCodeDVCQG),
  ``opencps_processstep`` and ``opencps_dossierstatusmapping`` (statusCode/subStatusCode →
  statusCodeDVCQG), from which the shipped ``mappings/opencps/codes`` tables are exported.

Deterministic: the same seed and N give the same rows (dates from the seed, never the wall clock).
The lifecycle, names, catalogue and agencies are the sample's (``lifecycle.plan_dossier``,
``names``, ``catalogue``): the same province, run on OpenCPS.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from .. import catalogue, names
from ..calendar import BASE, DAY, DAY_YYMMDD, iso, to_seconds, yymmdd
from ..catalogue import Agency
from ..common import (
    CHUNK,
    COMPANY_FORM,
    LEVEL_WEIGHTS,
    RATED_SHARE,
    RATING_DELAY_DAYS,
    TRANSITION_DAYS,
    TRANSITION_SHARE,
    ProcInfo,
    Route,
    claim,
    prepare_procedures,
    priced_fees,
    publish,
    step_text,
    submissions,
)
from ..lifecycle import (
    APPLICANT,
    CANCELLED,
    DENIED,
    DONE,
    HEAD,
    LEADER,
    NEW,
    NOW,
    ONESTOP,
    ONLINE,
    PAID,
    PAYING,
    POSTAL,
    PROCESSING,
    RECEIVING,
    RELEASING,
    SPECIALIST,
    WAITING,
    Plan,
    plan_dossier,
)
from ..places import REFORM_DAY, Geography, place_of
from ..staff import Staff, staff_for
from .schema import (
    APPLICANT_TYPES,
    COLUMNS,
    INDEXES,
    ORIGINALITY_ONESTOP,
    ORIGINALITY_ONLINE,
    PART_RESULT,
    PART_SUBMITTED,
    PAYMENT_CONFIRMED,
    PAYMENT_REQUESTED,
    STATUS_TEXT,
    STATUSES,
    STEPS,
    SYSTEM_PORTAL,
    UNMAPPED_SUB_STATUSES,
    VIA_POSTAL_NONE,
    VIA_POSTAL_YES,
    VOTING_CHOICES,
    VOTING_CLASS,
    VOTING_CODE,
    VOTING_SUBJECT,
    Step,
    ddl,
)

GROUP_ID, COMPANY_ID, SERVICE_PROCESS_ID = 35417, 20099, 1
CLERK_USER = (20139, "Quản trị hệ thống")
DRAFT_SHARE = 0.08  # online dossiers left as drafts (created, never submitted)
PORTAL_SHARE = 0.4  # online dossiers submitted on the national portal (national code needed)
DOCUMENTS_URL = "https://motcua.h40.example.vn/o/rest/v2/dossiers"
TABLES = (
    "opencps_serviceinfo",
    "opencps_serviceinfomapping",
    "opencps_processstep",
    "opencps_dossierstatusmapping",
    "opencps_dossier",
    "opencps_dossieraction",
    "opencps_paymentfile",
    "opencps_dossierfile",
    "opencps_voting",
    "opencps_votingresult",
    "counter",
)
# OpenCPS's organisations: four of the sample's five (its rows were drawn from these).
_ORGANISATIONS = ("Hội Nông dân", "Hội Liên hiệp Phụ nữ", "Hội Cựu chiến binh", "Đoàn Thanh niên")
_MODELS = {  # Liferay counter names of the ids drawn here
    "opencps_dossier": "org.opencps.dossiermgt.model.Dossier",
    "opencps_dossieraction": "org.opencps.dossiermgt.model.DossierAction",
    "opencps_paymentfile": "org.opencps.dossiermgt.model.PaymentFile",
    "opencps_dossierfile": "org.opencps.dossiermgt.model.DossierFile",
}
_VOTING_MODELS = {
    "opencps_voting": "org.opencps.datamgt.model.Voting",
    "opencps_votingresult": "org.opencps.datamgt.model.VotingResult",
}


@dataclass(frozen=True)
class OpenCPSStats:
    """What ``generate`` wrote: rows per table and the time it took."""

    path: Path
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    @property
    def dossiers(self) -> int:
        return self.rows.get("opencps_dossier", 0)


def dt(ts: int) -> str:
    """``2025-03-04 09:15:00``: a MySQL DATETIME as OpenCPS's database returns it."""
    text = iso(ts)
    return f"{text[:10]} {text[11:]}"


def _opt(ts: int | None) -> str | None:
    return None if ts is None else dt(ts)


def _row(table: str, values: dict[str, Any]) -> tuple[Any, ...]:
    unknown = set(values) - set(COLUMNS[table])
    if unknown:  # a typo would silently write NULL otherwise
        raise KeyError(f"{table} has no column {', '.join(sorted(unknown))}")
    return tuple(values.get(name) for name in COLUMNS[table])


def _step_of(status: int, previous: int, role: int) -> Step:
    if status == PROCESSING:
        if previous == WAITING:
            return STEPS["resumed"]
        if previous == PAYING:
            return STEPS["paid"]
        if role == HEAD:
            return STEPS["review"]
        if role == LEADER:
            return STEPS["sign"]
    return STEPS[STATUSES[status]]


class _Writer:
    def __init__(self, rng: Random, seed: int, infos: list[ProcInfo], geo: Geography) -> None:
        self.rng = rng
        self.ids = Random(f"opencps-uuid:{seed}")
        self.infos = infos
        self.geo = geo
        self.staff: dict[str, Staff] = {k: staff_for(a, seed) for k, a in geo.by_key.items()}
        self.users: dict[str, int] = {}
        self.serials: dict[tuple[str, str], int] = {}
        self.portal_serials: dict[str, int] = {}
        self.next_id = dict.fromkeys(_MODELS, 0)
        self.file_entry = 70_000
        self.reform = (REFORM_DAY - BASE.date()).days
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _MODELS}

    def flush(self, conn: sqlite3.Connection, counts: dict[str, int]) -> None:
        for table, rows in self.rows.items():
            if rows:
                width = len(COLUMNS[table])
                conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)
                counts[table] += len(rows)
                rows.clear()

    def _id(self, table: str) -> int:
        self.next_id[table] += 1
        return self.next_id[table]

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    def _user(self, name: str) -> int:
        return self.users.setdefault(name, 30_101 + len(self.users))

    def _handler(self, info: ProcInfo, day_no: int) -> Agency:
        rng = self.rng
        day = BASE.date() + timedelta(days=day_no)
        agency = self.geo.handler(rng, info.proc.cap_thuc_hien, info.proc.co_quan, day)
        if (
            agency.cap == "xa"
            and agency.valid_to is None
            and self.reform <= day_no < self.reform + TRANSITION_DAYS
            and rng.random() < TRANSITION_SHARE
        ):
            agency = self.geo.predecessor(rng, agency)  # the clerk still picked the pre-merger commune
        return agency

    def dossier(self, submitted: int, arrival: int, proc_index: int, channel: int) -> None:
        rng = self.rng
        info = self.infos[proc_index]
        proc = info.proc
        day_no = submitted // DAY
        agency = self._handler(info, day_no)
        staff = self.staff[agency.ma_don_vi]
        home = self.geo.home(rng, agency, BASE.date() + timedelta(days=day_no))
        online = channel == ONLINE
        draft = online and rng.random() < DRAFT_SHARE
        applicant = self._applicant(proc, home, submitted, online)
        fees, prepaid, postpaid = priced_fees(rng, proc)
        dossier_id = self._id("opencps_dossier")
        reference = self._uuid()
        created = submitted - 300 - int(rng.random() * 3 * 3600) if online else submitted
        base = {"groupId": GROUP_ID, "companyId": COMPANY_ID}
        if draft:
            self._draft(dossier_id, reference, base, info, agency, applicant, created)
            return
        plan = plan_dossier(
            rng,
            channel,
            submitted,
            arrival,
            proc.so_ngay_xu_ly,
            prepaid if online else 0,
            postpaid,
            info.needs_paying,
        )
        final = plan.steps[-1][0]
        portal, serial, number = self._identity(agency, proc, DAY_YYMMDD[day_no], online)
        if portal:
            reference = number
        by_post = (channel == POSTAL and rng.random() < 0.8) or (online and rng.random() < 0.12)
        route = Route(channel, "dvcqg" if portal else "mot_cua", by_post)
        history = self._actions(dossier_id, base, plan, staff, proc, applicant, route)
        latest = self._payment_files(dossier_id, base, agency, fees, plan, online)
        self._submitted_files(dossier_id, info, plan, base)
        self._dossier_row(
            dossier_id,
            reference,
            base,
            proc,
            agency,
            applicant,
            created,
            latest,
            status=STATUSES[final],
            sub=history.last_step.sub_status,
            extra={
                "dossierNo": number,
                "submitting": 1,
                "online_": int(online),
                "originality": ORIGINALITY_ONLINE if online else ORIGINALITY_ONESTOP,
                "systemId": SYSTEM_PORTAL if portal else 0,
                "originDossierNo": number if portal else None,  # the portal's code: only its own
                "fromViaPostal": int(channel == POSTAL),
                "viaPostal": VIA_POSTAL_YES if by_post else VIA_POSTAL_NONE,
                **(_postal(applicant) if by_post else {}),
                "submitDate": dt(submitted if online else arrival),
                "receiveDate": _opt(plan.received),
                "dueDate": _opt(plan.due),
                "processDate": _opt(history.processed),
                "cancellingDate": _opt(history.cancelled_at),
                "releaseDate": _opt(plan.finished) if final in (RELEASING, DONE) else None,
                "finishDate": _opt(plan.returned),
                "dossierActionId": history.last_id,
                "counter": serial,
                "dossierCounter": f"{serial:04d}",
                "durationCount": float(proc.so_ngay_xu_ly),
                "durationUnit": 0,
            },
        )

    def _submitted_files(self, dossier_id: int, info: ProcInfo, plan: Plan, base: dict[str, Any]) -> None:
        """The files of a submitted dossier: a supplement replaces one, the result comes last."""
        rng = self.rng
        comps = [c for c in info.components if not c[3] or rng.random() < 0.5]
        replaced = int(rng.random() * len(comps)) if plan.supplemented and comps else -1
        self._files(
            dossier_id,
            info,
            comps,
            replaced,
            rng.random() < 0.6,
            plan.steps[-1][0] in (RELEASING, DONE),
            plan.steps[0][1],
            base,
        )

    def _applicant(self, proc: catalogue.Procedure, home: Agency, submitted: int, online: bool) -> _Applicant:
        """The applicant (OpenCPS knows citizens and businesses only) and the contact details."""
        rng = self.rng
        owner_type = proc.doi_tuong
        if owner_type == "doanh_nghiep" and rng.random() < 0.08:
            owner_type = "cong_dan"
        who = names.person(rng, 1955, 2004)
        id_date: str | None = None
        if owner_type == "cong_dan":
            applicant = who.full_name
            id_number: str | None = names.citizen_id(rng, who, rng.random() < 0.93)
            issued = BASE + timedelta(seconds=submitted - (400 + int(rng.random() * 3000)) * DAY)
            id_date = f"{issued:%Y-%m-%d} 00:00:00"
            email = names.personal_email(rng, who) if rng.random() < (0.75 if online else 0.35) else None
        elif owner_type == "doanh_nghiep":
            company = names.business(rng, COMPANY_FORM.get(proc.ma_thu_tuc))
            applicant, id_number = company.name, company.tax_code
            email = names.business_email(rng, company) if rng.random() < 0.85 else None
        else:
            short = home.ten_don_vi.removeprefix("Ủy ban nhân dân ").split(",")[0]
            applicant = f"{_ORGANISATIONS[int(rng.random() * len(_ORGANISATIONS))]} {short}"
            id_number, email = None, None
        place = place_of(home)
        phone = names.phone(rng) if rng.random() < 0.95 else None
        address = names.street_address(rng, place)
        return _Applicant(
            owner_type,
            applicant,
            who.full_name,
            id_number,
            id_date,
            address,
            place,
            phone,
            email,
            note=f"{proc.ten_thu_tuc} - {applicant}",
        )

    def _draft(
        self,
        dossier_id: int,
        reference: str,
        base: dict[str, Any],
        info: ProcInfo,
        agency: Agency,
        applicant: _Applicant,
        created: int,
    ) -> None:
        """A dossier created online and never submitted: its first files and the empty record."""
        self._files(
            dossier_id,
            info,
            [c for c in info.components if not c[3]][:2],
            -1,
            False,
            False,
            created,
            base,
        )
        last_change = created + int(self.rng.random() * 2 * DAY)
        self._dossier_row(
            dossier_id,
            reference,
            base,
            info.proc,
            agency,
            applicant,
            created,
            last_change,
            status="",
            sub=None,
            extra={"dossierNo": "", "submitting": 0, "online_": 1, "originality": ORIGINALITY_ONLINE},
        )

    def _identity(
        self, agency: Agency, proc: catalogue.Procedure, yymmdd_: str, online: bool
    ) -> tuple[bool, int, str]:
        """Received from the portal, the day's serial, and the number: the local one, or the
        portal's code for a dossier received from it."""
        portal = online and self.rng.random() < PORTAL_SHARE and proc.ma_tthc_qg is not None
        if portal:
            serial = self.portal_serials.get(yymmdd_, 0) + 1
            self.portal_serials[yymmdd_] = serial
            return True, serial, f"G22.99-{yymmdd_}-{serial:06d}"
        serial = self.serials.get((agency.ma_qg, yymmdd_), 0) + 1
        self.serials[(agency.ma_qg, yymmdd_)] = serial
        return False, serial, f"{agency.ma_qg}-{yymmdd_}-{serial:04d}"

    def _actions(
        self,
        dossier_id: int,
        base: dict[str, Any],
        plan: Plan,
        staff: Staff,
        proc: catalogue.Procedure,
        applicant: _Applicant,
        route: Route,
    ) -> _History:
        """The history rows, one an action, each linked to the previous and the next."""
        rng = self.rng
        specialist = staff.specialists[int(rng.random() * len(staff.specialists))]
        leader = staff.leaders[0][0] if rng.random() < 0.75 else staff.leaders[1][0]
        head = staff.heads[int(rng.random() * len(staff.heads))] if staff.heads else staff.leaders[0][0]
        division = staff.division(proc.ma_linh_vuc)
        due = _opt(plan.due)
        previous_status, previous_step = -1, None
        action_id = 0
        actions: list[dict[str, Any]] = []
        processed: int | None = None
        cancelled_at: int | None = None
        for status, moment, role, reason in plan.steps:
            if role == APPLICANT:
                actor = applicant.submitter if applicant.kind == "cong_dan" else applicant.name
            elif role == ONESTOP:
                actor = staff.onestop[int(rng.random() * len(staff.onestop))]
            else:
                actor = {SPECIALIST: specialist, HEAD: head}.get(role, leader)
            step = _step_of(status, previous_status, role)
            text = step_text(
                status, previous_status, role, route.channel, route.source, division, route.by_post, reason
            )
            if status == PROCESSING and processed is None:
                processed = moment
            if status == CANCELLED:
                cancelled_at = moment
            previous_id, action_id = action_id, self._id("opencps_dossieraction")
            if actions:
                actions[-1]["nextActionId"] = action_id
            actions.append(
                {
                    "uuid_": self._uuid(),
                    "dossierActionId": action_id,
                    **base,
                    "userId": self._user(actor),
                    "userName": actor,
                    "dossierId": dossier_id,
                    "previousActionId": previous_id,
                    "actionUser": actor[:50],
                    "actionNote": text,
                    "rollbackable": int(status in (RECEIVING, PROCESSING)),
                    "dueDate": due if status not in (NEW, DENIED) else None,
                    **_action_columns(step, previous_step, moment),
                }
            )
            previous_status, previous_step = status, step
        for values in actions:
            self.rows["opencps_dossieraction"].append(_row("opencps_dossieraction", values))
        assert previous_step is not None
        return _History(action_id, previous_step, processed, cancelled_at)

    def _payment_files(
        self,
        dossier_id: int,
        base: dict[str, Any],
        agency: Agency,
        fees: list[tuple[catalogue.Fee, int]],
        plan: Plan,
        online: bool,
    ) -> int:
        """One payment file a fee, settled at the counter or through the payment platform; the
        dossier's latest change, payments included."""
        rng = self.rng
        latest = plan.steps[-1][1]
        phase_paid = {phase: (state == PAID, settled) for _a, state, _c, settled, phase in plan.payments}
        for fee, amount in fees:
            if amount <= 0:
                continue
            ahead = fee.hinh_thuc_thu == "thu_truoc"
            settled = (ahead and plan.prepaid) or (not ahead and plan.postpaid)
            paid_online, paid_at = phase_paid.get(0 if ahead else 1, (False, None))
            asked = (
                plan.steps[0][1]
                if ahead
                else next((t for s, t, _r, _x in plan.steps if s == PAYING), plan.finished)
            )
            if asked is None:
                continue  # not asked for yet
            method = "KeyPayDVCQG" if online and (paid_online or not settled) else "Tiền mặt"
            confirm = (
                (paid_at if paid_online and paid_at else asked + 600 + int(rng.random() * 3600))
                if settled
                else None
            )
            if confirm is not None:
                latest = max(latest, confirm)
            payment_id = self._id("opencps_paymentfile")
            self.rows["opencps_paymentfile"].append(
                _row(
                    "opencps_paymentfile",
                    {
                        "uuid_": self._uuid(),
                        "paymentFileId": payment_id,
                        **base,
                        "createDate": dt(asked),
                        "modifiedDate": dt(confirm or asked),
                        "dossierId": dossier_id,
                        "referenceUid": self._uuid(),
                        "govAgencyCode": agency.ma_don_vi,
                        "govAgencyName": agency.ten_don_vi,
                        **_payment_columns(fee, amount, ahead, method, asked, payment_id),
                        **_settlement_columns(settled, confirm, payment_id),
                    },
                )
            )
        return latest

    def _files(
        self,
        dossier_id: int,
        info: ProcInfo,
        comps: list[tuple[str, str, str, bool]],
        replaced: int,
        signed: bool,
        result: bool,
        moment: int,
        base: dict[str, Any],
    ) -> None:
        rng = self.rng
        entries = [
            (code, name, k == replaced, signed, PART_SUBMITTED)
            for k, (code, name, _s, _o) in enumerate(comps)
        ]
        if replaced >= 0:
            code, name, _s, _o = comps[replaced]
            entries.append((code, f"Bổ sung - {name}", False, True, PART_SUBMITTED))
        if result:
            entries.append((info.proc.ma_ket_qua, info.result_file, False, True, PART_RESULT))
        for code, name, removed, signed_copy, part in entries:
            self.file_entry += 1
            self.rows["opencps_dossierfile"].append(
                _row(
                    "opencps_dossierfile",
                    {
                        "uuid_": self._uuid(),
                        "dossierFileId": self._id("opencps_dossierfile"),
                        **base,
                        "userId": CLERK_USER[0],
                        "userName": CLERK_USER[1],
                        "createDate": dt(moment),
                        "modifiedDate": dt(moment),
                        "dossierId": dossier_id,
                        "referenceUid": self._uuid(),
                        "dossierTemplateNo": info.proc.ma_thu_tuc,
                        "dossierPartNo": code if part == PART_RESULT or rng.random() < 0.85 else "",
                        "dossierPartType": part,
                        "fileTemplateNo": code,
                        "displayName": name,
                        "formData": "",
                        "fileEntryId": self.file_entry,
                        "original": 1,
                        "eForm": 0,
                        "isNew": int(not removed),
                        "removed": int(removed),
                        "signCheck": int(signed_copy),
                        "deliverableCode": f"{info.proc.ma_ket_qua}-{self.file_entry}"
                        if part == PART_RESULT
                        else "",
                    },
                )
            )

    def _dossier_row(
        self,
        dossier_id: int,
        reference: str,
        base: dict[str, Any],
        proc: catalogue.Procedure,
        agency: Agency,
        applicant: _Applicant,
        created: int,
        modified: int,
        *,
        status: str,
        sub: str | None,
        extra: dict[str, Any],
    ) -> None:
        submitter = applicant.submitter
        self.rows["opencps_dossier"].append(
            _row(
                "opencps_dossier",
                {
                    "uuid_": self._uuid(),
                    "dossierId": dossier_id,
                    **base,
                    "userId": self._user(submitter),
                    "userName": submitter,
                    "createDate": dt(created),
                    "modifiedDate": dt(modified),
                    "referenceUid": reference,
                    "serviceCode": proc.ma_thu_tuc,
                    "serviceName": proc.ten_thu_tuc,
                    "govAgencyCode": agency.ma_don_vi,
                    "govAgencyName": agency.ten_don_vi,
                    **_applicant_columns(applicant),
                    "dossierTemplateNo": proc.ma_thu_tuc,
                    "dossierTemplateName": proc.ten_thu_tuc,
                    "dossierNote": applicant.note,
                    "dossierName": proc.ten_thu_tuc,
                    "dossierStatus": status,
                    "dossierStatusText": STATUS_TEXT[status],
                    "dossierSubStatus": sub or "",
                    "dossierSubStatusText": _sub_text(sub),
                    **_DOSSIER_DEFAULTS,
                    **extra,
                },
            )
        )


@dataclass(frozen=True, slots=True)
class _Applicant:
    """Who a dossier is for (a citizen, a business, an organisation) and who submits it."""

    kind: str
    name: str
    submitter: str
    id_number: str | None
    id_date: str | None
    address: str
    place: str
    phone: str | None
    email: str | None
    note: str


@dataclass(frozen=True, slots=True)
class _History:
    """What the actions of a dossier tell its row: the last action and step, when processing
    started and when the dossier was cancelled."""

    last_id: int
    last_step: Step
    processed: int | None
    cancelled_at: int | None


# Columns of opencps_dossier every generated dossier has alike (``extra`` may override the postal ones).
_DOSSIER_DEFAULTS: dict[str, Any] = {
    "cityCode": "99",
    "cityName": "Tỉnh Sơn Hà",
    "delegateType": 0,
    "briefNote": "",
    "folderId": 0,
    "notification": 1,
    "original": 1,
    "serverNo": "SERVER_H40",
    "lockState": "",
    "originDossierId": 0,
    "sampleCount": 0,
    "metaData": "{}",
    "vnpostalStatus": 0,
    "fromViaPostal": 0,
    "viaPostal": VIA_POSTAL_NONE,
    "systemId": 0,
}


def _postal(applicant: _Applicant) -> dict[str, Any]:
    """The columns of a dossier whose result is sent by post."""
    return {
        "postalServiceCode": "VNPOST",
        "postalServiceName": "Bưu điện Việt Nam",
        "postalAddress": applicant.address,
        "postalTelNo": applicant.phone,
    }


def _applicant_columns(applicant: _Applicant) -> dict[str, Any]:
    """The applicant, contact and delegate columns of opencps_dossier (the submitter is all three)."""
    submitter, phone, email = applicant.submitter, applicant.phone, applicant.email
    address = applicant.address
    return {
        "applicantName": applicant.name,
        "applicantIdType": APPLICANT_TYPES[applicant.kind],
        "applicantIdNo": applicant.id_number,
        "applicantIdDate": applicant.id_date,
        "address": address,
        "wardName": applicant.place.split(",")[0],
        "contactName": submitter,
        "contactTelNo": phone,
        "contactEmail": email,
        "delegateName": submitter,
        "delegateTelNo": phone,
        "delegateEmail": email,
        "delegateAddress": address,
    }


def _action_columns(step: Step, previous: Step | None, moment: int) -> dict[str, Any]:
    """The columns of an opencps_dossieraction row that follow from its step and moment."""
    return {
        "createDate": dt(moment),
        "modifiedDate": dt(moment),
        "serviceProcessId": SERVICE_PROCESS_ID,
        "fromStepCode": previous.code if previous else "",
        "fromStepName": previous.name if previous else "",
        "fromSequenceNo": previous.code if previous else "",
        "actionCode": step.action_code,
        "actionName": step.action_name,
        "actionOverdue": 0,
        "syncActionCode": "",
        "pending": 0,
        "stepCode": step.code,
        "stepName": step.name,
        "sequenceNo": step.code,
        "nextActionId": 0,  # set when the next action is drawn
        "payload": "{}",
        "stepInstruction": "",
        "state_": 1,
        "eventStatus": 0,
    }


def _payment_columns(
    fee: catalogue.Fee, amount: int, ahead: bool, method: str, asked: int, payment_id: int
) -> dict[str, Any]:
    """What an opencps_paymentfile row asks for: the fee, its amounts and how it is paid."""
    return {
        "userId": CLERK_USER[0],
        "userName": CLERK_USER[1],
        "paymentFee": fee.ten_phi,
        "advanceAmount": amount if ahead else 0,
        "feeAmount": amount if fee.loai_phi == "le_phi" else 0,
        "serviceAmount": amount if fee.loai_phi == "phi" else 0,
        "shipAmount": 0,
        "paymentAmount": amount,
        "paymentNote": fee.ten_phi,
        "epaymentProfile": json.dumps({"keypayGoodCode": f"H40{yymmdd(asked)}{payment_id:07d}"})
        if method == "KeyPayDVCQG"
        else None,
        "bankInfo": None,
        "paymentMethod": method,
    }


def _settlement_columns(settled: bool, confirm: int | None, payment_id: int) -> dict[str, Any]:
    """Whether and when an opencps_paymentfile row was confirmed."""
    return {
        "paymentStatus": PAYMENT_CONFIRMED if settled else PAYMENT_REQUESTED,
        "confirmDatetime": _opt(confirm),
        "confirmNote": "Đã thanh toán" if settled else None,
        "approveDatetime": _opt(confirm + 300) if confirm else None,
        "invoiceNo": f"{payment_id:07d}" if settled else None,
    }


def _sub_text(sub: str | None) -> str:
    return next((s.name for s in STEPS.values() if s.sub_status == sub), "") if sub else ""


def _static_rows(procs: tuple[catalogue.Procedure, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """The catalogue, its DVCQG mapping, the process steps and the status mapping table."""
    stamp = "2023-12-15 08:00:00"
    base = {
        "groupId": GROUP_ID,
        "companyId": COMPANY_ID,
        "userId": CLERK_USER[0],
        "userName": CLERK_USER[1],
        "createDate": stamp,
        "modifiedDate": stamp,
    }
    ids = Random("opencps-static")

    def new_uuid() -> str:
        return str(uuid.UUID(int=ids.getrandbits(128), version=4))

    info = [
        _row(
            "opencps_serviceinfo",
            {
                "uuid_": new_uuid(),
                "serviceInfoId": n,
                **base,
                "serviceCode": p.ma_thu_tuc,
                "serviceName": p.ten_thu_tuc,
                "durationText": f"{p.so_ngay_xu_ly} ngày làm việc",
                "domainCode": p.ma_linh_vuc,
                "domainName": p.ten_linh_vuc,
                "maxLevel": 4 if "truc_tuyen" in p.kenh else 2,
                "public_": 1,
                "isNotarization": 0,
                "serviceNameTitle": p.ten_thu_tuc,
            },
        )
        for n, p in enumerate(procs, 1)
    ]
    mapped = [p for p in procs if p.ma_tthc_qg]
    mapping = [
        _row(
            "opencps_serviceinfomapping",
            {
                "serviceInfoMappingId": n,
                **base,
                "serviceCode": p.ma_thu_tuc,
                "serviceCodeDVCQG": p.ma_tthc_qg,
                "serviceNameDVCQG": p.ten_thu_tuc,
                "synced": 1,
            },
        )
        for n, p in enumerate(mapped, 1)
    ]
    return {
        "opencps_serviceinfo": info,
        "opencps_serviceinfomapping": mapping,
        "opencps_processstep": _step_rows(base, new_uuid),
        "opencps_dossierstatusmapping": _status_rows(base),
    }


def _step_rows(base: dict[str, Any], new_uuid: Callable[[], str]) -> list[tuple[Any, ...]]:
    """opencps_processstep: one row a step of the process the sample's dossiers follow."""
    return [
        _row(
            "opencps_processstep",
            {
                "uuid_": new_uuid(),
                "processStepId": n,
                **base,
                "stepCode": s.code,
                "serviceProcessId": SERVICE_PROCESS_ID,
                "stepName": s.name,
                "sequenceNo": s.code,
                "dossierStatus": s.status,
                "dossierSubStatus": s.sub_status,
                "durationCount": 0.0,
                "editable": 0,
                "lockState": "",
                "checkInput": 0,
            },
        )
        for n, s in enumerate(STEPS.values(), 1)
    ]


def _status_rows(base: dict[str, Any]) -> list[tuple[Any, ...]]:
    """opencps_dossierstatusmapping: each status, and each mapped sub-status, to the national code."""
    status_rows = [(status, "", str(number)) for number, status in enumerate(STATUSES, 1)]
    status_rows += [
        (s.status, s.sub_status, str(STATUSES.index(s.status) + 1))
        for s in STEPS.values()
        if s.sub_status not in UNMAPPED_SUB_STATUSES
    ]
    return [
        _row(
            "opencps_dossierstatusmapping",
            {
                "dossierStatusMappingId": n,
                **{k: v for k, v in base.items() if k != "uuid_"},
                "statusCode": code,
                "statusCodeDVCQG": national,
                "subStatusCode": sub,
            },
        )
        for n, (code, sub, national) in enumerate(status_rows, 1)
    ]


def _votes(conn: sqlite3.Connection, seed: int) -> dict[str, list[tuple[Any, ...]]]:
    """Citizens' ratings of the returned dossiers (as the sample's: share rated by channel, a
    late dossier rated worse), from a generator of their own: one question and one answer each."""
    rng = Random(f"opencps-votes:{seed}")
    questions: list[tuple[Any, ...]] = []
    answers: list[tuple[Any, ...]] = []
    found = conn.execute(
        "SELECT dossierId, online_, viaPostal, finishDate, dueDate, applicantName, contactEmail"
        " FROM opencps_dossier WHERE dossierStatus = 'done' AND finishDate IS NOT NULL ORDER BY dossierId"
    )
    for dossier_id, online, via_postal, finished, due, name, email in found:
        channel = "truc_tuyen" if online else "buu_chinh" if via_postal == VIA_POSTAL_YES else "truc_tiep"
        if rng.random() >= RATED_SHARE.get(channel, 0.4):
            continue
        returned = to_seconds(datetime.fromisoformat(finished))
        moment = min(returned + int(rng.random() * RATING_DELAY_DAYS * DAY), NOW)
        late = due is not None and finished > due
        level = rng.choices((1, 2, 3), LEVEL_WEIGHTS[late])[0]
        number = len(questions) + 1
        base = {
            "companyId": COMPANY_ID,
            "groupId": GROUP_ID,
            "createDate": dt(moment),
            "modifiedDate": dt(moment),
        }
        questions.append(
            _row(
                "opencps_voting",
                {
                    "uuid_": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "votingId": number,
                    **base,
                    "userId": CLERK_USER[0],
                    "userName": CLERK_USER[1],
                    "className": VOTING_CLASS,
                    "classPK": str(dossier_id),
                    "subject": VOTING_SUBJECT,
                    "choices": "###".join(VOTING_CHOICES),
                    "commentable": 1,
                    "votingCode": VOTING_CODE,
                },
            )
        )
        answers.append(
            _row(
                "opencps_votingresult",
                {
                    "uuid_": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "votingResultId": number,
                    **base,
                    "userId": 0,
                    "userName": name,
                    "votingId": number,
                    "fullname": name,
                    "email": email,
                    "comment_": None,
                    "selected": str(level),
                },
            )
        )
    return {"opencps_voting": questions, "opencps_votingresult": answers}


def generate(
    out: str | Path,
    dossiers: int,
    seed: int = 42,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> OpenCPSStats:
    """Create a new OpenCPS v2 sample database at ``out`` with ``dossiers`` rows in
    ``opencps_dossier`` (drafts included). Refuses an existing file unless ``overwrite``; the file
    appears only when complete, in WAL mode."""
    if dossiers < 0:
        raise ValueError(f"dossiers must be >= 0, got {dossiers}")
    started = time.perf_counter()
    target, partial = claim(out, overwrite)
    partial.unlink(missing_ok=True)

    procs = catalogue.procedures()
    geo = Geography(catalogue.agencies())
    infos = prepare_procedures(procs)
    rng = Random(f"opencps:{seed}")
    counts = dict.fromkeys(TABLES, 0)
    if progress:
        progress(0, dossiers)
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(ddl())
        conn.execute("BEGIN")
        for table, rows in _static_rows(procs).items():
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(COLUMNS[table]))})", rows)
            counts[table] = len(rows)
        writer = _Writer(rng, seed, infos, geo)
        drawn = submissions(rng, dossiers, infos)
        for number, (submitted, arrival, proc_index, channel) in enumerate(drawn, 1):
            writer.dossier(submitted, arrival, proc_index, channel)
            if number % CHUNK == 0:
                writer.flush(conn, counts)
                if progress:
                    progress(number, dossiers)
        writer.flush(conn, counts)
        votes = _votes(conn, seed)
        for table, rows in votes.items():
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(COLUMNS[table]))})", rows)
            counts[table] = len(rows)
        counters = [(_MODELS[t], n) for t, n in writer.next_id.items()]
        counters += [(_VOTING_MODELS[t], len(rows)) for t, rows in votes.items()]
        conn.executemany("INSERT INTO counter VALUES (?, ?)", counters)
        counts["counter"] = len(counters)
        conn.execute("COMMIT")
        for statement in INDEXES:
            conn.execute(statement)
        conn.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        conn.close()
        partial.unlink(missing_ok=True)
        raise
    conn.close()
    publish(partial, target, overwrite)
    if progress:
        progress(dossiers, dossiers)
    return OpenCPSStats(target, seed, counts, time.perf_counter() - started)
