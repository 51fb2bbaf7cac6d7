"""Wire models of the national payment platform (``payment-platform.md``)."""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from ._base import WireModel
from ._codes import LoaiPhiLePhi, MaDichVu, TrangThaiGD
from ._types import IntAmount, ReplyText, StrAmount, WireDate, WireStr, code_check, to_error_code, to_str
from .signature import MessageType, sign, verify

PROTOCOL_VERSION = "1.0.6"
PAID = "00"

MaDichVuCode = Annotated[str, to_str, code_check(MaDichVu)]
LoaiPhiCode = Annotated[str, to_str, code_check(LoaiPhiLePhi)]
TrangThaiGDCode = Annotated[str, to_str, code_check(TrangThaiGD)]
# Where the code must be present (a bill's service, a statement line's state), "" is refused.
MaDichVuRequired = Annotated[str, to_str, code_check(MaDichVu, allow_empty=False)]
TrangThaiGDRequired = Annotated[str, to_str, code_check(TrangThaiGD, allow_empty=False)]


class _Signed(WireModel):
    """A message carrying ``MaXacThuc`` over the fields of ``signature.FIELD_ORDER[SIGNED_AS]``."""

    SIGNED_AS: ClassVar[MessageType | None] = None

    def signature_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def signed(self, secret: str) -> Self:
        """A copy carrying the signature of its current fields."""
        return self.model_copy(update={"MaXacThuc": self.signature(secret)})

    def signature(self, secret: str) -> str:
        return sign(self._kind(), self.signature_fields(), secret)

    def has_valid_signature(self, secret: str) -> bool:
        mac = getattr(self, "MaXacThuc", None) or ""
        return verify(self._kind(), self.signature_fields(), secret, mac)

    @classmethod
    def _kind(cls) -> MessageType:
        if cls.SIGNED_AS is not None:
            return cls.SIGNED_AS
        kind: MessageType = cls.model_fields["LoaiBanTin"].default
        return kind


class PhiLePhiBienLai(WireModel):
    LoaiPhiLePhi: LoaiPhiCode | None = None
    MaPhiLePhi: WireStr | None = None
    TenPhiLePhi: WireStr | None = None
    SoTien: StrAmount = Field(ge=0)


class KhoanNop(WireModel):
    NoiDung: WireStr
    SoTien: StrAmount = Field(ge=0)


class BienLai(WireModel):
    """Receipt data sent with INIT (not signed), and the bill the province returns on look-up."""

    MaDichVu: MaDichVuRequired = "2"
    MaDVC: WireStr | None = None
    TenDVC: WireStr | None = None
    MaTTHC: WireStr | None = None
    TenTTHC: WireStr | None = None
    MaDonVi: WireStr | None = None
    TenDonVi: WireStr | None = None
    MaHoSo: WireStr | None = None
    TKThuHuong: WireStr | None = None
    MaNHThuHuong: WireStr | None = None
    TenTKThuHuong: WireStr | None = None
    NoiDungThanhToan: WireStr | None = None
    HoTenNguoiNop: WireStr | None = None
    SoCMNDNguoiNop: WireStr | None = Field(default=None, repr=False)
    DiaChiNguoiNop: WireStr | None = None
    HuyenNguoiNop: WireStr | None = None
    TinhNguoiNop: WireStr | None = None
    PhiLePhi: list[PhiLePhiBienLai] = Field(default_factory=list)
    DSKhoanNop: list[KhoanNop] = Field(default_factory=list)
    MaTraCuuTT: WireStr | None = None

    @model_validator(mode="after")
    def _dossier_code_for_fees(self) -> BienLai:
        if self.MaDichVu == MaDichVu.PHI_LE_PHI and not self.MaHoSo:
            raise ValueError("MaHoSo is required when MaDichVu is '2' (fees of a procedure)")
        return self

    @property
    def total(self) -> int:
        return sum(item.SoTien for item in self.DSKhoanNop)


class InitRequest(_Signed):
    LoaiBanTin: Literal["INIT"] = "INIT"
    PhienBan: WireStr = PROTOCOL_VERSION
    MaDoiTac: WireStr = Field(min_length=1)
    MaThamChieu: WireStr = Field(min_length=1, max_length=100)
    SoTien: StrAmount = Field(gt=0)
    LoaiHinhThanhToan: WireStr = "PAY"
    MaKenhThanhToan: WireStr = "1"
    MaThietBi: WireStr = "1"
    NgonNgu: WireStr = "vi-VN"
    MaTienTe: WireStr = "VND"
    MaNganHang: WireStr = "PAYMENT"
    ThongTinGiaoDich: WireStr
    ThoiGianGD: WireDate = Field(min_length=14)
    Ip: WireStr
    ThongTinBienLai: BienLai | None = None
    MaXacThuc: WireStr = ""

    def signature_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"ThongTinBienLai", "MaXacThuc"})

    @field_validator("ThongTinGiaoDich")
    @classmethod
    def _no_diacritics(cls, value: str) -> str:
        if not value.isascii():
            raise ValueError(f"ThongTinGiaoDich must be plain ASCII text (no diacritics), got {value!r}")
        return value


class InitResult(WireModel):
    """The inner object of an INIT reply."""

    MaLoi: WireStr
    MoTaLoi: ReplyText = ""
    MaThamChieu: WireStr | None = None
    UrlThanhToan: WireStr | None = None


