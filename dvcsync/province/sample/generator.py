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

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from . import catalogue, names
from .calendar import (
    BASE,
    DAY,
    DAY_YYMMDD,
    day_number,
    iso,
    to_seconds,
    yymmdd,
)
from .catalogue import Agency, Fee, Procedure
from .common import (
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
from .lifecycle import (
    APPLICANT,
    CANCELLED,
    CREATED,
    DONE,
    HEAD,
    NEW,
    NOW,
    ONESTOP,
    ONLINE,
    PAID,
    POSTAL,
    RELEASING,
    SPECIALIST,
    Plan,
    plan_dossier,
)
from .places import REFORM_DAY, Geography, place_of
from .schema import CHANNELS, DDL, RATING_LEVELS, STATUS_KEYWORDS
from .staff import Staff, staff_for

CATALOGUE_UPDATED = "2023-12-15T08:00:00"
FILES_URL = "https://motcua.h40.example.vn/files"

TABLES = ("don_vi", "thu_tuc", "ho_so", "qua_trinh_xu_ly", "le_phi", "thanh_toan", "tai_lieu", "danh_gia")
_COMMENTS = {
    "rat_hai_long": (
        "Cán bộ hướng dẫn tận tình, trả kết quả đúng hẹn",
        "Thủ tục nhanh gọn",
        "Rất hài lòng với thái độ phục vụ",
    ),
    "hai_long": ("Giải quyết đúng hẹn", "Cần hướng dẫn rõ hơn về thành phần hồ sơ"),
    "chua_hai_long": (
        "Trả kết quả trễ hẹn",
        "Phải bổ sung giấy tờ nhiều lần",
        "Thời gian chờ tại Bộ phận Một cửa quá lâu",
    ),
}

# Sectors where a business sometimes files a procedure meant for citizens.
_MIXED_SECTORS = frozenset({"TP-CT", "TN-DD", "XD-HD", "GT-DB"})
_ORGANISATIONS = (
    "Hội Nông dân",
    "Hội Liên hiệp Phụ nữ",
    "Hội Cựu chiến binh",
    "Đoàn Thanh niên",
    "Hội Chữ thập đỏ",
)
_PROMOTIONS = (
    "Tri ân khách hàng",
    "Mừng sinh nhật",
    "Chào hè rực rỡ",
    "Mừng xuân",
    "Khai trương cửa hàng mới",
    "Mua 2 tặng 1",
    "Giờ vàng giá sốc",
    "Quay số trúng thưởng",
)
_LICENCE_CLASSES = ("B2", "B2", "B2", "C", "D", "B1", "FC", "A1")
_BANKS = ("VCB", "BIDV", "ICB", "VBA", "TCB", "MB", "ACB", "TPB", "VPB", "STB")
_INDEX_LINE = re.compile(r"^CREATE INDEX[^\n]*;[ \t]*$", re.MULTILINE)


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
class _Owner:
    """The dossier's owner (a citizen, business or organisation) and its submitter's details."""

    kind: str
    name: str
    submitter: str
    id_number: str | None
    email: str | None
    phone: str | None
    address: str
    summary: str


def _note(plan: Plan, final: int, in_transition: bool) -> str | None:
    """The clerk's note on the dossier: the merger's transition, an apology for lateness, a withdrawal."""
    notes = []
    if in_transition:
        notes.append("Hồ sơ tiếp nhận trong thời gian chuyển tiếp sau sắp xếp đơn vị hành chính")
    if (
        plan.returned is not None
        and plan.due is not None
        and plan.finished is not None
        and plan.finished > plan.due
    ):
        notes.append("Trễ hạn: đã gửi phiếu xin lỗi và hẹn lại ngày trả kết quả")
    elif final == CANCELLED:
        notes.append("Người nộp hồ sơ đề nghị rút hồ sơ")
    return "; ".join(notes) or None


class _Writer:
    """Builds the rows of each chunk of dossiers and inserts them."""

    def __init__(self, rng: Random, seed: int, infos: list[ProcInfo], geo: Geography) -> None:
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
        for table, rows, width in (
            ("ho_so", self.ho_so, 25),
            ("qua_trinh_xu_ly", self.steps, 11),
            ("le_phi", self.fees, 8),
            ("thanh_toan", self.payments, 10),
            ("tai_lieu", self.docs, 8),
        ):
            if rows:
                conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)
                counts[table] += len(rows)
                rows.clear()

    def _handler(self, info: ProcInfo, day_no: int) -> Agency:
        rng = self.rng
        day = self.dates[day_no]
        agency = self.geo.handler(rng, info.proc.cap_thuc_hien, info.proc.co_quan, day)
        in_transition = self.reform <= day_no < self.reform + TRANSITION_DAYS
        if (
            agency.cap == "xa"
            and agency.valid_to is None
            and in_transition
            and rng.random() < TRANSITION_SHARE
        ):
            # The clerk still picked the pre-merger commune: mapping must resolve it through its successor.
            agency = self.geo.predecessor(rng, agency)
        return agency

    def dossier(self, dossier_id: int, submitted: int, arrival: int, proc_index: int, channel: int) -> None:
        rng = self.rng
        info = self.infos[proc_index]
        proc = info.proc
        day_no = submitted // DAY
        agency = self._handler(info, day_no)
        home = self.geo.home(rng, agency, self.dates[day_no])
        online = channel == ONLINE
        owner = self._owner(proc, home, online)
        fee_rows, prepaid, postpaid = priced_fees(rng, proc)
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
        yymmdd_ = DAY_YYMMDD[day_no]
        so_ho_so, source, portal_code = self._identity(agency, proc, yymmdd_, online)
        by_post = (channel == POSTAL and rng.random() < 0.8) or (online and rng.random() < 0.12)
        due_text = iso(plan.due) if plan.due is not None else None
        self._steps(
            dossier_id,
            plan,
            self.staff[agency.ma_don_vi],
            proc,
            owner.submitter,
            Route(channel, source, by_post),
            due_text,
        )
        self._fees(dossier_id, fee_rows, plan)
        latest = self._payments(dossier_id, plan)
        self._documents(dossier_id, info, plan.supplemented, final)
        self.ho_so.append(
            (
                dossier_id,
                so_ho_so,
                proc.ma_thu_tuc,
                owner.name,
                owner.kind,
                owner.id_number,
                owner.phone,
                owner.email,
                owner.address,
                CHANNELS[channel],
                owner.summary,
                iso(submitted),
                _opt(plan.received),
                due_text,
                _opt(plan.finished),
                _opt(plan.returned),
                _opt(plan.refused),
                STATUS_KEYWORDS[final],
                agency.ma_don_vi,
                "buu_dien" if by_post else "tai_quay",
                source,
                portal_code,
                _note(plan, final, day_no >= self.reform and agency.valid_to is not None),
                iso(plan.steps[0][1]),
                iso(latest),
            )
        )

    def _owner(self, proc: Procedure, home: Agency, online: bool) -> _Owner:
        """Who the dossier is for and who submits it; contact details and the summary line."""
        rng = self.rng
        expected = proc.doi_tuong
        owner_type = expected
        roll = rng.random()
        if expected == "cong_dan" and proc.ma_linh_vuc in _MIXED_SECTORS and roll < 0.05:
            owner_type = "doanh_nghiep"
        elif expected == "doanh_nghiep" and roll < 0.10:
            owner_type = "cong_dan" if roll < 0.08 else "to_chuc"
        if owner_type == "cong_dan":
            who = names.person(rng, 1955, 2006)
            owner = submitter = who.full_name
            id_number: str | None = names.citizen_id(rng, who, rng.random() < 0.93)
            email = names.personal_email(rng, who) if rng.random() < (0.75 if online else 0.35) else None
        elif owner_type == "doanh_nghiep":
            company = names.business(rng, COMPANY_FORM.get(proc.ma_thu_tuc))
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
        address = names.street_address(rng, place_of(home))
        summary = self._summary(proc, owner, who)
        return _Owner(owner_type, owner, submitter, id_number, email, phone, address, summary)

    def _identity(
        self,
        agency: Agency,
        proc: Procedure,
        yymmdd_: str,
        online: bool,
    ) -> tuple[str, str, str | None]:
        """The record's number, where it was submitted and its portal code (``None`` when local)."""
        serial_key = (agency.ma_qg, yymmdd_)
        serial = self.serials.get(serial_key, 0) + 1
        self.serials[serial_key] = serial
        so_ho_so = f"{agency.ma_qg}-{yymmdd_}-{serial:04d}"
        # Submitted on the national portal: only for procedures the portal knows (a national code).
        if online and self.rng.random() < 0.4 and proc.ma_tthc_qg:
            portal_serial = self.portal_serials.get(yymmdd_, 0) + 1
            self.portal_serials[yymmdd_] = portal_serial
            return so_ho_so, "dvcqg", f"G22.99-{yymmdd_}-{portal_serial:06d}"
        return so_ho_so, "mot_cua", None

    def _steps(
        self,
        dossier_id: int,
        plan: Plan,
        staff: Staff,
        proc: Procedure,
        submitter: str,
        route: Route,
        due_text: str | None,
    ) -> None:
        rng = self.rng
        specialist = staff.specialists[int(rng.random() * len(staff.specialists))]
        leader, leader_title = staff.leaders[0] if rng.random() < 0.75 else staff.leaders[1]
        if staff.heads:
            head, head_title = staff.heads[int(rng.random() * len(staff.heads))], staff.head_title
        else:  # a small commune: the vice-chair reviews, the chair signs
            (head, head_title), (leader, leader_title) = staff.leaders
        division = staff.division(proc.ma_linh_vuc)
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
            text = step_text(
                status, previous_status, role, route.channel, route.source, division, route.by_post, reason
            )
            self.step_id += 1
            self.steps.append(
                (
                    self.step_id,
                    dossier_id,
                    number,
                    actor[:50],
                    title,
                    unit,
                    text,
                    STATUS_KEYWORDS[status],
                    iso(moment),
                    iso(previous_time),
                    due_text if status != NEW else None,
                )
            )
            previous_status, previous_time = status, moment

    def _fees(self, dossier_id: int, fee_rows: list[tuple[Fee, int]], plan: Plan) -> None:
        for fee, amount in fee_rows:
            settled = (fee.hinh_thuc_thu == "thu_truoc" and plan.prepaid) or (
                fee.hinh_thuc_thu == "thu_sau" and plan.postpaid
            )
            self.fee_id += 1
            self.fees.append(
                (
                    self.fee_id,
                    dossier_id,
                    fee.ma_phi,
                    fee.ten_phi,
                    fee.loai_phi,
                    fee.hinh_thuc_thu,
                    amount,
                    int(settled and amount > 0),
                )
            )

    def _payments(self, dossier_id: int, plan: Plan) -> int:
        """The dossier's payment rows; the latest moment of the dossier, payments included."""
        rng = self.rng
        latest = plan.steps[-1][1]
        for amount, state, created, settled_at, _phase in plan.payments:
            self.payment_id += 1
            reference = f"H40TT{yymmdd(created)}{self.payment_id:07d}"
            if state == CREATED:
                row: tuple[Any, ...] = (
                    self.payment_id,
                    dossier_id,
                    reference,
                    amount,
                    "created",
                    None,
                    None,
                    iso(created),
                    None,
                    None,
                )
                latest = max(latest, created)
            else:
                assert settled_at is not None
                bank = _BANKS[int(rng.random() * len(_BANKS))]
                paid = state == PAID
                row = (
                    self.payment_id,
                    dossier_id,
                    reference,
                    amount,
                    "paid" if paid else "failed",
                    f"FT{yymmdd(settled_at)}{int(rng.random() * 1e8):08d}" if paid else None,
                    bank,
                    iso(created),
                    iso(settled_at),
                    f"bienlai/{reference}.pdf" if paid else None,
                )
                latest = max(latest, settled_at)
            self.payments.append(row)
        return latest

    def _documents(self, dossier_id: int, info: ProcInfo, supplemented: bool, final: int) -> None:
        rng = self.rng
        comps = [c for c in info.components if not c[3] or rng.random() < 0.5]
        replaced = int(rng.random() * len(comps)) if supplemented and comps else -1
        digitised = rng.random() < 0.6
        for k, (code, file_name, file_slug, _optional) in enumerate(comps):
            self.doc_id += 1
            self.docs.append(
                (
                    self.doc_id,
                    dossier_id,
                    "nop",
                    file_name,
                    code if rng.random() < 0.85 else "",
                    f"{FILES_URL}/{self.doc_id}/{file_slug}.pdf",
                    int(digitised),
                    int(k == replaced),
                )
            )
        if replaced >= 0:
            code, file_name, file_slug, _optional = comps[replaced]
            self.doc_id += 1
            self.docs.append(
                (
                    self.doc_id,
                    dossier_id,
                    "nop",
                    f"Bổ sung - {file_name}",
                    code,
                    f"{FILES_URL}/{self.doc_id}/bo-sung-{file_slug}.pdf",
                    1,
                    0,
                )
            )
        if final in (RELEASING, DONE):
            self.doc_id += 1
            self.docs.append(
                (
                    self.doc_id,
                    dossier_id,
                    "ket_qua",
                    info.result_file,
                    info.proc.ma_ket_qua if rng.random() < 0.8 else "",
                    f"{FILES_URL}/{self.doc_id}/{info.result_slug}.pdf",
                    1,
                    0,
                )
            )

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
            return f'{proc.ten_thu_tuc}: chương trình "{program}" của {owner}'
        if code.startswith("DB-GPLX"):
            grade = _LICENCE_CLASSES[int(rng.random() * len(_LICENCE_CLASSES))]
            return f"{proc.ten_thu_tuc} hạng {grade} cho {'bà' if who.female else 'ông'} {who.full_name}"
        return f"{proc.ten_thu_tuc} - {owner}"


