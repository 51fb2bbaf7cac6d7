"""The dossiers of the OpenCPS sample: each drawn submission becomes its ``opencps_dossier`` row
with its actions, payment files and dossier files (or a draft's record and first files).

The draws come from one generator in a fixed order (that order is what keeps a seed's rows
byte-identical; ``tests/unit/province/sample/test_generated_unchanged.py`` pins them): the
lifecycle is the sample's ``plan_dossier``, the columns are ``columns``'s.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from random import Random
from typing import Any

from .. import catalogue
from ..calendar import BASE, DAY, DAY_YYMMDD
from ..catalogue import Agency
from ..common import (
    TRANSITION_DAYS,
    TRANSITION_SHARE,
    ProcInfo,
    Route,
    priced_fees,
    step_text,
)
from ..lifecycle import (
    APPLICANT,
    CANCELLED,
    DENIED,
    DONE,
    HEAD,
    NEW,
    ONESTOP,
    ONLINE,
    PAID,
    PAYING,
    POSTAL,
    PROCESSING,
    RECEIVING,
    RELEASING,
    SPECIALIST,
    Plan,
    plan_dossier,
)
from ..places import REFORM_DAY, Geography
from ..staff import Staff, staff_for
from .applicants import Applicant, draw_applicant
from .columns import (
    CLERK_USER,
    COMPANY_ID,
    DOSSIER_DEFAULTS,
    GROUP_ID,
    History,
    action_columns,
    applicant_columns,
    dt,
    opt_dt,
    payment_columns,
    postal_columns,
    settlement_columns,
    step_of,
    sub_text,
    table_row,
)
from .schema import (
    COLUMNS,
    ORIGINALITY_ONESTOP,
    ORIGINALITY_ONLINE,
    PART_RESULT,
    PART_SUBMITTED,
    STATUS_TEXT,
    STATUSES,
    SYSTEM_PORTAL,
    VIA_POSTAL_NONE,
    VIA_POSTAL_YES,
)

DRAFT_SHARE = 0.08  # online dossiers left as drafts (created, never submitted)
PORTAL_SHARE = 0.4  # online dossiers submitted on the national portal (national code needed)
DOSSIER_MODELS = {  # Liferay counter names of the ids drawn here
    "opencps_dossier": "org.opencps.dossiermgt.model.Dossier",
    "opencps_dossieraction": "org.opencps.dossiermgt.model.DossierAction",
    "opencps_paymentfile": "org.opencps.dossiermgt.model.PaymentFile",
    "opencps_dossierfile": "org.opencps.dossiermgt.model.DossierFile",
}


class DossierWriter:
    """Draws dossiers one at a time into rows held per table until ``flush`` writes them; its
    ``next_id`` per table is what the ``counter`` table records."""

    def __init__(self, rng: Random, seed: int, infos: list[ProcInfo], geo: Geography) -> None:
        self.rng = rng
        self.ids = Random(f"opencps-uuid:{seed}")
        self.infos = infos
        self.geo = geo
        self.staff: dict[str, Staff] = {k: staff_for(a, seed) for k, a in geo.by_key.items()}
        self.users: dict[str, int] = {}
        self.serials: dict[tuple[str, str], int] = {}
        self.portal_serials: dict[str, int] = {}
        self.next_id = dict.fromkeys(DOSSIER_MODELS, 0)
        self.file_entry = 70_000
        self.reform = (REFORM_DAY - BASE.date()).days
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in DOSSIER_MODELS}

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
        applicant = draw_applicant(rng, proc, home, submitted, online)
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
                **(postal_columns(applicant) if by_post else {}),
                "submitDate": dt(submitted if online else arrival),
                "receiveDate": opt_dt(plan.received),
                "dueDate": opt_dt(plan.due),
                "processDate": opt_dt(history.processed),
                "cancellingDate": opt_dt(history.cancelled_at),
                "releaseDate": opt_dt(plan.finished) if final in (RELEASING, DONE) else None,
                "finishDate": opt_dt(plan.returned),
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

    def _draft(
        self,
        dossier_id: int,
        reference: str,
        base: dict[str, Any],
        info: ProcInfo,
        agency: Agency,
        applicant: Applicant,
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
        applicant: Applicant,
        route: Route,
    ) -> History:
        """The history rows, one an action, each linked to the previous and the next."""
        rng = self.rng
        specialist = staff.specialists[int(rng.random() * len(staff.specialists))]
        leader = staff.leaders[0][0] if rng.random() < 0.75 else staff.leaders[1][0]
        head = staff.heads[int(rng.random() * len(staff.heads))] if staff.heads else staff.leaders[0][0]
        division = staff.division(proc.ma_linh_vuc)
        due = opt_dt(plan.due)
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
            step = step_of(status, previous_status, role)
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
                    **action_columns(step, previous_step, moment),
                }
            )
            previous_status, previous_step = status, step
        for values in actions:
            self.rows["opencps_dossieraction"].append(table_row("opencps_dossieraction", values))
        assert previous_step is not None
        return History(action_id, previous_step, processed, cancelled_at)

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
                table_row(
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
                        **payment_columns(fee, amount, ahead, method, asked, payment_id),
                        **settlement_columns(settled, confirm, payment_id),
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
                table_row(
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
        applicant: Applicant,
        created: int,
        modified: int,
        *,
        status: str,
        sub: str | None,
        extra: dict[str, Any],
    ) -> None:
        submitter = applicant.submitter
        self.rows["opencps_dossier"].append(
            table_row(
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
                    **applicant_columns(applicant),
                    "dossierTemplateNo": proc.ma_thu_tuc,
                    "dossierTemplateName": proc.ten_thu_tuc,
                    "dossierNote": applicant.note,
                    "dossierName": proc.ten_thu_tuc,
                    "dossierStatus": status,
                    "dossierStatusText": STATUS_TEXT[status],
                    "dossierSubStatus": sub or "",
                    "dossierSubStatusText": sub_text(sub),
                    **DOSSIER_DEFAULTS,
                    **extra,
                },
            )
        )
