"""XML ↔ JSON mapping of the SOAP face, and the hostile-XML refusals of its parser."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from dvcsync.contract import HoSo, HoSoDaLuu, TienDo
from dvcsync.contract.wsdl import OPERATIONS, TARGET_NAMESPACE
from mock_portal.soap_schema import shipped_schema
from mock_portal.soap_xml import (
    SOAP_ENV,
    SoapFault,
    build_fault,
    build_request,
    build_response,
    operation_of,
    parse_request,
    parse_response,
    parse_untrusted,
)

# ---------------------------------------------------------------- helpers


def _step(status: str) -> dict[str, Any]:
    return TienDo.from_wire(
        {
            "MaHoSo": "000.00.01.H40-250101-0001",
            "NguoiXuLy": "Cán bộ một cửa",
            "ThoiDiemXuLy": "20250101090000",
            "NoiDungXuLy": "Tiếp nhận",
            "TrangThai": status,
        }
    ).to_wire()


def _envelope(inner: str, *, default_ns: bool = True, header: str = "") -> bytes:
    ns = ' xmlns="urn:dvcqg:lgsp:v1"' if default_ns else ""
    head = f"<soap:Header>{header}</soap:Header>" if header else ""
    return (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"{ns}>{head}<soap:Body>{inner}</soap:Body></soap:Envelope>'
    ).encode()


TAI_LIEU = {
    "TepDinhKemId": "TL-1",
    "TenTepDinhKem": "Tờ khai đăng ký khai sinh.pdf",
    "IsDeleted": "False",
    "MaThanhPhanHoSo": "TP-01",
    "DuongDanTaiTepTin": "https://motcua.example.vn/files/1?a=1&b=<2>",
    "DuocSoHoa": "1",
    "DuocTaiSuDung": "0",
    "DuocLayTuKhoDMQG": "0",
    "MaKetQuaThayThe": "",
}
LE_PHI = {
    "TenPhiLePhi": "Lệ phí",
    "MaPhiLePhi": "LP01",
    "HinhThucThu": "1",
    "Gia": "50000",
    "LoaiPhiLePhi": "2",
}


def full_dossier() -> dict[str, Any]:
    """Every field of national-portal.md §2.1, every list with two items, plus newer unknown fields."""
    second_doc = {**TAI_LIEU, "TepDinhKemId": "TL-2", "IsDeleted": "True"}
    return {
        "MaHoSo": "000.00.01.H40-250101-0001",
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "HT",
        "TenLinhVuc": "Hộ tịch",
        "SoBienNhan": "BN-0001",
        "ChuHoSo": "Nguyễn Thị Ánh Tuyết",
        "LoaiDoiTuong": "1",
        "MaDoiTuong": "",
        "SoGiayToChuHoSo": "040190192064",
        "ThongTinKhac": "Ghi chú: \"trích\" & 'dẫn'",
        "Email": "tuyet@example.vn",
        "Fax": "",
        "SoDienThoai": "0912345678",
        "TrichYeuHoSo": "Đăng ký khai sinh cho con  (hai khoảng trắng)",
        "NgayNopHoSo": "20250101080000",
        "NgayTiepNhan": "20250101083000",
        "NgayHenTra": "20250105170000",
        "NgayTra": "",
        "NgayKetThucXuLy": "",
        "NgayTuChoi": "",
        "TrangThaiHoSo": "4",
        "KenhThucHien": "2",
        "HinhThuc": "0",
        "ThongTinTra": "",
        "DonViXuLy": "UBND xã Hưng Lộc",
        "GhiChu": "",
        "DuocThanhToanTrucTuyen": "1",
        "NoiNopHoSo": "2",
        "HoSoCoThanhPhanSoHoa": "1",
        "TaiKhoanDuocXacThucVoiVNeID": "1",
        "DinhDanhCHS": [
            {"LoaiDinhDanh": "1", "SoDinhDanh": "040190192064"},
            {"LoaiDinhDanh": "2", "SoDinhDanh": "186543210"},
        ],
        "DSKetNoiCSDL": [{"MaCSDL": "CSDLQGDC"}, {"MaCSDL": "CSDLHT"}],
        "TaiLieuNop": [TAI_LIEU, second_doc],
        "DanhSachLePhi": [LE_PHI, {**LE_PHI, "MaPhiLePhi": "P02", "LoaiPhiLePhi": "1", "Gia": "0"}],
        "DanhSachTepDinhKemKhac": [
            {"TenGiayTo": "Giấy chứng sinh", "SoLuong": "1", "LoaiGiayTo": "1"},
            {"TenGiayTo": "Giấy đăng ký kết hôn", "SoLuong": "2", "LoaiGiayTo": "2"},
        ],
        "DanhSachHoSoBoSung": [
            {
                "HoSoBoSungId": "BS-1",
                "NguoiYeuCauBoSung": "Cán bộ A",
                "NoiDungBoSung": "Bổ sung bản sao",
                "NgayBoSung": "20250102090000",
                "NguoiTiepNhanBoSung": "Cán bộ B",
                "ThongTinTiepNhan": "Đã nhận",
                "NgayTiepNhanBoSung": "20250103090000",
                "TrangThaiBoSung": "1",
                "DanhSachGiayToBoSung": [TAI_LIEU, second_doc],
                "DanhSachLePhiBoSung": [LE_PHI, LE_PHI],
                "NgayHenTraTruoc": "20250105170000",
                "NgayHenTraMoi": "20250107170000",
            },
            {"HoSoBoSungId": "BS-2", "DanhSachGiayToBoSung": [TAI_LIEU]},
        ],
        "DanhSachGiayToKetQua": [
            {
                "TenGiayTo": "Giấy khai sinh",
                "MaThanhPhanHoSo": "KQ-1",
                "GiayToId": "G1",
                "DuongDanTepTinKetQua": "https://motcua.example.vn/kq/1",
                "MaGiayToKetQua": "MKQ1",
            },
            {"TenGiayTo": "Bản sao", "GiayToId": "G2"},
        ],
        # newer fields this WSDL does not declare: they pass through the lax wildcard
        "MaHoSoCu": "OLD-1",
        "ThongTinMoi": {"MaSo": "1", "Ten": "Mới"},
        "DanhSachMoi": [{"A": "1"}, {"A": "2"}],
    }


def test_full_dossier_round_trips_through_a_request() -> None:
    body = {"session": "S", "madonvi": "000.00.01.H40", "service": "DongBoHoSoMC", "isUpdating": "False"}
    body["data"] = [full_dossier(), {"MaHoSo": "X-2", "TaiLieuNop": [TAI_LIEU]}]
    operation, parsed = parse_request(build_request("DongBoHoSoMC", body))
    assert operation == "DongBoHoSoMC"
    assert parsed == {k: v for k, v in body.items() if k != "service"}


def test_the_fixture_covers_every_contract_field() -> None:
    """Guards the round trip above against the contract growing without this test noticing."""
    dossier = full_dossier()
    assert set(HoSo.model_fields) <= set(dossier)
    HoSo.from_wire(dossier)  # and it is a valid dossier


def test_a_single_item_list_stays_a_list_and_a_single_record_stays_a_record() -> None:
    body = {"session": "S", "madonvi": "M", "data": [{"MaHoSo": "A", "TaiLieuNop": [{"TepDinhKemId": "1"}]}]}
    assert parse_request(build_request("DongBoHoSoMC", body))[1] == body
    status = {"session": "S", "madonvi": "M", "type": "2", "data": {"MaHoSo": "P", "TaiLieuXuLy": [{}]}}
    assert parse_request(build_request("DongBoTrangThaiHoSo", status))[1] == status


def test_empty_elements_are_empty_strings_and_absent_ones_stay_absent() -> None:
    xml = _envelope("<TraCuuHoSo><session>S</session><madonvi/><mahoso></mahoso></TraCuuHoSo>")
    assert parse_request(xml) == ("TraCuuHoSo", {"session": "S", "madonvi": "", "mahoso": ""})


def test_unqualified_and_out_of_order_children_are_understood() -> None:
    """zeep writes qualified elements in order; a hand-written client may not, and is still heard."""
    inner = (
        '<t:DongBoHoSoMC xmlns:t="urn:dvcqg:lgsp:v1"><data><ChuHoSo>B</ChuHoSo><MaHoSo>A</MaHoSo></data>'
        "<session>S</session></t:DongBoHoSoMC>"
    )
    assert parse_request(_envelope(inner, default_ns=False))[1] == {
        "data": [{"ChuHoSo": "B", "MaHoSo": "A"}],
        "session": "S",
    }


def test_a_single_valued_element_given_twice_is_refused() -> None:
    xml = _envelope("<TraCuuHoSo><mahoso>A</mahoso><mahoso>B</mahoso></TraCuuHoSo>")
    with pytest.raises(SoapFault, match="mahoso appears more than once"):
        parse_request(xml)


def test_replies_are_written_in_schema_order_whatever_the_dict_order() -> None:
    stored = HoSoDaLuu.from_wire(full_dossier()).to_wire()
    stored["QuaTrinhXuLy"] = [_step("1"), _step("2")]
    keys = list(stored)
    random.Random(7).shuffle(keys)
    shuffled = {k: stored[k] for k in keys}
    xml = build_response("TraCuuHoSo", {"error_code": 0, "message": "", "result": [shuffled]})
    result = etree.fromstring(xml).find(f".//{{{TARGET_NAMESPACE}}}result")
    assert result is not None
    names = [etree.QName(c).localname for c in result]
    declared = [f.name for f in shipped_schema().records["KetQua"].fields]
    known = [n for n in names if n in declared]
    assert known == sorted(known, key=declared.index)
    assert names[len(known) :] == [n for n in names if n not in declared]  # wildcard content last


def test_stored_dossier_reply_round_trips() -> None:
    stored = {**full_dossier(), "QuaTrinhXuLy": [_step("1"), _step("2")]}
    reply = {"error_code": "0", "message": "Thành công", "result": [stored]}
    assert parse_response(build_response("TraCuuHoSo", reply)) == ("TraCuuHoSo", reply)


def test_catalogue_reply_round_trips() -> None:
    thu_tuc = {
        "MATTHC": "1.001193",
        "TENTTHC": "Đăng ký khai sinh",
        "MACOQUANCONGBO": "G01",
        "TRANGTHAI": "1",
        "LINHVUCTHUCHIEN": [{"MALINHVUC": "HT", "TENLINHVUC": "Hộ tịch"}],
        "CACHTHUCTHUCHIEN": [
            {
                "KENH": "1",
                "THOIGIAN": [
                    {
                        "THOIGIANGIAIQUYET": "1",
                        "DONVITINH": "Ngày",
                        "MOTA": "",
                        "PHILEPHI": [{"MAPHILEPHI": "P1", "SOTIEN": "0", "DONVI": "VNĐ", "MOTA": "Miễn"}],
                    }
                ],
            },
            {"KENH": "2", "THOIGIAN": [{"THOIGIANGIAIQUYET": "1", "DONVITINH": "Ngày"}]},
        ],
        "THANHPHANHOSO": [{"GIAYTO": [{"MAGIAYTO": "GT1", "TENGIAYTO": "Tờ khai"}, {"TENGIAYTO": "CCCD"}]}],
        "KETQUATHUCHIEN": [{"MAKETQUA": "KQ1", "TENKETQUA": "Giấy khai sinh"}],
        "COQUANTHUCHIEN": [{"MADONVI": "000.00.01.H40", "TENDONVI": "UBND xã"}],
    }
    reply = {"error_code": "0", "message": "", "result": [thu_tuc]}
    assert parse_response(build_response("LayThuTuc", reply)) == ("LayThuTuc", reply)


def test_reply_scalars_are_written_as_the_json_strings() -> None:
    reply = {"error_code": 3, "message": "MaHoSo đã tồn tại", "result": [{"MaHoSo": "A", "error_code": 3}]}
    _, parsed = parse_response(build_response("DongBoHoSoMC", reply))
    assert parsed == {
        "error_code": "3",
        "message": "MaHoSo đã tồn tại",
        "result": [{"MaHoSo": "A", "error_code": "3"}],
    }


def test_a_value_that_has_no_xml_form_is_an_error_not_a_garbled_reply() -> None:
    with pytest.raises(ValueError, match="not a valid XML element name"):
        build_response("TraCuuHoSo", {"error_code": 0, "result": [{"bad key": "x"}]})
    with pytest.raises(ValueError, match="list of lists"):
        build_response("TraCuuHoSo", {"error_code": 0, "result": [{"X": [["a"]]}]})


def test_fault_reads_back() -> None:
    with pytest.raises(SoapFault) as caught:
        parse_response(build_fault("Client", "malformed XML: x"))
    assert (caught.value.code, caught.value.message) == ("Client", "malformed XML: x")


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=30,
)
_tai_lieu = st.fixed_dictionaries({}, optional={k: _text for k in TAI_LIEU})
_dossier = st.fixed_dictionaries(
    {"MaHoSo": _text},
    optional={
        **{k: _text for k in ("ChuHoSo", "TrichYeuHoSo", "NgayTiepNhan", "GhiChu", "Email")},
        "TaiLieuNop": st.lists(_tai_lieu, min_size=1, max_size=3),
        "DanhSachLePhi": st.lists(st.fixed_dictionaries({}, optional={k: _text for k in LE_PHI}), min_size=1),
        "DanhSachHoSoBoSung": st.lists(
            st.fixed_dictionaries(
                {"HoSoBoSungId": _text}, optional={"DanhSachGiayToBoSung": st.lists(_tai_lieu, min_size=1)}
            ),
            min_size=1,
            max_size=2,
        ),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_dossier, min_size=1, max_size=4), _text)
def test_any_dossier_batch_round_trips(dossiers: list[dict[str, Any]], session: str) -> None:
    body = {"session": session, "madonvi": "M", "isUpdating": "True", "data": dossiers}
    assert parse_request(build_request("DongBoHoSoMC", copy.deepcopy(body)))[1] == body


# ---------------------------------------------------------------- hostile XML

XXE_FILE = (
    b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<TraCuuHoSo xmlns="urn:dvcqg:lgsp:v1"><mahoso>&x;</mahoso></TraCuuHoSo></soap:Body></soap:Envelope>'
)


def _laughs(levels: int = 9) -> bytes:
    """The billion-laughs bomb: each entity expands to ten of the previous one."""
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels + 1)]
    return f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(entities)}]><lolz>&lol{levels};</lolz>'.encode()


LAUGHS = _laughs()


@pytest.mark.parametrize(
    "body",
    [
        XXE_FILE,
        XXE_FILE.replace(b"file:///etc/passwd", b"http://198.51.100.7/x"),
        LAUGHS,
        b'<?xml version="1.0"?><!DOCTYPE Envelope SYSTEM "http://198.51.100.7/e.dtd"><Envelope/>',
        b"<!DOCTYPE Envelope><Envelope/>",
        b'<!DOCTYPE e [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><e/>',
    ],
    ids=["xxe-file", "xxe-network", "billion-laughs", "external-dtd", "bare-doctype", "parameter-entity"],
)
def test_dtds_and_entities_are_refused(body: bytes) -> None:
    with pytest.raises(SoapFault, match="DTDs and entity declarations are refused"):
        parse_untrusted(body)


def test_a_doctype_hidden_in_utf16_is_refused() -> None:
    with pytest.raises(SoapFault, match="UTF-8"):
        parse_untrusted(
            XXE_FILE.replace(b'version="1.0"', b'version="1.0" encoding="UTF-16"').decode().encode("utf-16")
        )


def test_a_declared_foreign_encoding_is_refused() -> None:
    with pytest.raises(SoapFault, match="encoding 'UTF-7' refused"):
        parse_untrusted(b'<?xml version="1.0" encoding="UTF-7"?>+ADw-e/+AD4-')


def test_an_undeclared_entity_is_malformed_xml() -> None:
    with pytest.raises(SoapFault, match="malformed XML"):
        parse_untrusted(_envelope("<TraCuuHoSo><mahoso>&x;</mahoso></TraCuuHoSo>"))


def test_xinclude_is_not_processed() -> None:
    inner = (
        '<TraCuuHoSo><mahoso><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        'href="file:///etc/passwd" parse="text"/></mahoso></TraCuuHoSo>'
    )
    _, payload = parse_request(_envelope(inner))
    assert payload == {"mahoso": {"include": ""}}  # an element like any other; nothing read


def test_deep_nesting_is_refused_by_the_parser_not_by_a_recursion_error() -> None:
    deep = "<x>" * 5000 + "</x>" * 5000
    with pytest.raises(SoapFault, match="malformed XML"):
        parse_request(_envelope(f"<TraCuuHoSo><mahoso>{deep}</mahoso></TraCuuHoSo>"))


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"", "Client", "empty request body"),
        (b"<soap:Envelope", "Client", "malformed XML"),
        (b"\xff\xfe<a/>", "Client", "not UTF-8"),
        (b"<Envelope/>", "Client", "not a SOAP 1.1 Envelope"),
        (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"/>', "VersionMismatch", "SOAP 1.2"),
        (_envelope("<Nope/>"), "Client", "unknown operation {urn:dvcqg:lgsp:v1}Nope"),
        (
            _envelope("<TraCuuHoSo/>").replace(b'xmlns="urn:dvcqg:lgsp:v1"', b'xmlns="urn:other"'),
            "Client",
            "unknown operation {urn:other}TraCuuHoSo",
        ),
        (_envelope("<TraCuuHoSo/><TraCuuHoSo/>"), "Client", "found 2"),
        (
            _envelope("<TraCuuHoSo/>", header='<h:Auth xmlns:h="urn:h" soap:mustUnderstand="1"/>'),
            "MustUnderstand",
            "not understood",
        ),
    ],
    ids=[
        "empty",
        "truncated",
        "utf16-bom",
        "not-soap",
        "soap12",
        "unknown-op",
        "foreign-ns",
        "two-ops",
        "header",
    ],
)
def test_protocol_errors_are_faults(body: bytes, code: str, message: str) -> None:
    with pytest.raises(SoapFault, match=message.replace("{", r"\{").replace("}", r"\}")) as caught:
        parse_request(body)
    assert caught.value.code == code


# ---------------------------------------------------------------- the contract's golden bodies

GOLDEN = Path(__file__).parents[2] / "fixtures" / "contract"
_INDEX = json.loads((GOLDEN / "index.json").read_text(encoding="utf-8"))
REQUEST_GOLDENS = sorted(
    name
    for name, entry in _INDEX.items()
    if entry["model"].removesuffix("Request") in OPERATIONS and entry["model"].endswith("Request")
)
REPLY_OPERATION = {
    "BatchReply": "DongBoHoSoMC",
    "TraCuuHoSoReply": "TraCuuHoSo",
    "DanhSachHoSoReply": "DanhSachHoSo",
    "LayThuTucReply": "LayThuTuc",
    "LayDanhSachTTHCReply": "LayDanhSachTTHC",
    "PortalReply": "XacNhanHoSo",
}
REPLY_GOLDENS = sorted(name for name, entry in _INDEX.items() if entry["model"] in REPLY_OPERATION)


def as_xml_carries_it(value: Any) -> Any:
    """What SOAP can say of a JSON value: scalars as text, no nulls, an empty list is no element."""
    if isinstance(value, dict):
        return {k: as_xml_carries_it(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [as_xml_carries_it(v) for v in value]
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def test_goldens_are_found() -> None:
    assert len(REQUEST_GOLDENS) >= 10 and len(REPLY_GOLDENS) >= 8


@pytest.mark.parametrize("name", REQUEST_GOLDENS)
def test_every_golden_request_round_trips(name: str) -> None:
    body = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    operation, parsed = parse_request(build_request(body["service"], body))
    assert operation == body["service"]
    assert parsed == as_xml_carries_it({k: v for k, v in body.items() if k != "service"})


@pytest.mark.parametrize("name", REPLY_GOLDENS)
def test_every_golden_reply_round_trips(name: str) -> None:
    reply = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    operation = REPLY_OPERATION[_INDEX[name]["model"]]
    assert parse_response(build_response(operation, reply)) == (operation, as_xml_carries_it(reply))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation_of_names_the_operation_without_parsing(operation: str) -> None:
    assert operation_of(build_request(operation, {"session": "S", "madonvi": "M"})) == operation
    assert (
        operation_of(_envelope(f'<t:{operation} xmlns:t="urn:dvcqg:lgsp:v1"/>', default_ns=False))
        == operation
    )


def test_operation_of_ignores_lookalikes() -> None:
    assert operation_of(_envelope("<TraCuuHoSoX/>")) is None
    assert operation_of(b"not xml") is None