def _opt(ts: int | None) -> str | None:
    return None if ts is None else iso(ts)


def _split_ddl(ddl: str) -> tuple[str, list[str]]:
    """Tables (with their UNIQUE constraints) apart from secondary indexes, to build those last.

    Index statements in ``schema.DDL`` are one line each; table bodies hold comments with ``;``.
    """
    indexes = _INDEX_LINE.findall(ddl)
    return _INDEX_LINE.sub("", ddl), indexes


def _static_rows(geo: Geography, procs: tuple[Procedure, ...]) -> tuple[list[tuple[Any, ...]], ...]:
    agencies = [
        (
            n,
            a.ma_don_vi,
            a.ten_don_vi,
            a.cap,
            a.valid_from.isoformat(),
            a.valid_to.isoformat() if a.valid_to else None,
            a.successor,
        )
        for n, a in enumerate(geo.by_key.values(), 1)
    ]
    procedures = [
        (
            n,
            p.ma_thu_tuc,
            p.ten_thu_tuc,
            p.ma_tthc_qg,
            p.ma_linh_vuc,
            p.ten_linh_vuc,
            p.so_ngay_xu_ly,
            int(p.unverified),
            CATALOGUE_UPDATED,
        )
        for n, p in enumerate(procs, 1)
    ]
    return agencies, procedures


