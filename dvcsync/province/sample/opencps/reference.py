"""The reference tables of the OpenCPS sample: the service catalogue and its DVCQG mapping, the
process steps and the status mapping, from which ``mappings/opencps/codes`` is exported
(``export_codes``). Their uuids come from a generator of their own, so they never move with N.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from random import Random
from typing import Any

from .. import catalogue
from .columns import CLERK_USER, COMPANY_ID, GROUP_ID, SERVICE_PROCESS_ID, table_row
from .schema import STATUSES, STEPS, UNMAPPED_SUB_STATUSES


def reference_rows(procs: tuple[catalogue.Procedure, ...]) -> dict[str, list[tuple[Any, ...]]]:
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
        table_row(
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
        table_row(
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
        table_row(
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
        table_row(
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
