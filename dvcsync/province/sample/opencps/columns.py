"""The columns of the OpenCPS sample's rows: the constants every row shares, the row tuple in
``schema.COLUMNS`` order, and the groups of columns that follow from one decision (the applicant,
an action's step, a payment and its settlement). Kept apart from the drawing (``dossiers``) so the
rows' shape reads in one place and the writer holds only what is drawn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .. import catalogue
from ..calendar import iso, yymmdd
from ..lifecycle import HEAD, LEADER, PAYING, PROCESSING, WAITING
from .applicants import Applicant
from .schema import (
    APPLICANT_TYPES,
    COLUMNS,
    PAYMENT_CONFIRMED,
    PAYMENT_REQUESTED,
    STATUSES,
    STEPS,
    VIA_POSTAL_NONE,
    Step,
)

GROUP_ID, COMPANY_ID, SERVICE_PROCESS_ID = 35417, 20099, 1
CLERK_USER = (20139, "Quản trị hệ thống")


def dt(ts: int) -> str:
    """``2025-03-04 09:15:00``: a MySQL DATETIME as OpenCPS's database returns it."""
    text = iso(ts)
    return f"{text[:10]} {text[11:]}"


def opt_dt(ts: int | None) -> str | None:
    """``dt`` of a moment that may not have happened (NULL then)."""
    return None if ts is None else dt(ts)


def table_row(table: str, values: dict[str, Any]) -> tuple[Any, ...]:
    """``values`` as a row of ``table`` in its column order; a name it lacks is refused."""
    unknown = set(values) - set(COLUMNS[table])
    if unknown:  # a typo would silently write NULL otherwise
        raise KeyError(f"{table} has no column {', '.join(sorted(unknown))}")
    return tuple(values.get(name) for name in COLUMNS[table])


def step_of(status: int, previous: int, role: int) -> Step:
    """The process step an action is: processing splits by what came before and who acts."""
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


@dataclass(frozen=True, slots=True)
class History:
    """What the actions of a dossier tell its row: the last action and step, when processing
    started and when the dossier was cancelled."""

    last_id: int
    last_step: Step
    processed: int | None
    cancelled_at: int | None


# Columns of opencps_dossier every generated dossier has alike (``extra`` may override the postal ones).
DOSSIER_DEFAULTS: dict[str, Any] = {
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


def postal_columns(applicant: Applicant) -> dict[str, Any]:
    """The columns of a dossier whose result is sent by post."""
    return {
        "postalServiceCode": "VNPOST",
        "postalServiceName": "Bưu điện Việt Nam",
        "postalAddress": applicant.address,
        "postalTelNo": applicant.phone,
    }


def applicant_columns(applicant: Applicant) -> dict[str, Any]:
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


def action_columns(step: Step, previous: Step | None, moment: int) -> dict[str, Any]:
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


def payment_columns(
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


def settlement_columns(settled: bool, confirm: int | None, payment_id: int) -> dict[str, Any]:
    """Whether and when an opencps_paymentfile row was confirmed."""
    return {
        "paymentStatus": PAYMENT_CONFIRMED if settled else PAYMENT_REQUESTED,
        "confirmDatetime": opt_dt(confirm),
        "confirmNote": "Đã thanh toán" if settled else None,
        "approveDatetime": opt_dt(confirm + 300) if confirm else None,
        "invoiceNo": f"{payment_id:07d}" if settled else None,
    }


def sub_text(sub: str | None) -> str:
    """The name of the step whose sub-status is ``sub`` (``dossierSubStatusText``)."""
    return next((s.name for s in STEPS.values() if s.sub_status == sub), "") if sub else ""
