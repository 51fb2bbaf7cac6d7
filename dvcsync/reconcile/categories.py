"""The mismatch categories a reconciler sees, in the order the report lists them.

Keys are fixed (the JSON report, ``reconcile repair CATEGORY`` and the docs use them); labels are
Vietnamese first because the people who read the report are, with English beside them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    key: str
    label_vi: str
    label_en: str
    side: str  # "dossier" | "payment": which comparison finds it
    repairable: bool  # `dvcsync reconcile repair KEY` acts on it
    action_vi: str  # what a person does about it, shown in the report
    action_en: str

    @property
    def repair_command(self) -> str | None:
        return f"dvcsync reconcile repair {self.key}" if self.repairable else None


_ALL = (
    Category(
        "missing_on_portal",
        "Thiếu trên Cổng DVCQG",
        "Missing on the portal",
        "dossier",
        True,
        "Đẩy lại hồ sơ và toàn bộ quá trình xử lý",
        "Push the dossier and its history again",
    ),
    Category(
        "unknown_to_province",
        "Có trên Cổng, không có ở một cửa",
        "On the portal, unknown to the province",
        "dossier",
        False,
        "Kiểm tra hồ sơ bị xoá hoặc đổi số ở hệ thống một cửa",
        "Look for a dossier deleted or renumbered",
    ),
    Category(
        "status_differs",
        "Trạng thái khác nhau",
        "Status differs",
        "dossier",
        True,
        "Đồng bộ lại hồ sơ (ghi đè trên Cổng)",
        "Sync the dossier again (replaces the portal's copy)",
    ),
    Category(
        "dates_differ",
        "Ngày tháng khác nhau",
        "Dates differ",
        "dossier",
        True,
        "Đồng bộ lại hồ sơ (ghi đè trên Cổng)",
        "Sync the dossier again (replaces the portal's copy)",
    ),
    Category(
        "fees_differ",
        "Phí, lệ phí khác nhau",
        "Fees differ",
        "dossier",
        True,
        "Đồng bộ lại hồ sơ (ghi đè trên Cổng)",
        "Sync the dossier again (replaces the portal's copy)",
    ),
    Category(
        "history_missing",
        "Thiếu bước xử lý trên Cổng",
        "History entries missing on the portal",
        "dossier",
        True,
        "Gửi bổ sung các bước còn thiếu",
        "Send only the missing entries",
    ),
    Category(
        "history_duplicated",
        "Bước xử lý bị ghi trùng trên Cổng",
        "History entries stored twice",
        "dossier",
        False,
        "Đề nghị Cổng DVCQG xoá bản ghi trùng",
        "Ask the portal's operator to remove the duplicates",
    ),
    Category(
        "history_portal_only",
        "Bước xử lý chỉ có trên Cổng",
        "History entries only on the portal",
        "dossier",
        False,
        "Đối chiếu với hệ thống tích hợp trước; Cổng giữ nguyên các bước này",
        "Check with the previous integration; the portal keeps these entries",
    ),
    Category(
        "stale",
        "Đã thay đổi nhưng chưa đồng bộ",
        "Changed but not synced",
        "dossier",
        True,
        "Đưa lại vào hàng đợi đồng bộ; kiểm tra dịch vụ dvcsync",
        "Re-enqueue; check that the service runs",
    ),
    Category(
        "quarantined",
        "Dữ liệu không hợp lệ (cách ly)",
        "Quarantined (invalid data)",
        "dossier",
        False,
        "Sửa trường được nêu ở hệ thống một cửa",
        "Fix the named field in the one-stop system",
    ),
    Category(
        "dead_letter",
        "Gửi thất bại nhiều lần",
        "Dead letter (delivery gave up)",
        "dossier",
        True,
        "Xem lỗi, sửa nguyên nhân rồi gửi lại",
        "Read the error, fix the cause, send again",
    ),
    Category(
        "portal_dossier_not_taken_in",
        "Hồ sơ nộp trên Cổng chưa tiếp nhận",
        "Portal-submitted dossier not taken in",
        "dossier",
        False,
        "Xem lỗi tiếp nhận, sửa và chạy lại đồng bộ nhận",
        "Read the take-in error, fix it, pull again",
    ),
    Category(
        "withdrawal_conflict",
        "Xung đột rút hồ sơ",
        "Withdrawal conflict",
        "dossier",
        False,
        "Cán bộ quyết định: dừng xử lý hoặc liên hệ công dân",
        "An officer decides: stop or call",
    ),
    Category(
        "paid_on_platform_only",
        "Đã thanh toán trên nền tảng, một cửa chưa ghi nhận",
        "Paid on the platform, not in the province",
        "payment",
        True,
        "Tra cứu (QUERY) và ghi nhận kết quả thanh toán",
        "QUERY the platform and apply the paid result",
    ),
    Category(
        "paid_in_province_only",
        "Một cửa ghi đã thu, nền tảng chưa thành công",
        "Paid in the province, failed or pending on the platform",
        "payment",
        False,
        "Đối chiếu chứng từ với ngân hàng",
        "Check the receipt with the bank",
    ),
    Category(
        "amount_differs",
        "Số tiền khác nhau",
        "Amount differs",
        "payment",
        False,
        "Đối chiếu biên lai và khoản phải nộp",
        "Compare the receipt with the fees due",
    ),
    Category(
        "paid_twice",
        "Một hồ sơ thanh toán hai lần",
        "One dossier paid twice",
        "payment",
        False,
        "Làm thủ tục hoàn tiền cho công dân",
        "Start a refund for the citizen",
    ),
)

CATEGORIES: dict[str, Category] = {c.key: c for c in _ALL}
KEYS: tuple[str, ...] = tuple(CATEGORIES)


def category(key: str) -> Category:
    try:
        return CATEGORIES[key]
    except KeyError:
        raise ValueError(f"unknown category {key!r}; one of: {', '.join(KEYS)}") from None


__all__ = ["CATEGORIES", "KEYS", "Category", "category"]
