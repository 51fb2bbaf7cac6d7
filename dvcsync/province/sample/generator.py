"""Generate the sample one-stop database: agencies, the procedure catalogue and N realistic dossiers.

Deterministic: everything is drawn from one ``random.Random(seed)`` (officer pools from their own
seeded generators) against fixed dates, so the same seed and N give the same rows, byte for byte.
Citizens' ratings (``danh_gia``) come last from a generator of their own, so they never moved
the rest.
Dossiers are numbered in submission order, filed with the agency that existed on their submission
date, and live the lifecycle of ``lifecycle.plan_dossier`` cut at the snapshot moment.

Built for speed (100,000 dossiers, about a million rows, in well under 30 s): rows are plain tuples
written with ``executemany`` in one transaction with journaling off, into a temporary file that
replaces the target only when complete; secondary indexes are built after the load.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Any

from . import catalogue, names
from .calendar import (
    BASE,
    DAY,
    DAY_YYMMDD,
    IS_WORKDAY,
    OFFICE_OPEN,
    OFFICE_SPAN,
    day_number,
    iso,
    to_seconds,
    yymmdd,
)
from .catalogue import Agency, Procedure
from .lifecycle import (
    APPLICANT,
    CANCELLED,
    CREATED,
    DENIED,
    DIRECT,
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
    UNRESOLVED,
    WAITING,
    plan_dossier,
)
from .places import REFORM_DAY, Geography, place_of
from .schema import CHANNELS, DDL, RATING_LEVELS, STATUS_KEYWORDS
from .staff import Staff, staff_for

FIRST_DAY = date(2024, 1, 1)
LAST_DAY = date(2026, 11, 15)
CATALOGUE_UPDATED = "2023-12-15T08:00:00"
FILES_URL = "https://motcua.h40.example.vn/files"
TRANSITION_DAYS = 14          # first days after the merger when some clerks still pick the old commune
TRANSITION_SHARE = 0.2
UNMAPPED_SHARE = 0.03         # dossiers on a local procedure with no national code
CHUNK = 2_000                 # dossiers per executemany round (and per progress report)

TABLES = ("don_vi", "thu_tuc", "ho_so", "qua_trinh_xu_ly", "le_phi", "thanh_toan", "tai_lieu", "danh_gia")
# Citizens' ratings of returned dossiers: share rated, how long after the return, level weights
# (on time, late). A late dossier is rated worse, so the monthly figures vary as in real life.
RATED_SHARE = {"truc_tuyen": 0.7, "truc_tiep": 0.45, "buu_chinh": 0.3}
RATING_DELAY_DAYS = 12
_LEVEL_WEIGHTS = {False: (0.46, 0.46, 0.08), True: (0.15, 0.45, 0.40)}
_COMMENTS = {
    "rat_hai_long": ("Cán bộ hướng dẫn tận tình, trả kết quả đúng hẹn", "Thủ tục nhanh gọn",
                     "Rất hài lòng với thái độ phục vụ"),
    "hai_long": ("Giải quyết đúng hẹn", "Cần hướng dẫn rõ hơn về thành phần hồ sơ"),
    "chua_hai_long": ("Trả kết quả trễ hẹn", "Phải bổ sung giấy tờ nhiều lần",
                      "Thời gian chờ tại Bộ phận Một cửa quá lâu"),
}

# How often each procedure is used, relative to 1.0 (the rest by sector, default 1.2).
_PROCEDURE_WEIGHT = {"HT-KS-01": 14.0, "CT-BS-01": 20.0, "CT-CK-01": 6.0, "DB-GPLX-01": 8.0, "TM-KM-01": 4.0,
                     "HT-KT-01": 5.0, "HT-KH-01": 5.0, "HT-XNHN-01": 6.0, "DKKD-HKD-01": 4.0,
                     "DD-DKBD-01": 6.0}
_SECTOR_WEIGHT = {"TP-HT": 3.0, "TP-CT": 4.0, "TN-DD": 3.0, "TC-DKKD": 2.0, "GT-DB": 2.0, "LD-BTXH": 2.0}
# Fees charged per page or per copy: (low, high) units.
_PER_UNIT = {"PHI-CT-BS": (1, 12), "PHI-HT-BS": (1, 3), "PHI-GD-BS": (1, 3)}
# Procedures with a financial obligation collected mid-way (land-use tax) even when no fee is listed.
_FINANCIAL_OBLIGATION = frozenset({"DD-CMD-01"})
# Procedures whose name says what kind of company files them.
_COMPANY_FORM = {"DKKD-DN-01": "Công ty TNHH MTV", "DKKD-DN-02": "Công ty Cổ phần"}
# Sectors where a business sometimes files a procedure meant for citizens.
_MIXED_SECTORS = frozenset({"TP-CT", "TN-DD", "XD-HD", "GT-DB"})
_ORGANISATIONS = ("Hội Nông dân", "Hội Liên hiệp Phụ nữ", "Hội Cựu chiến binh", "Đoàn Thanh niên",
                  "Hội Chữ thập đỏ")
_PROMOTIONS = ("Tri ân khách hàng", "Mừng sinh nhật", "Chào hè rực rỡ", "Mừng xuân",
               "Khai trương cửa hàng mới", "Mua 2 tặng 1", "Giờ vàng giá sốc", "Quay số trúng thưởng")
_LICENCE_CLASSES = ("B2", "B2", "B2", "C", "D", "B1", "FC", "A1")
_BANKS = ("VCB", "BIDV", "ICB", "VBA", "TCB", "MB", "ACB", "TPB", "VPB", "STB")
_INDEX_LINE = re.compile(r"^CREATE INDEX[^\n]*;[ \t]*$", re.MULTILINE)
_TEXT = {
    RECEIVING: ("Tiếp nhận hồ sơ trực tiếp, chuyển {div} thụ lý",
                "Kiểm tra, tiếp nhận hồ sơ trực tuyến, chuyển {div} thụ lý",
                "Tiếp nhận hồ sơ qua dịch vụ bưu chính công ích, chuyển {div} thụ lý"),
}


@dataclass(frozen=True)
class GenerateStats:
    """What ``generate`` wrote: rows per table and the time it took."""

    path: Path
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    @property
    def dossiers(self) -> int:
        return self.rows.get("ho_so", 0)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True, slots=True)
class _ProcInfo:
    proc: Procedure
    channels: tuple[int, ...]
    needs_paying: bool
    components: tuple[tuple[str, str, str, bool], ...]   # (code, file name, url slug, optional)
    result_file: str
    result_slug: str


def _prepare_procedures(procs: tuple[Procedure, ...]) -> list[_ProcInfo]:
    infos = []
    for proc in procs:
        needs_paying = proc.ma_thu_tuc in _FINANCIAL_OBLIGATION or any(
            f.hinh_thuc_thu == "thu_sau" and f.so_tien > 0 for f in proc.phi_le_phi)
        comps = tuple((c.ma_thanh_phan, f"{c.ten_thanh_phan}.pdf", names.slug(c.ten_thanh_phan)[:80],
                       "(nếu có)" in c.ten_thanh_phan) for c in proc.thanh_phan_ho_so)
        infos.append(_ProcInfo(proc, tuple(CHANNELS.index(k) for k in proc.kenh), needs_paying, comps,
                               f"{proc.ten_ket_qua}.pdf", names.slug(proc.ten_ket_qua)[:80]))
    return infos


def _procedure_picker(procs: tuple[Procedure, ...]) -> Callable[[Random], int]:
    mapped = [i for i, p in enumerate(procs) if p.ma_tthc_qg]
    unmapped = [i for i, p in enumerate(procs) if not p.ma_tthc_qg]
    weights = [_PROCEDURE_WEIGHT.get(procs[i].ma_thu_tuc, _SECTOR_WEIGHT.get(procs[i].ma_linh_vuc, 1.2))
               for i in mapped]
    cumulative = list(accumulate(weights))
    total = cumulative[-1]

    def pick(rng: Random) -> int:
        if unmapped and rng.random() < UNMAPPED_SHARE:
            return unmapped[int(rng.random() * len(unmapped))]
        return mapped[bisect(cumulative, rng.random() * total)]

    return pick


def _submissions(rng: Random, n: int, infos: list[_ProcInfo]) -> list[tuple[int, int, int, int]]:
    """``(submitted, arrival, procedure index, channel)`` for every dossier, in submission order."""
    first, last = day_number(FIRST_DAY), day_number(LAST_DAY)
    span = last - first
    days = list(range(first, last + 1))
    weights = [(1.0 if IS_WORKDAY[d] else 0.07) * (1.0 + 0.3 * (d - first) / span) for d in days]
    cumulative = list(accumulate(weights))
    total = cumulative[-1]
    last_workday = max(d for d in days if IS_WORKDAY[d])
    pick_procedure = _procedure_picker(tuple(i.proc for i in infos))
    out = []
    for _ in range(n):
        day = days[bisect(cumulative, rng.random() * total)]
        index = pick_procedure(rng)
        allowed = infos[index].channels
        roll = rng.random()
        online_share = 0.28 + 0.32 * (day - first) / span
        channel = ONLINE if roll < online_share else POSTAL if roll < online_share + 0.04 else DIRECT
        if channel not in allowed:
            channel = DIRECT if DIRECT in allowed else allowed[0]
        if not IS_WORKDAY[day] and channel != ONLINE:
            if ONLINE in allowed:
                channel = ONLINE
            else:
                while not IS_WORKDAY[day]:
                    day = day + 1 if day < last_workday else day - 1
        if channel == ONLINE:
            submitted = min(day * DAY + 6 * 3600 + int(rng.random() * 17 * 3600), NOW - 3 * 3600)
            arrival = submitted
        else:
            arrival = day * DAY + OFFICE_OPEN + int(rng.random() * (OFFICE_SPAN - 1800))
            submitted = arrival - (DAY + int(rng.random() * 2 * DAY)) if channel == POSTAL else arrival
        out.append((submitted, arrival, index, channel))
    out.sort()
    return out


class _Writer:
    """Builds the rows of each chunk of dossiers and inserts them."""

    def __init__(self, rng: Random, seed: int, infos: list[_ProcInfo], geo: Geography) -> None:
        self.rng = rng
        self.infos = infos
        self.geo = geo
        self.staff: dict[str, Staff] = {k: staff_for(a, seed) for k, a in geo.by_key.items()}
        self.serials: dict[tuple[str, str], int] = {}
        self.portal_serials: dict[str, int] = {}
        self.step_id = self.fee_id = self.payment_id = self.doc_id = 0
        self.dates = {d: BASE.date() + timedelta(days=d) for d in range(len(DAY_YYMMDD))}
        self.reform = day_number(REFORM_DAY)
        self.ho_so: list[tuple[Any, ...]] = []
        self.steps: list[tuple[Any, ...]] = []
        self.fees: list[tuple[Any, ...]] = []
        self.payments: list[tuple[Any, ...]] = []
        self.docs: list[tuple[Any, ...]] = []

    def flush(self, conn: sqlite3.Connection, counts: dict[str, int]) -> None:
        for table, rows, width in (("ho_so", self.ho_so, 25), ("qua_trinh_xu_ly", self.steps, 11),
                                   ("le_phi", self.fees, 8), ("thanh_toan", self.payments, 10),
                                   ("tai_lieu", self.docs, 8)):
            if rows:
                conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)
                counts[table] += len(rows)
                rows.clear()

    def _handler(self, info: _ProcInfo, day_no: int) -> Agency:
        rng = self.rng
        day = self.dates[day_no]
        agency = self.geo.handler(rng, info.proc.cap_thuc_hien, info.proc.co_quan, day)
        in_transition = self.reform <= day_no < self.reform + TRANSITION_DAYS
        if agency.cap == "xa" and agency.valid_to is None and in_transition \
                and rng.random() < TRANSITION_SHARE:
            # The clerk still picked the pre-merger commune: mapping must resolve it through its successor.
            agency = self.geo.predecessor(rng, agency)
        return agency

    def dossier(self, dossier_id: int, submitted: int, arrival: int, proc_index: int, channel: int) -> None:
        rng = self.rng
        info = self.infos[proc_index]
        proc = info.proc
        day_no = submitted // DAY
        agency = self._handler(info, day_no)
        staff = self.staff[agency.ma_don_vi]
        home = self.geo.home(rng, agency, self.dates[day_no])
        place = place_of(home)
        after_reform = day_no >= self.reform

        # --- the owner
        expected = proc.doi_tuong
        owner_type = expected
        roll = rng.random()
        if expected == "cong_dan" and proc.ma_linh_vuc in _MIXED_SECTORS and roll < 0.05:
            owner_type = "doanh_nghiep"
        elif expected == "doanh_nghiep" and roll < 0.10:
            owner_type = "cong_dan" if roll < 0.08 else "to_chuc"
        online = channel == ONLINE
        if owner_type == "cong_dan":
            who = names.person(rng, 1955, 2006)
            owner = submitter = who.full_name
            id_number: str | None = names.citizen_id(rng, who, rng.random() < 0.93)
            email = names.personal_email(rng, who) if rng.random() < (0.75 if online else 0.35) else None
        elif owner_type == "doanh_nghiep":
            company = names.business(rng, _COMPANY_FORM.get(proc.ma_thu_tuc))
            who = names.person(rng, 1960, 2000)
            owner, submitter, id_number = company.name, who.full_name, company.tax_code
            email = names.business_email(rng, company) if rng.random() < 0.85 else None
        else:
            who = names.person(rng, 1960, 2000)
            short = home.ten_don_vi.removeprefix("Ủy ban nhân dân ").split(",")[0]
            if owner_type == "co_quan":
                owner = f"Ban Văn hóa - Thông tin {short}"
            else:
                owner = f"{_ORGANISATIONS[int(rng.random() * len(_ORGANISATIONS))]} {short}"
            submitter, id_number, email = who.full_name, None, None
        phone = names.phone(rng) if rng.random() < 0.95 else None
        address = names.street_address(rng, place)
        summary = self._summary(proc, owner, who)

        # --- fees, then the plan
        fee_rows = []
        prepaid = postpaid = 0
        for fee in proc.phi_le_phi:
            amount = fee.so_tien
            units = _PER_UNIT.get(fee.ma_phi)
            if units:
                amount *= units[0] + int(rng.random() * (units[1] - units[0] + 1))
            fee_rows.append((fee, amount))
            if fee.hinh_thuc_thu == "thu_truoc":
                prepaid += amount
            elif fee.hinh_thuc_thu == "thu_sau":
                postpaid += amount
        plan = plan_dossier(rng, channel, submitted, arrival, proc.so_ngay_xu_ly, prepaid if online else 0,
                            postpaid, info.needs_paying)
        final = plan.steps[-1][0]

        # --- identity of the record
        yymmdd_ = DAY_YYMMDD[day_no]
        serial_key = (agency.ma_qg, yymmdd_)
        serial = self.serials.get(serial_key, 0) + 1
        self.serials[serial_key] = serial
        so_ho_so = f"{agency.ma_qg}-{yymmdd_}-{serial:04d}"
        source, portal_code = "mot_cua", None
        # Submitted on the national portal: only for procedures the portal knows (a national code).
        if online and rng.random() < 0.4 and proc.ma_tthc_qg:
            source = "dvcqg"
            portal_serial = self.portal_serials.get(yymmdd_, 0) + 1
            self.portal_serials[yymmdd_] = portal_serial
            portal_code = f"G22.99-{yymmdd_}-{portal_serial:06d}"
        by_post = (channel == POSTAL and rng.random() < 0.8) or (online and rng.random() < 0.12)

        # --- steps
        specialist = staff.specialists[int(rng.random() * len(staff.specialists))]
        leader, leader_title = staff.leaders[0] if rng.random() < 0.75 else staff.leaders[1]
        if staff.heads:
            head, head_title = staff.heads[int(rng.random() * len(staff.heads))], staff.head_title
        else:   # a small commune: the vice-chair reviews, the chair signs
            (head, head_title), (leader, leader_title) = staff.leaders
        division = staff.division(proc.ma_linh_vuc)
        due_text = iso(plan.due) if plan.due is not None else None
        previous_status, previous_time = -1, plan.steps[0][1]
        for number, (status, moment, role, reason) in enumerate(plan.steps, 1):
            if role == APPLICANT:
                actor, title, unit = submitter, "Người nộp hồ sơ", None
            elif role == ONESTOP:
                actor = staff.onestop[int(rng.random() * len(staff.onestop))]
                title, unit = staff.onestop_title, staff.onestop_division
            elif role == SPECIALIST:
                actor, title, unit = specialist, staff.specialist_title, division
            elif role == HEAD:
                actor, title, unit = head, head_title, division
            else:
                actor, title, unit = leader, leader_title, staff.leader_division
            text = _step_text(status, previous_status, role, channel, source, division, by_post, reason)
            self.step_id += 1
            self.steps.append((self.step_id, dossier_id, number, actor[:50], title, unit, text,
                               STATUS_KEYWORDS[status], iso(moment), iso(previous_time),
                               due_text if status != NEW else None))
            previous_status, previous_time = status, moment

        # --- fees and payments
        for fee, amount in fee_rows:
            settled = (fee.hinh_thuc_thu == "thu_truoc" and plan.prepaid) or (
                fee.hinh_thuc_thu == "thu_sau" and plan.postpaid)
            self.fee_id += 1
            self.fees.append((self.fee_id, dossier_id, fee.ma_phi, fee.ten_phi, fee.loai_phi,
                              fee.hinh_thuc_thu, amount, int(settled and amount > 0)))
        latest = plan.steps[-1][1]
        for amount, state, created, settled_at, _phase in plan.payments:
            self.payment_id += 1
            reference = f"H40TT{yymmdd(created)}{self.payment_id:07d}"
            if state == CREATED:
                row: tuple[Any, ...] = (self.payment_id, dossier_id, reference, amount, "created", None, None,
                                        iso(created), None, None)
                latest = max(latest, created)
            else:
                assert settled_at is not None
                bank = _BANKS[int(rng.random() * len(_BANKS))]
                paid = state == PAID
                row = (self.payment_id, dossier_id, reference, amount, "paid" if paid else "failed",
                       f"FT{yymmdd(settled_at)}{int(rng.random() * 1e8):08d}" if paid else None, bank,
                       iso(created), iso(settled_at), f"bienlai/{reference}.pdf" if paid else None)
                latest = max(latest, settled_at)
            self.payments.append(row)

        # --- documents
        comps = [c for c in info.components if not c[3] or rng.random() < 0.5]
        replaced = int(rng.random() * len(comps)) if plan.supplemented and comps else -1
        digitised = rng.random() < 0.6
        for k, (code, file_name, file_slug, _optional) in enumerate(comps):
            self.doc_id += 1
            self.docs.append((self.doc_id, dossier_id, "nop", file_name, code if rng.random() < 0.85 else "",
                              f"{FILES_URL}/{self.doc_id}/{file_slug}.pdf", int(digitised),
                              int(k == replaced)))
        if replaced >= 0:
            code, file_name, file_slug, _optional = comps[replaced]
            self.doc_id += 1
            self.docs.append((self.doc_id, dossier_id, "nop", f"Bổ sung - {file_name}", code,
                              f"{FILES_URL}/{self.doc_id}/bo-sung-{file_slug}.pdf", 1, 0))
        if final in (RELEASING, DONE):
            self.doc_id += 1
            self.docs.append((self.doc_id, dossier_id, "ket_qua", info.result_file,
                              proc.ma_ket_qua if rng.random() < 0.8 else "",
                              f"{FILES_URL}/{self.doc_id}/{info.result_slug}.pdf", 1, 0))

        # --- the dossier row
        notes = []
        if after_reform and agency.valid_to is not None:
            notes.append("Hồ sơ tiếp nhận trong thời gian chuyển tiếp sau sắp xếp đơn vị hành chính")
        if plan.returned is not None and plan.due is not None and plan.finished is not None \
                and plan.finished > plan.due:
            notes.append("Trễ hạn: đã gửi phiếu xin lỗi và hẹn lại ngày trả kết quả")
        elif final == CANCELLED:
            notes.append("Người nộp hồ sơ đề nghị rút hồ sơ")
        note = "; ".join(notes) or None
        self.ho_so.append((
            dossier_id, so_ho_so, proc.ma_thu_tuc, owner, owner_type, id_number, phone, email, address,
            CHANNELS[channel], summary, iso(submitted), _opt(plan.received), due_text, _opt(plan.finished),
            _opt(plan.returned), _opt(plan.refused), STATUS_KEYWORDS[final], agency.ma_don_vi,
            "buu_dien" if by_post else "tai_quay", source, portal_code, note,
            iso(plan.steps[0][1]), iso(latest),
        ))

    def _summary(self, proc: Procedure, owner: str, who: names.Person) -> str:
        rng = self.rng
        code = proc.ma_thu_tuc
        if code.startswith("HT-KS"):
            family = who.family if not who.female else names.family_name(rng)
            return f"{proc.ten_thu_tuc} cho cháu {names.child_of(rng, family)}"
        if code == "HT-KH-01":
            partner = names.person(rng, who.birth_year - 5, who.birth_year + 5, female=not who.female)
            groom, bride = (partner, who) if who.female else (who, partner)
            return f"Đăng ký kết hôn giữa anh {groom.full_name} và chị {bride.full_name}"
        if code == "HT-KT-01":
            deceased = names.person(rng, 1925, 1970)
            return f"Đăng ký khai tử cho {'bà' if deceased.female else 'ông'} {deceased.full_name}"
        if code.startswith("TM-KM"):
            program = _PROMOTIONS[int(rng.random() * len(_PROMOTIONS))]
            return f"{proc.ten_thu_tuc}: chương trình \"{program}\" của {owner}"
        if code.startswith("DB-GPLX"):
            grade = _LICENCE_CLASSES[int(rng.random() * len(_LICENCE_CLASSES))]
            return f"{proc.ten_thu_tuc} hạng {grade} cho {'bà' if who.female else 'ông'} {who.full_name}"
        return f"{proc.ten_thu_tuc} - {owner}"


def _opt(ts: int | None) -> str | None:
    return None if ts is None else iso(ts)


def _step_text(status: int, previous: int, role: int, channel: int, source: str, division: str,
               by_post: bool, reason: str) -> str:
    if status == NEW:
        return ("Nộp hồ sơ trực tuyến trên Cổng Dịch vụ công quốc gia" if source == "dvcqg"
                else "Nộp hồ sơ trực tuyến trên Hệ thống thông tin giải quyết thủ tục hành chính của tỉnh")
    if status == RECEIVING:
        return _TEXT[RECEIVING][channel].format(div=division)
    if status == DENIED:
        return f"Từ chối tiếp nhận hồ sơ: {reason}"
    if status == PROCESSING:
        if previous == WAITING:
            return f"Tiếp nhận hồ sơ bổ sung, chuyển {division} tiếp tục xử lý"
        if previous == PAYING:
            return "Người nộp hồ sơ đã hoàn thành nghĩa vụ tài chính, tiếp tục xử lý"
        if role == HEAD:
            return "Xem xét kết quả thẩm định, trình lãnh đạo ký duyệt"
        if role == LEADER:
            return "Ký duyệt kết quả giải quyết hồ sơ"
        return "Thụ lý, thẩm định hồ sơ"
    if status == WAITING:
        return f"Yêu cầu bổ sung hồ sơ: {reason}"
    if status == PAYING:
        return "Thông báo nghĩa vụ tài chính, đề nghị người nộp hồ sơ nộp phí, lệ phí"
    if status == CANCELLED:
        return ("Người nộp hồ sơ rút hồ sơ trên Cổng Dịch vụ công" if role == APPLICANT
                else "Tiếp nhận đơn đề nghị rút hồ sơ của người nộp hồ sơ")
    if status == UNRESOLVED:
        return f"Dừng xử lý hồ sơ: {reason}"
    if status == RELEASING:
        return "Đã có kết quả giải quyết, chờ trả cho người nộp hồ sơ"
    if by_post:
        return "Đã chuyển kết quả qua dịch vụ bưu chính công ích"
    return "Đã trả kết quả trực tiếp tại Bộ phận Một cửa"


def _split_ddl(ddl: str) -> tuple[str, list[str]]:
    """Tables (with their UNIQUE constraints) apart from secondary indexes, to build those last.

    Index statements in ``schema.DDL`` are one line each; table bodies hold comments with ``;``.
    """
    indexes = _INDEX_LINE.findall(ddl)
    return _INDEX_LINE.sub("", ddl), indexes


def _static_rows(geo: Geography, procs: tuple[Procedure, ...]) -> tuple[list[tuple[Any, ...]], ...]:
    agencies = [(n, a.ma_don_vi, a.ten_don_vi, a.cap, a.valid_from.isoformat(),
                 a.valid_to.isoformat() if a.valid_to else None, a.successor)
                for n, a in enumerate(geo.by_key.values(), 1)]
    procedures = [(n, p.ma_thu_tuc, p.ten_thu_tuc, p.ma_tthc_qg, p.ma_linh_vuc, p.ten_linh_vuc,
                   p.so_ngay_xu_ly, int(p.unverified), CATALOGUE_UPDATED) for n, p in enumerate(procs, 1)]
    return agencies, procedures


def _ratings(conn: sqlite3.Connection, seed: int) -> list[tuple[Any, ...]]:
    """Citizens' ratings of the returned dossiers, drawn last from a generator of their own: the
    ratings came later than the rest of the sample, and adding them had to leave every other row
    of a given seed exactly as it was (tests and demos count on those)."""
    rng = Random(f"danh_gia:{seed}")
    rows: list[tuple[Any, ...]] = []
    found = conn.execute(
        "SELECT id, kenh_nop, ngay_tra, ngay_hen_tra, ngay_ket_thuc FROM ho_so"
        " WHERE trang_thai = ? AND ngay_tra IS NOT NULL ORDER BY id", (STATUS_KEYWORDS[DONE],))
    for dossier_id, channel, returned, due, finished in found:
        if rng.random() >= RATED_SHARE.get(channel, 0.4):
            continue
        moment = to_seconds(datetime.fromisoformat(returned)) + int(rng.random() * RATING_DELAY_DAYS * DAY)
        moment = min(moment, NOW)
        late = due is not None and finished is not None and finished > due
        level = rng.choices(RATING_LEVELS, _LEVEL_WEIGHTS[late])[0]
        comment = rng.choice(_COMMENTS[level]) if rng.random() < 0.3 else None
        rows.append((len(rows) + 1, dossier_id, level, iso(moment), comment, iso(moment)))
    return rows


def generate(out: str | Path, dossiers: int, seed: int = 42, *, overwrite: bool = False,
             progress: Callable[[int, int], None] | None = None, defer_indexes: bool = True) -> GenerateStats:
    """Create a new sample one-stop database at ``out`` with ``dossiers`` dossiers.

    Refuses an existing file unless ``overwrite``. ``progress(done, total)`` is called at the start,
    after every chunk of dossiers and at the end. The file appears only when complete (it is built
    under a temporary name), in WAL mode.
    """
    if dossiers < 0:
        raise ValueError(f"dossiers must be >= 0, got {dossiers}")
    started = time.perf_counter()
    target = Path(out)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a directory, not a database file")
    partial = target.with_name(target.name + ".partial")
    for leftover in (partial, Path(f"{partial}-journal")):
        leftover.unlink(missing_ok=True)

    procs = catalogue.procedures()
    geo = Geography(catalogue.agencies())
    infos = _prepare_procedures(procs)
    rng = Random(seed)
    counts = dict.fromkeys(TABLES, 0)
    if progress:
        progress(0, dossiers)

    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-131072")
        conn.execute("PRAGMA temp_store=MEMORY")
        tables, indexes = _split_ddl(DDL)
        conn.executescript(tables if defer_indexes else DDL)
        conn.execute("BEGIN")
        agency_rows, procedure_rows = _static_rows(geo, procs)
        conn.executemany("INSERT INTO don_vi VALUES (?, ?, ?, ?, ?, ?, ?)", agency_rows)
        conn.executemany("INSERT INTO thu_tuc VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", procedure_rows)
        counts["don_vi"], counts["thu_tuc"] = len(agency_rows), len(procedure_rows)
        writer = _Writer(rng, seed, infos, geo)
        submissions = _submissions(rng, dossiers, infos)
        for number, (submitted, arrival, proc_index, channel) in enumerate(submissions, 1):
            writer.dossier(number, submitted, arrival, proc_index, channel)
            if number % CHUNK == 0:
                writer.flush(conn, counts)
                if progress:
                    progress(number, dossiers)
        writer.flush(conn, counts)
        ratings = _ratings(conn, seed)
        conn.executemany("INSERT INTO danh_gia VALUES (?, ?, ?, ?, ?, ?)", ratings)
        counts["danh_gia"] = len(ratings)
        conn.execute("COMMIT")
        if defer_indexes:
            for statement in indexes:
                conn.execute(statement)
        conn.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        conn.close()
        partial.unlink(missing_ok=True)     # interrupted (or a progress callback raised): leave nothing
        raise
    conn.close()
    if overwrite:
        for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
    os.replace(partial, target)
    if progress:
        progress(dossiers, dossiers)
    return GenerateStats(target, seed, counts, time.perf_counter() - started)


def open_sample(path: str | Path) -> sqlite3.Connection:
    """Open an existing sample database (rows as ``sqlite3.Row``); a missing file is an error,
    never silently a new empty database."""
    location = Path(path)
    if not location.is_file():
        raise FileNotFoundError(f"no sample database at {location}")
    conn = sqlite3.connect(f"file:{location}?mode=rw", uri=True)
    conn.row_factory = sqlite3.Row
    return conn

