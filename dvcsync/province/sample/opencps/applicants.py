"""Who a dossier of the OpenCPS sample is for: a citizen, a business or an organisation (OpenCPS
knows citizens and businesses only: an organisation is filed under its name, without an id), with
the contact details the submitter gave. Drawn from the dossier writer's generator, in its order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from random import Random

from .. import catalogue, names
from ..calendar import BASE, DAY
from ..catalogue import Agency
from ..common import COMPANY_FORM
from ..places import place_of

# OpenCPS's organisations: four of the sample's five (its rows were drawn from these).
ORGANISATIONS = ("Hội Nông dân", "Hội Liên hiệp Phụ nữ", "Hội Cựu chiến binh", "Đoàn Thanh niên")


@dataclass(frozen=True, slots=True)
class Applicant:
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


def draw_applicant(
    rng: Random, proc: catalogue.Procedure, home: Agency, submitted: int, online: bool
) -> Applicant:
    """The applicant of a dossier of ``proc`` submitted at ``submitted`` from ``home``, and the
    contact details (more often given online)."""
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
        applicant = f"{ORGANISATIONS[int(rng.random() * len(ORGANISATIONS))]} {short}"
        id_number, email = None, None
    place = place_of(home)
    phone = names.phone(rng) if rng.random() < 0.95 else None
    address = names.street_address(rng, place)
    return Applicant(
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
