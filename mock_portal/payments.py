"""The national payment platform (``payment-platform.md``): INIT, QUERY, GET_BILL, the pay page,
settlement by an admin action, the signed result callback and the daily statement.

Signatures are checked over the fields exactly as sent ("values go in as sent"), so a client that
formats an amount differently from what it signed is caught, as the real platform would.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pydantic import ValidationError

from dvcsync.contract import (
    PROTOCOL_VERSION,
    GetBillRequest,
    InitRequest,
    PaymentCallback,
    QueryRequest,
    StatementRow,
    now_wire,
    sign,
    verify,
)

from . import replies as r
from .callbacks import CallbackDeliverer
from .config import MockConfig
from .pdf import receipt_pdf
from .stats import Stats
from .store import Store

OK = "00"
INVALID = "01"
BAD_SIGNATURE = "02"
UNKNOWN_PARTNER = "03"
DUPLICATE_REF = "04"
AMOUNT_MISMATCH = "05"
UNKNOWN_REF = "06"
NOT_PAID = "07"

STATE_NAMES = {"1": "paid", "3": "pending", "4": "failed"}


class PaymentError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PaymentPlatform:
    def __init__(self, config: MockConfig, store: Store, stats: Stats, deliverer: CallbackDeliverer) -> None:
        self.config = config
        self.store = store
        self.stats = stats
        self.deliverer = deliverer
        self._transactions = 0

    # ------------------------------------------------------------------ checks shared by messages

    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PaymentError(INVALID, f"Thân yêu cầu không phải JSON hợp lệ: {exc}") from None
        if not isinstance(body, dict):
            raise PaymentError(INVALID, "Thân yêu cầu phải là một đối tượng JSON")
        return body

    def _check(self, kind: str, body: dict[str, Any]) -> None:
        if body.get("LoaiBanTin") != kind:
            raise PaymentError(INVALID, f"LoaiBanTin = {body.get('LoaiBanTin')!r}: phải là {kind!r}")
        if body.get("MaDoiTac") != self.config.credentials.partner_code:
            raise PaymentError(UNKNOWN_PARTNER, f"MaDoiTac {body.get('MaDoiTac')!r} không được cấp")
        signature = body.get("MaXacThuc")
        secret = self.config.credentials.payment_secret
        if not isinstance(signature, str) or not verify(kind, body, secret, signature):  # type: ignore[arg-type]
            raise PaymentError(BAD_SIGNATURE, "Sai mã xác thực (MaXacThuc)")

    def _count(self, outcome: str) -> None:
        self.stats.count("payment", "ok" if outcome == OK else f"error:{outcome}")

    # ------------------------------------------------------------------ INIT

    def init(self, raw: bytes, base_url: str) -> dict[str, Any]:
        with self.store.lock:
            return self._init_locked(raw, base_url)

    def _init_locked(self, raw: bytes, base_url: str) -> dict[str, Any]:
        try:
            body = self._parse(raw)
        except PaymentError as exc:
            self._count(exc.code)
            return {"error_code": "1", "message": exc.message}
        ref = body.get("MaThamChieu") if isinstance(body.get("MaThamChieu"), str) else None
        try:
            result = self._init(body, base_url)
        except PaymentError as exc:
            result = {"MaLoi": exc.code, "MoTaLoi": exc.message, "MaThamChieu": ref, "UrlThanhToan": ""}
        self._count(result["MaLoi"])
        if self.config.payment_reply_form == "flat":
            return result
        return {"error_code": "0", "message": json.dumps(result, ensure_ascii=False)}

    def _init(self, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        try:
            request = InitRequest.model_validate(body)
        except ValidationError as exc:
            raise PaymentError(INVALID, r.describe(exc, body.get("MaThamChieu"))) from None
        self._check("INIT", body)
        bill = request.ThongTinBienLai
        if bill is None or not bill.DSKhoanNop:
            raise PaymentError(INVALID, "ThongTinBienLai.DSKhoanNop: thiếu danh sách khoản nộp")
        if bill.total != request.SoTien:
            raise PaymentError(
                AMOUNT_MISMATCH, f"Tổng DSKhoanNop ({bill.total}) khác SoTien ({request.SoTien})"
            )
        if self.store.payment(request.MaThamChieu) is not None:
            raise PaymentError(DUPLICATE_REF, f"MaThamChieu {request.MaThamChieu} đã được khởi tạo")
        self.store.insert_payment(
            request.MaThamChieu,
            bill.MaHoSo,
            request.SoTien,
            json.dumps(body, ensure_ascii=False),
            request.ThoiGianGD,
        )
        self.store.commit()
        return {
            "MaLoi": OK,
            "MoTaLoi": "Khởi tạo giao dịch thành công",
            "MaThamChieu": request.MaThamChieu,
            "UrlThanhToan": f"{base_url.rstrip('/')}/payment/pay/{request.MaThamChieu}",
        }

    # ------------------------------------------------------------------ QUERY and GET_BILL

    def query(self, raw: bytes) -> dict[str, Any]:
        try:
            body = self._parse(raw)
            try:
                QueryRequest.model_validate(body)
            except ValidationError as exc:
                raise PaymentError(INVALID, r.describe(exc, body.get("MaThamChieu"))) from None
            self._check("QUERY", body)
            payment = self.store.payment(body["MaThamChieu"])
            if payment is None:
                raise PaymentError(UNKNOWN_REF, f"Không tìm thấy giao dịch {body['MaThamChieu']}")
        except PaymentError as exc:
            self._count(exc.code)
            return {"MaLoi": exc.code, "MoTaLoi": exc.message}
        self._count(OK)
        init = payment["init_body"]
        reply = {
            "MaLoi": OK,
            "MoTaLoi": "Thành công",
            "MaDoiTac": self.config.credentials.partner_code,
            "MaThamChieu": payment["ma_tham_chieu"],
            "ThoiGianGD": payment["thoi_gian_gd"],
            "SoTien": payment["so_tien"],
            "MaTienTe": init.get("MaTienTe", "VND"),
            "MaGiaoDich": payment["ma_giao_dich"],
            "MaNganHang": payment["ma_ngan_hang"],
            "ThongTinGiaoDich": init.get("ThongTinGiaoDich", ""),
            "TrangThaiGD": payment["state"],
        }
        # The reply's signature order is unpublished (the adapter carries it, never checks it):
        # the mock signs it like a callback whose LoaiBanTin is QUERY.
        reply["MaXacThuc"] = sign(
            "CALLBACK", {**reply, "LoaiBanTin": "QUERY"}, self.config.credentials.payment_secret
        )
        return reply

    def bill(self, raw: bytes) -> bytes | dict[str, Any]:
        try:
            body = self._parse(raw)
            try:
                GetBillRequest.model_validate(body)
            except ValidationError as exc:
                raise PaymentError(INVALID, r.describe(exc, body.get("MaThamChieu"))) from None
            self._check("GET_BILL", body)
            payment = self.store.payment(body["MaThamChieu"])
            if payment is None:
                raise PaymentError(UNKNOWN_REF, f"Không tìm thấy giao dịch {body['MaThamChieu']}")
            if payment["state"] != "1":
                raise PaymentError(NOT_PAID, f"Giao dịch {body['MaThamChieu']} chưa được thanh toán")
        except PaymentError as exc:
            self._count(exc.code)
            return {"MaLoi": exc.code, "MoTaLoi": exc.message}
        self._count(OK)
        init = payment["init_body"]
        bill = init.get("ThongTinBienLai") or {}
        return receipt_pdf(
            "BIEN LAI THU PHI, LE PHI DIEN TU",
            [
                ("Ma tham chieu", payment["ma_tham_chieu"]),
                ("Ma giao dich", payment["ma_giao_dich"]),
                ("Ngan hang", payment["ma_ngan_hang"]),
                ("Thoi gian", payment["thoi_gian_gd"]),
                ("Ma ho so", str(bill.get("MaHoSo") or "")),
                ("Thu tuc", str(bill.get("TenTTHC") or "")),
                ("Don vi thu", str(bill.get("TenDonVi") or "")),
                ("Nguoi nop", str(bill.get("HoTenNguoiNop") or "")),
                ("So tien", f"{payment['so_tien']} VND"),
                ("Noi dung", str(init.get("ThongTinGiaoDich") or "")),
            ],
        )

    # ------------------------------------------------------------------ settlement (admin, pay page)

    def settle(self, ref: str, paid: bool, **options: Any) -> dict[str, Any]:
        """Pay or fail a created payment, then deliver the signed callback (see ``_settle``)."""
        with self.store.lock:
            return self._settle(ref, paid, **options)

    def _settle(
        self,
        ref: str,
        paid: bool,
        bank: str | None = None,
        duplicate: bool | None = None,
        delay_s: float | None = None,
        transaction: str | None = None,
        when: str | None = None,
        info: str | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """Pay or fail a created payment, then deliver the signed callback. KeyError: unknown
        reference; ValueError: already settled, or a callback field the contract refuses (a
        pydantic ValidationError; nothing is settled then). ``transaction``, ``when`` and ``info`` fix
        the callback's MaGiaoDich, ThoiGianGD and ThongTinGiaoDich (to reproduce a golden callback).
        ``deliver=False`` settles without sending the callback: "paid on the platform, but the
        province never heard" for reconciliation tests; the withheld callback is kept in
        ``admin_edits`` of the payment."""
        payment = self.store.payment(ref)
        if payment is None:
            raise KeyError(ref)
        if payment["state"] != "3":
            raise ValueError(f"Giao dịch {ref} đã {STATE_NAMES[payment['state']]}")
        self._transactions += 1
        when = when or now_wire()
        transaction = (
            transaction if transaction is not None else (f"GD{when}{self._transactions:06d}" if paid else "")
        )
        bank_code = bank or ("NCB" if paid else "")
        init = payment["init_body"]
        callback = (
            PaymentCallback(
                LoaiBanTin=self.config.callback_type,
                MaLoi=OK if paid else "01",
                MaDoiTac=self.config.credentials.partner_code,
                MaThamChieu=ref,
                SoTien=payment["so_tien"],
                MaTienTe=init.get("MaTienTe", "VND"),
                MaGiaoDich=transaction,
                MaNganHang=bank_code,
                ThoiGianGD=when,
                ThongTinGiaoDich=info if info is not None else init.get("ThongTinGiaoDich", ""),
            )
            .signed(self.config.credentials.payment_secret)
            .to_wire()
        )
        # Settled only once the callback is known to be valid: a bad ThoiGianGD stores nothing.
        self.store.settle_payment(ref, "1" if paid else "4", transaction, bank_code, when)
        if not deliver:
            self.store.add_admin_edit("payment", ref, {"action": "callback withheld", "callback": callback})
        self.store.commit()
        delivery = "none: no --callback-url"
        if not deliver:
            delivery = "withheld: deliver=false"
        elif self.config.callback_url:
            self.deliverer.schedule(
                ref,
                callback,
                duplicate=self.config.callback_duplicate if duplicate is None else duplicate,
                delay_s=self.config.callback_delay_s if delay_s is None else delay_s,
            )
            delivery = "scheduled"
        return {
            "MaThamChieu": ref,
            "TrangThaiGD": "1" if paid else "4",
            "callback": callback,
            "delivery": delivery,
        }

    def set_amount(self, ref: str, amount: int) -> None:
        """Admin (mock only): the platform's recorded amount changes, as a wrong record on its side
        would, so the statement, QUERY and later callbacks show another SoTien. KeyError: unknown."""
        with self.store.lock:
            payment = self.store.payment(ref)
            if payment is None:
                raise KeyError(ref)
            self.store.set_payment_amount(ref, amount)
            self.store.add_admin_edit(
                "payment", ref, {"action": "patch", "so_tien": {"from": payment["so_tien"], "to": amount}}
            )
            self.store.commit()

    # ------------------------------------------------------------------ statement

    def statement(self, day: str) -> list[dict[str, Any]]:
        """Payments whose transaction time (settlement, or creation while pending) falls on ``day``."""
        prefix = day.replace("-", "")
        rows = []
        for p in self.store.payments_all():
            if not p["thoi_gian_gd"].startswith(prefix):
                continue
            rows.append(
                StatementRow(
                    MaThamChieu=p["ma_tham_chieu"],
                    MaGiaoDich=p["ma_giao_dich"],
                    MaNganHang=p["ma_ngan_hang"],
                    SoTien=p["so_tien"],
                    MaTienTe=p["init_body"].get("MaTienTe", "VND"),
                    ThoiGianGD=p["thoi_gian_gd"],
                    TrangThaiGD=p["state"],
                    MaDoiTac=self.config.credentials.partner_code,
                ).to_wire()
            )
        return rows

    @staticmethod
    def statement_csv(rows: list[dict[str, Any]]) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(StatementRow.model_fields), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()


__all__ = ["PROTOCOL_VERSION", "PaymentError", "PaymentPlatform"]
