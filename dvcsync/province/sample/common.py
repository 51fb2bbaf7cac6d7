"""What the two sample generators share: the same province, the same dossiers.

The one-stop sample (``generator``) and the OpenCPS sample (``opencps.generator``) draw the same
submissions from the same catalogue and lifecycle, price fees alike, word the history alike and
write their file the same way (under a temporary name that replaces the target when complete).
Each keeps its own tables and columns.
"""

from __future__ import annotations

import os
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from pathlib import Path
from random import Random

from . import names
from .calendar import DAY, IS_WORKDAY, OFFICE_OPEN, OFFICE_SPAN, day_number
from .catalogue import Fee, Procedure
from .lifecycle import (
    APPLICANT,
    CANCELLED,
    DENIED,
    DIRECT,
    HEAD,
    LEADER,
    NEW,
    NOW,
    ONLINE,
    PAYING,
    POSTAL,
    PROCESSING,
    RECEIVING,
    RELEASING,
    UNRESOLVED,
    WAITING,
)
from .schema import CHANNELS

FIRST_DAY = date(2024, 1, 1)
LAST_DAY = date(2026, 11, 15)
TRANSITION_DAYS = 14  # first days after the merger when some clerks still pick the old commune
TRANSITION_SHARE = 0.2
UNMAPPED_SHARE = 0.03  # dossiers on a local procedure with no national code
CHUNK = 2_000  # dossiers per executemany round (and per progress report)

# Citizens' ratings of returned dossiers: share rated, how long after the return, level weights
# (on time, late). A late dossier is rated worse, so the monthly figures vary as in real life.
RATED_SHARE = {"truc_tuyen": 0.7, "truc_tiep": 0.45, "buu_chinh": 0.3}
RATING_DELAY_DAYS = 12
LEVEL_WEIGHTS = {False: (0.46, 0.46, 0.08), True: (0.15, 0.45, 0.40)}

# How often each procedure is used, relative to 1.0 (the rest by sector, default 1.2).
_PROCEDURE_WEIGHT = {
    "HT-KS-01": 14.0,
    "CT-BS-01": 20.0,
    "CT-CK-01": 6.0,
    "DB-GPLX-01": 8.0,
    "TM-KM-01": 4.0,
    "HT-KT-01": 5.0,
    "HT-KH-01": 5.0,
    "HT-XNHN-01": 6.0,
    "DKKD-HKD-01": 4.0,
    "DD-DKBD-01": 6.0,
}
_SECTOR_WEIGHT = {"TP-HT": 3.0, "TP-CT": 4.0, "TN-DD": 3.0, "TC-DKKD": 2.0, "GT-DB": 2.0, "LD-BTXH": 2.0}
# Fees charged per page or per copy: (low, high) units.
_PER_UNIT = {"PHI-CT-BS": (1, 12), "PHI-HT-BS": (1, 3), "PHI-GD-BS": (1, 3)}
# Procedures with a financial obligation collected mid-way (land-use tax) even when no fee is listed.
_FINANCIAL_OBLIGATION = frozenset({"DD-CMD-01"})
# Procedures whose name says what kind of company files them.
COMPANY_FORM = {"DKKD-DN-01": "Công ty TNHH MTV", "DKKD-DN-02": "Công ty Cổ phần"}
_TEXT = {
    RECEIVING: (
        "Tiếp nhận hồ sơ trực tiếp, chuyển {div} thụ lý",
        "Kiểm tra, tiếp nhận hồ sơ trực tuyến, chuyển {div} thụ lý",
        "Tiếp nhận hồ sơ qua dịch vụ bưu chính công ích, chuyển {div} thụ lý",
    ),
}


@dataclass(frozen=True, slots=True)
class ProcInfo:
    proc: Procedure
    channels: tuple[int, ...]
    needs_paying: bool
    components: tuple[tuple[str, str, str, bool], ...]  # (code, file name, url slug, optional)
    result_file: str
    result_slug: str


@dataclass(frozen=True, slots=True)
class Route:
    """How a dossier came and goes: its channel, where it was submitted, a result sent by post."""

    channel: int
    source: str
    by_post: bool