class InitReply(WireModel):
    """``{"error_code": "0", "message": "<JSON string of InitResult>"}``, or the flat form."""

    error_code: WireStr = "0"
    message: ReplyText = ""

    def result(self) -> InitResult:
        """The inner result; a ``message`` that is not its JSON (a plain-text error) is a clear error."""
        try:
            inner = json.loads(self.message)
        except ValueError:
            inner = None
        if not isinstance(inner, dict):
            raise ValueError(
                f"INIT reply (error_code {self.error_code!r}) carries no result object: "
                f"message {self.message!r}"
            )
        return InitResult.model_validate(inner)

    @classmethod
    def wrap(cls, result: InitResult) -> InitReply:
        return cls(error_code="0", message=json.dumps(result.to_wire(), ensure_ascii=False))


def parse_init_reply(body: Any) -> InitResult:
    """Accept both the wrapped and the flat (``{"MaLoi": ...}``) INIT reply."""
    if isinstance(body, dict) and "MaLoi" in body:
        return InitResult.model_validate(body)
    return InitReply.model_validate(body).result()


class QueryRequest(_Signed):
    LoaiBanTin: Literal["QUERY"] = "QUERY"
    PhienBan: WireStr = PROTOCOL_VERSION
    MaDoiTac: WireStr = Field(min_length=1)
    MaThamChieu: WireStr = Field(min_length=1)
    ThoiGianGD: WireDate = Field(min_length=14)
    MaXacThuc: WireStr = ""

    def signature_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"MaXacThuc"})


class QueryReply(WireModel):
    """QUERY answer. Its ``MaXacThuc`` field order is not published, so it is carried, not checked."""

    MaLoi: WireStr
    MoTaLoi: ReplyText = ""
    MaDoiTac: WireStr | None = None
    MaThamChieu: WireStr | None = None
    ThoiGianGD: WireDate | None = None
    SoTien: IntAmount | None = None
    MaTienTe: WireStr | None = None
    MaGiaoDich: WireStr | None = None
    MaNganHang: WireStr | None = None
    ThongTinGiaoDich: WireStr | None = None
    TrangThaiGD: TrangThaiGDCode | None = None
    MaXacThuc: WireStr | None = None


class GetBillRequest(_Signed):
    LoaiBanTin: Literal["GET_BILL"] = "GET_BILL"
    PhienBan: WireStr = PROTOCOL_VERSION
    MaDoiTac: WireStr = Field(min_length=1)
    MaThamChieu: WireStr = Field(min_length=1)
    ThoiGianGD: WireDate = Field(min_length=14)
    MaXacThuc: WireStr = ""

    def signature_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"MaXacThuc"})


class PaymentCallback(_Signed):
    """Result pushed by the platform to the province. ``LoaiBanTin`` is configurable (a choice)."""

    SIGNED_AS: ClassVar[MessageType | None] = "CALLBACK"
    LoaiBanTin: WireStr = "CONFIRM"
    MaLoi: WireStr
    MaDoiTac: WireStr
    MaThamChieu: WireStr = Field(min_length=1)
    SoTien: IntAmount = Field(ge=0)
    MaTienTe: WireStr = "VND"
    MaGiaoDich: WireStr = ""
    MaNganHang: WireStr = ""
    ThoiGianGD: WireDate = Field(min_length=14)
    ThongTinGiaoDich: WireStr = ""
    MaXacThuc: WireStr = ""

    @property
    def paid(self) -> bool:
        return self.MaLoi == PAID

    def signature_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"MaXacThuc"})


class CallbackReply(WireModel):
    """``MaLoi`` "00" accepted, "99" refused; echoes the incoming ``MaXacThuc``."""

    MaLoi: WireStr
    MoTaLoi: ReplyText = ""
    MaDoiTac: WireStr | None = None
    MaThamChieu: WireStr | None = None
    ThoiGianGD: WireDate | None = None
    MaXacThuc: WireStr | None = None


class BillLookupRequest(WireModel):
    MaHoSo: WireStr = Field(min_length=1)


class BillLookupReply(WireModel):
    """1: a bill to pay (``message`` is the bill); 0: nothing to pay; -1: unknown dossier.

    The code and the message must agree (a bill only with 1, ``[]`` only with 0 or -1): the platform
    reads the code, so a mismatched pair would tell it the wrong thing.
    """

    error_code: Annotated[Literal[1, 0, -1], to_error_code]
    message: BienLai | list[Any]

    @model_validator(mode="after")
    def _code_matches_message(self) -> BillLookupReply:
        if self.error_code == 1 and not isinstance(self.message, BienLai):
            raise ValueError(f"error_code 1 needs a bill as message, got {self.message!r}")
        if self.error_code != 1 and self.message != []:
            got = "a bill" if isinstance(self.message, BienLai) else repr(self.message)
            raise ValueError(f"error_code {self.error_code} needs message [], got {got}")
        return self


class StatementRow(WireModel):
    """One line of the platform's daily statement (a choice of ours, §4)."""

    MaThamChieu: WireStr
    MaGiaoDich: WireStr = ""
    MaNganHang: WireStr = ""
    SoTien: IntAmount
    MaTienTe: WireStr = "VND"
    ThoiGianGD: WireDate = Field(min_length=14)
    TrangThaiGD: TrangThaiGDRequired
    MaDoiTac: WireStr


__all__ = [
    "PAID",
    "PROTOCOL_VERSION",
    "BienLai",
    "BillLookupReply",
    "BillLookupRequest",
    "CallbackReply",
    "GetBillRequest",
    "InitReply",
    "InitRequest",
    "InitResult",
    "KhoanNop",
    "PaymentCallback",
    "PhiLePhiBienLai",
    "QueryReply",
    "QueryRequest",
    "StatementRow",
    "parse_init_reply",
]