def _ratings(conn: sqlite3.Connection, seed: int) -> list[tuple[Any, ...]]:
    """Citizens' ratings of the returned dossiers, drawn last from a generator of their own: the
    ratings came later than the rest of the sample, and adding them had to leave every other row
    of a given seed exactly as it was (tests and demos count on those)."""
    rng = Random(f"danh_gia:{seed}")
    rows: list[tuple[Any, ...]] = []
    found = conn.execute(
        "SELECT id, kenh_nop, ngay_tra, ngay_hen_tra, ngay_ket_thuc FROM ho_so"
        " WHERE trang_thai = ? AND ngay_tra IS NOT NULL ORDER BY id",
        (STATUS_KEYWORDS[DONE],),
    )
    for dossier_id, channel, returned, due, finished in found:
        if rng.random() >= RATED_SHARE.get(channel, 0.4):
            continue
        moment = to_seconds(datetime.fromisoformat(returned)) + int(rng.random() * RATING_DELAY_DAYS * DAY)
        moment = min(moment, NOW)
        late = due is not None and finished is not None and finished > due
        level = rng.choices(RATING_LEVELS, LEVEL_WEIGHTS[late])[0]
        comment = rng.choice(_COMMENTS[level]) if rng.random() < 0.3 else None
        rows.append((len(rows) + 1, dossier_id, level, iso(moment), comment, iso(moment)))
    return rows


def generate(
    out: str | Path,
    dossiers: int,
    seed: int = 42,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    defer_indexes: bool = True,
) -> GenerateStats:
    """Create a new sample one-stop database at ``out`` with ``dossiers`` dossiers.

    Refuses an existing file unless ``overwrite``. ``progress(done, total)`` is called at the start,
    after every chunk of dossiers and at the end. The file appears only when complete (it is built
    under a temporary name), in WAL mode.
    """
    if dossiers < 0:
        raise ValueError(f"dossiers must be >= 0, got {dossiers}")
    started = time.perf_counter()
    target, partial = claim(out, overwrite)
    for leftover in (partial, Path(f"{partial}-journal")):
        leftover.unlink(missing_ok=True)

    procs = catalogue.procedures()
    geo = Geography(catalogue.agencies())
    infos = prepare_procedures(procs)
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
        drawn = submissions(rng, dossiers, infos)
        for number, (submitted, arrival, proc_index, channel) in enumerate(drawn, 1):
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
        partial.unlink(missing_ok=True)  # interrupted (or a progress callback raised): leave nothing
        raise
    conn.close()
    publish(partial, target, overwrite)
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