def prepare_procedures(procs: tuple[Procedure, ...]) -> list[ProcInfo]:
    infos = []
    for proc in procs:
        needs_paying = proc.ma_thu_tuc in _FINANCIAL_OBLIGATION or any(
            f.hinh_thuc_thu == "thu_sau" and f.so_tien > 0 for f in proc.phi_le_phi
        )
        comps = tuple(
            (
                c.ma_thanh_phan,
                f"{c.ten_thanh_phan}.pdf",
                names.slug(c.ten_thanh_phan)[:80],
                "(nếu có)" in c.ten_thanh_phan,
            )
            for c in proc.thanh_phan_ho_so
        )
        infos.append(
            ProcInfo(
                proc,
                tuple(CHANNELS.index(k) for k in proc.kenh),
                needs_paying,
                comps,
                f"{proc.ten_ket_qua}.pdf",
                names.slug(proc.ten_ket_qua)[:80],
            )
        )
    return infos


def _procedure_picker(procs: tuple[Procedure, ...]) -> Callable[[Random], int]:
    mapped = [i for i, p in enumerate(procs) if p.ma_tthc_qg]
    unmapped = [i for i, p in enumerate(procs) if not p.ma_tthc_qg]
    weights = [
        _PROCEDURE_WEIGHT.get(procs[i].ma_thu_tuc, _SECTOR_WEIGHT.get(procs[i].ma_linh_vuc, 1.2))
        for i in mapped
    ]
    cumulative = list(accumulate(weights))
    total = cumulative[-1]

    def pick(rng: Random) -> int:
        if unmapped and rng.random() < UNMAPPED_SHARE:
            return unmapped[int(rng.random() * len(unmapped))]
        return mapped[bisect(cumulative, rng.random() * total)]

    return pick


def submissions(rng: Random, n: int, infos: list[ProcInfo]) -> list[tuple[int, int, int, int]]:
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


def priced_fees(rng: Random, proc: Procedure) -> tuple[list[tuple[Fee, int]], int, int]:
    """Each fee with its amount (per unit where it is charged so), and the up-front and later sums."""
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
    return fee_rows, prepaid, postpaid


def step_text(
    status: int,
    previous: int,
    role: int,
    channel: int,
    source: str,
    division: str,
    by_post: bool,
    reason: str,
) -> str:
    if status == NEW:
        return (
            "Nộp hồ sơ trực tuyến trên Cổng Dịch vụ công quốc gia"
            if source == "dvcqg"
            else "Nộp hồ sơ trực tuyến trên Hệ thống thông tin giải quyết thủ tục hành chính của tỉnh"
        )
    if status == RECEIVING:
        return _TEXT[RECEIVING][channel].format(div=division)
    if status == DENIED:
        return f"Từ chối tiếp nhận hồ sơ: {reason}"
    if status == PROCESSING:
        return _processing_text(previous, role, division)
    if status == WAITING:
        return f"Yêu cầu bổ sung hồ sơ: {reason}"
    if status == PAYING:
        return "Thông báo nghĩa vụ tài chính, đề nghị người nộp hồ sơ nộp phí, lệ phí"
    if status == CANCELLED:
        return (
            "Người nộp hồ sơ rút hồ sơ trên Cổng Dịch vụ công"
            if role == APPLICANT
            else "Tiếp nhận đơn đề nghị rút hồ sơ của người nộp hồ sơ"
        )
    if status == UNRESOLVED:
        return f"Dừng xử lý hồ sơ: {reason}"
    if status == RELEASING:
        return "Đã có kết quả giải quyết, chờ trả cho người nộp hồ sơ"
    if by_post:
        return "Đã chuyển kết quả qua dịch vụ bưu chính công ích"
    return "Đã trả kết quả trực tiếp tại Bộ phận Một cửa"


def _processing_text(previous: int, role: int, division: str) -> str:
    if previous == WAITING:
        return f"Tiếp nhận hồ sơ bổ sung, chuyển {division} tiếp tục xử lý"
    if previous == PAYING:
        return "Người nộp hồ sơ đã hoàn thành nghĩa vụ tài chính, tiếp tục xử lý"
    if role == HEAD:
        return "Xem xét kết quả thẩm định, trình lãnh đạo ký duyệt"
    if role == LEADER:
        return "Ký duyệt kết quả giải quyết hồ sơ"
    return "Thụ lý, thẩm định hồ sơ"


def claim(out: str | Path, overwrite: bool) -> tuple[Path, Path]:
    """The target file and the temporary one it is built under; refuses an existing target unless
    ``overwrite``, and a directory."""
    target = Path(out)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a directory, not a database file")
    return target, target.with_name(target.name + ".partial")


def publish(partial: Path, target: Path, overwrite: bool) -> None:
    """The complete file replaces the target (and a replaced target's stale WAL files go)."""
    if overwrite:
        for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
    os.replace(partial, target)
