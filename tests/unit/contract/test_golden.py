"""Golden bodies of the wire contract: every message parses and ``to_wire()`` gives its canonical form.

``tests/fixtures/contract/index.json`` maps each body file to the model that reads it and its kind:

- ``canonical``: the body is already in the form the adapter emits, so ``to_wire()`` must give back
  exactly the input (the OpenCPS-shaped dossier is one of these: all strings is the canonical form);
- ``variant``: a real-world variant (booleans for flags, int codes, string error codes, ``null``
  texts...). ``to_wire()`` must differ from the input and equal the stored expectation
  ``<name>.canonical.json`` beside it.

To (re)write the expectations after a deliberate change of the canonical form, run
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/contract/test_golden.py`` and review the diff of the
``*.canonical.json`` files before committing: a rewrite is a change of the wire contract.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import dvcsync.contract as contract
from dvcsync.contract import REPLY_MODELS, REQUEST_MODELS, WireModel

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "contract"
INDEX: dict[str, dict[str, str]] = json.loads((FIXTURES / "index.json").read_text(encoding="utf-8"))
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"
SECRET = "khoa-bi-mat-thu-nghiem"  # the test secret of ma-xac-thuc-vectors.json

# Every message of national-portal.md §1-§5 and payment-platform.md §1 has a model that reads it.
MESSAGE_MODELS: set[type[WireModel]] = {
    contract.AuthRequest,
    contract.AuthReply,
    *REQUEST_MODELS.values(),
    *REPLY_MODELS.values(),
    contract.ThongBaoKhuyenMai,
    contract.ProvinceAnswer,
    contract.InitRequest,
    contract.InitReply,
    contract.InitResult,
    contract.QueryRequest,
    contract.QueryReply,
    contract.GetBillRequest,
    contract.PaymentCallback,
    contract.CallbackReply,
    contract.BillLookupRequest,
    contract.BillLookupReply,
    contract.StatementRow,
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def model_of(name: str) -> type[WireModel]:
    model = getattr(contract, INDEX[name]["model"])
    assert isinstance(model, type) and issubclass(model, WireModel), name
    return model


def parse(name: str) -> WireModel:
    return model_of(name).model_validate(load(name))


def canonical_path(name: str) -> Path:
    return FIXTURES / name.replace(".json", ".canonical.json")


CANONICAL = sorted(n for n, e in INDEX.items() if e["kind"] == "canonical")
VARIANT = sorted(n for n, e in INDEX.items() if e["kind"] == "variant")


def test_index_lists_every_body_file_and_nothing_else() -> None:
    bodies = (p for p in FIXTURES.glob("*.json") if not p.name.endswith(".canonical.json"))
    on_disk = {p.name for p in bodies if p.name != "index.json"}
    assert on_disk == set(INDEX)
    assert {e["kind"] for e in INDEX.values()} <= {"canonical", "variant"}
    expectations = {p.name for p in FIXTURES.glob("*.canonical.json")}
    assert expectations == {canonical_path(n).name for n in VARIANT} or UPDATE_GOLDEN


def test_every_contract_message_has_a_golden_body() -> None:
    covered = {model_of(name) for name in INDEX}
    missing = sorted(m.__name__ for m in MESSAGE_MODELS - covered)
    assert not missing, f"messages without a golden body: {missing}"


@pytest.mark.parametrize("name", CANONICAL)
def test_canonical_body_round_trips_exactly(name: str) -> None:
    body = load(name)
    wire = parse(name).to_wire()
    assert wire == body
    assert json.loads(json.dumps(wire, ensure_ascii=False)) == body  # plain JSON, nothing model-typed left


@pytest.mark.parametrize("name", VARIANT)
def test_variant_body_becomes_its_stored_canonical_form(name: str) -> None:
    body = load(name)
    wire = parse(name).to_wire()
    path = canonical_path(name)
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(wire, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert path.exists(), f"{path.name} missing: run with UPDATE_GOLDEN=1 and review it"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert wire != body, f"{name} is already canonical: mark it 'canonical' in index.json"
    assert wire == expected
    # the canonical form is a fixed point: it reads back and emits itself
    assert model_of(name).model_validate(expected).to_wire() == expected


@pytest.mark.parametrize("name", sorted(INDEX))
def test_reading_the_canonical_form_gives_an_equal_model(name: str) -> None:
    model = parse(name)
    assert model_of(name).model_validate(model.to_wire()) == model


def test_service_fields_name_the_service_of_their_model() -> None:
    for name in INDEX:
        body = load(name)
        if isinstance(body, dict) and "service" in body:
            assert REQUEST_MODELS[body["service"]] is model_of(name), name


# ---------------------------------------------------------------- what the bodies must mean


def scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in scalars(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in scalars(v)]
    return [value]


def test_opencps_body_is_all_strings() -> None:
    leaves = scalars(load("dongbohosomc_request_opencps.json"))
    assert len(leaves) > 60 and all(isinstance(leaf, str) for leaf in leaves)
    assert "False" in leaves  # flags are the words "True"/"False", never JSON booleans


def test_opencps_body_keeps_its_shape_and_unknown_field() -> None:
    request = parse("dongbohosomc_request_opencps.json")
    assert isinstance(request, contract.DongBoHoSoMCRequest)
    assert request.isUpdating == "False"
    (dossier,) = request.data
    assert dossier.Fax == dossier.SoDienThoai == "0986123457"
    assert dossier.TaiLieuNop is not None and [t.MaThanhPhanHoSo for t in dossier.TaiLieuNop] == ["", ""]
    assert [t.DuocSoHoa for t in dossier.TaiLieuNop] == ["1", "0"]
    assert dossier.TaiLieuNop[0].IsDeleted == "False"
    (supplement,) = dossier.DanhSachHoSoBoSung or []
    assert isinstance(supplement, contract.HoSoBoSung)
    assert supplement.DanhSachGiayToBoSung is not None
    assert isinstance(supplement.DanhSachGiayToBoSung[0], contract.TaiLieu)
    assert supplement.DanhSachLePhiBoSung == []
    assert dossier.DanhSachGiayToKetQua == [] and dossier.DanhSachTepDinhKemKhac == []
    assert dossier.DinhDanhCHS is not None and dossier.DinhDanhCHS[0].SoDinhDanh == "022088004567"
    # a field this contract does not list is kept, in place, on the way out
    assert dossier.model_extra == {"MaHoSoLienThong": ""}
    assert request.to_wire()["data"][0]["MaHoSoLienThong"] == ""


def test_variant_dossier_reads_as_canonical_strings() -> None:
    request = parse("dongbohosomc_request_variants.json")
    assert isinstance(request, contract.DongBoHoSoMCRequest)
    assert request.isUpdating == "True"
    (dossier,) = request.data
    codes = (dossier.TrangThaiHoSo, dossier.KenhThucHien, dossier.HinhThuc, dossier.LoaiDoiTuong)
    assert codes == ("4", "1", "0", "1")
    bits = (dossier.DuocThanhToanTrucTuyen, dossier.HoSoCoThanhPhanSoHoa, dossier.TaiKhoanDuocXacThucVoiVNeID)
    assert bits == ("0", "1", "1")
    assert dossier.TaiLieuNop is not None
    doc = dossier.TaiLieuNop[0]
    assert (doc.TepDinhKemId, doc.IsDeleted, doc.DuocSoHoa, doc.DuocTaiSuDung) == ("18350", "False", "1", "2")
    assert dossier.DanhSachLePhi is not None
    fee = dossier.DanhSachLePhi[0]
    assert fee.Gia == 8000 and fee.to_wire()["Gia"] == "8000"


def test_status_1_dossier_without_reception_date_is_emitted_with_an_empty_one() -> None:
    wire = parse("dongbohosomc_request_status1_no_reception.json").to_wire()
    assert wire["data"][0]["NgayTiepNhan"] == ""


@pytest.mark.parametrize(
    ("name", "code", "ok"),
    [
        ("reply_success_code_int_0.json", 0, True),
        ("reply_success_code_str_0.json", 0, True),
        ("reply_success_code_00.json", 0, True),
        ("reply_success_message_null.json", 0, True),
        ("reply_error_duplicate_3.json", 3, False),
        ("reply_error_session_expired_401.json", 401, False),
        ("auth_reply.json", 0, None),
        ("auth_reply_failed.json", -1, None),
    ],
)
def test_reply_codes(name: str, code: int, ok: bool | None) -> None:
    reply = parse(name)
    assert isinstance(reply, contract.PortalReply | contract.AuthReply)
    assert reply.error_code == code
    if ok is not None:
        assert isinstance(reply, contract.PortalReply) and reply.ok is ok


def test_batch_reply_reads_per_item_results() -> None:
    for name in ("dongbohosomc_reply_items.json", "dongbohosomc_reply_items_strings.json"):
        reply = parse(name)
        assert isinstance(reply, contract.BatchReply) and reply.ok
        assert reply.result is not None and all(isinstance(i, contract.ItemResult) for i in reply.result)
        failed = [i for i in reply.result if i.error_code != 0]
        assert [i.error_code for i in failed] == [3] and "đã tồn tại" in failed[0].message


def test_tracuuhoso_reply_carries_the_history() -> None:
    reply = parse("tracuuhoso_reply.json")
    assert isinstance(reply, contract.TraCuuHoSoReply) and reply.result is not None
    (stored,) = reply.result
    assert [step.TrangThai for step in stored.QuaTrinhXuLy] == ["2", "4", "9"]
    assert all(isinstance(step, contract.TienDo) for step in stored.QuaTrinhXuLy)
    unknown = parse("tracuuhoso_reply_unknown.json")
    assert isinstance(unknown, contract.TraCuuHoSoReply) and unknown.result == []


def test_laythutuc_reply_reads_the_nested_upper_case_tree() -> None:
    reply = parse("laythutuc_reply.json")
    assert isinstance(reply, contract.LayThuTucReply) and reply.result is not None
    (procedure,) = reply.result
    assert procedure.MATTHC == "1.001193"
    assert [c.KENH for c in procedure.CACHTHUCTHUCHIEN] == ["1", "2", "3"]
    fees = procedure.CACHTHUCTHUCHIEN[0].THOIGIAN[0].PHILEPHI
    assert [f.SOTIEN for f in fees] == ["0", "8000"]
    assert procedure.LINHVUCTHUCHIEN[0].TENLINHVUC == "Hộ tịch"


def test_promotion_push_and_answers() -> None:
    push = parse("thongbaokhuyenmai_push.json")
    assert isinstance(push, contract.ThongBaoKhuyenMai)
    assert push.DiaChiDoanhNghiep is not None and push.DiaChiDoanhNghiep.MaTinh == "22"
    assert push.TaiLieuNop is not None and push.TaiLieuNop[0].Base64.startswith("JVBERi0")
    answers = [parse(f"province_answer_{k}.json") for k in ("created", "duplicate", "rejected")]
    assert [a.error_code for a in answers if isinstance(a, contract.ProvinceAnswer)] == [0, 1, -1]


# ---------------------------------------------------------------- payment bodies


SIGNED = {
    "payment_init_request.json",
    "payment_query_request.json",
    "payment_get_bill_request.json",
    "payment_callback_paid.json",
    "payment_callback_failed.json",
    "payment_callback_amount_string.json",
}


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_signed_bodies_carry_a_valid_signature(name: str) -> None:
    message = parse(name)
    assert isinstance(
        message,
        contract.InitRequest | contract.QueryRequest | contract.GetBillRequest | contract.PaymentCallback,
    )
    assert message.has_valid_signature(SECRET)
    assert message.signature(SECRET) == load(name)["MaXacThuc"]
    assert not message.has_valid_signature(SECRET + "x")


def test_init_bill_adds_up_to_the_amount() -> None:
    init = parse("payment_init_request.json")
    assert isinstance(init, contract.InitRequest) and init.ThongTinBienLai is not None
    body = load("payment_init_request.json")
    items = body["ThongTinBienLai"]["DSKhoanNop"]
    added_up = sum(int(i["SoTien"]) for i in items)
    assert init.ThongTinBienLai.total == added_up == int(body["SoTien"]) == init.SoTien


def test_init_reply_wrapped_and_flat_give_the_same_result() -> None:
    wrapped = contract.parse_init_reply(load("payment_init_reply_wrapped.json"))
    flat = contract.parse_init_reply(load("payment_init_reply_flat.json"))
    assert wrapped == flat
    assert wrapped.MaLoi == contract.PAID and wrapped.UrlThanhToan is not None
    assert contract.InitReply.wrap(flat).result() == flat


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("payment_query_reply_paid.json", "1"),
        ("payment_query_reply_pending.json", "3"),
        ("payment_query_reply_failed.json", "4"),
        ("payment_query_reply_int_state.json", "1"),
    ],
)
def test_query_reply_states(name: str, state: str) -> None:
    reply = parse(name)
    assert isinstance(reply, contract.QueryReply)
    assert (reply.MaLoi, reply.TrangThaiGD, reply.SoTien) == ("00", state, 8000)


def test_callbacks_paid_and_failed() -> None:
    paid, failed = parse("payment_callback_paid.json"), parse("payment_callback_failed.json")
    assert isinstance(paid, contract.PaymentCallback) and isinstance(failed, contract.PaymentCallback)
    assert paid.paid and not failed.paid
    accepted = parse("payment_callback_reply_accepted.json")
    refused = parse("payment_callback_reply_refused.json")
    assert isinstance(accepted, contract.CallbackReply) and isinstance(refused, contract.CallbackReply)
    assert (accepted.MaLoi, refused.MaLoi) == ("00", "99")
    assert accepted.MaXacThuc == paid.MaXacThuc  # the reply echoes the incoming signature


def test_bill_lookup_replies() -> None:
    bill = parse("payment_bill_lookup_reply_bill.json")
    assert isinstance(bill, contract.BillLookupReply) and isinstance(bill.message, contract.BienLai)
    assert bill.message.MaTraCuuTT == f"{bill.message.MaHoSo}20191209100512"
    assert bill.message.total == 8000
    for kind, code in (("nothing", 0), ("unknown", -1)):
        reply = parse(f"payment_bill_lookup_reply_{kind}.json")
        assert isinstance(reply, contract.BillLookupReply) and (reply.error_code, reply.message) == (code, [])
