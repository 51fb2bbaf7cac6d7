"""``MaXacThuc``: every published vector reproduced, and any one-character change detected.

The vectors (``tests/fixtures/ma-xac-thuc-vectors.json``, copied from the shared contract) are the
only ground truth both the mock and the adapter must match, so they are checked three ways: by the
bare ``sign``/``verify`` functions, by the payment models' ``signature``/``has_valid_signature``,
and by an independent SHA-256 written here from the algorithm's one-line description.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import dvcsync.contract.signature as signature_module
from dvcsync.contract import (
    FIELD_ORDER,
    GetBillRequest,
    InitRequest,
    PaymentCallback,
    QueryRequest,
    SignatureError,
    sign,
    signing_string,
    verify,
)
from dvcsync.contract.payment import _Signed

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "ma-xac-thuc-vectors.json").read_text(
        encoding="utf-8"
    )
)["vectors"]
MODEL_OF: dict[str, type[_Signed]] = {
    "INIT": InitRequest,
    "CALLBACK": PaymentCallback,
    "QUERY": QueryRequest,
    "GET_BILL": GetBillRequest,
}
IDS = [f"{v['message']}-{i}" for i, v in enumerate(VECTORS)]


def independent_mac(order: list[str], fields: dict[str, Any], secret: str) -> str:
    return hashlib.sha256("|".join([*(str(fields[k]) for k in order), secret]).encode("utf-8")).hexdigest()


def one_char_off(value: Any) -> Any:
    """The same value with its last character changed (ints stay ints, digits stay digits)."""
    if isinstance(value, int):
        return value + 1
    text = str(value)
    last = text[-1]
    if last.isdigit():
        new = str((int(last) + 1) % 10)
    elif last.isalpha():
        new = "b" if last.lower() == "a" else "a"
    else:
        new = "x"
    return text[:-1] + new


def test_vectors_cover_every_signed_message() -> None:
    assert {v["message"] for v in VECTORS} == set(FIELD_ORDER) == set(MODEL_OF)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_field_order_is_the_published_one(vector: dict[str, Any]) -> None:
    assert list(FIELD_ORDER[vector["message"]]) == vector["field_order"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_sign_reproduces_the_vector(vector: dict[str, Any]) -> None:
    expected = vector["MaXacThuc"]
    assert independent_mac(vector["field_order"], vector["fields"], vector["secret"]) == expected
    assert sign(vector["message"], vector["fields"], vector["secret"]) == expected
    assert verify(vector["message"], vector["fields"], vector["secret"], expected)
    text = signing_string(vector["message"], vector["fields"], vector["secret"])
    assert text.endswith("|" + vector["secret"]) and text.count("|") == len(vector["field_order"])


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_models_reproduce_the_vector(vector: dict[str, Any]) -> None:
    model = MODEL_OF[vector["message"]].model_validate({**vector["fields"], "MaXacThuc": vector["MaXacThuc"]})
    assert model.signature(vector["secret"]) == vector["MaXacThuc"]
    assert model.has_valid_signature(vector["secret"])
    # signed() puts the same signature on an unsigned copy
    unsigned = MODEL_OF[vector["message"]].model_validate(vector["fields"])
    assert not unsigned.has_valid_signature(vector["secret"])
    assert unsigned.signed(vector["secret"]).to_wire()["MaXacThuc"] == vector["MaXacThuc"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_one_character_off_in_any_signed_field_fails(vector: dict[str, Any]) -> None:
    message, secret, mac = vector["message"], vector["secret"], vector["MaXacThuc"]
    model_cls = MODEL_OF[message]
    checked_on_model = 0
    for name in vector["field_order"]:
        tampered = {**vector["fields"], name: one_char_off(vector["fields"][name])}
        assert not verify(message, tampered, secret, mac), name
        try:
            model = model_cls.model_validate({**tampered, "MaXacThuc": mac})
        except ValidationError:
            continue  # e.g. LoaiBanTin "INIT" is a literal: the model refuses it outright
        assert not model.has_valid_signature(secret), name
        checked_on_model += 1
    assert checked_on_model >= len(vector["field_order"]) - 2


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_one_character_off_in_the_secret_or_signature_fails(vector: dict[str, Any]) -> None:
    message, fields, secret, mac = vector["message"], vector["fields"], vector["secret"], vector["MaXacThuc"]
    assert not verify(message, fields, one_char_off(secret), mac)
    assert not verify(message, fields, secret + " ", mac)
    assert not verify(message, fields, secret, one_char_off(mac))
    model = MODEL_OF[message].model_validate({**fields, "MaXacThuc": mac})
    assert not model.has_valid_signature(one_char_off(secret))


def test_the_receipt_data_is_not_signed() -> None:
    (vector,) = [v for v in VECTORS if v["message"] == "INIT"]
    bill = {
        "MaDichVu": "2",
        "MaHoSo": "000.00.01.H40-191209-0001",
        "DSKhoanNop": [{"NoiDung": "Lệ phí", "SoTien": 8000}],
    }
    model = InitRequest.model_validate(
        {**vector["fields"], "ThongTinBienLai": bill, "MaXacThuc": vector["MaXacThuc"]}
    )
    assert model.has_valid_signature(vector["secret"])


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature_module.hmac, "compare_digest", spy)
    vector = VECTORS[0]
    assert verify(vector["message"], vector["fields"], vector["secret"], vector["MaXacThuc"])
    assert not verify(vector["message"], vector["fields"], vector["secret"], "0" * 64)
    assert len(calls) == 2


@pytest.mark.parametrize("bad", [None, 12345, "", "not-hex", "0" * 63])
def test_verify_refuses_malformed_signatures_without_raising(bad: Any) -> None:
    vector = VECTORS[0]
    assert not verify(vector["message"], vector["fields"], vector["secret"], bad)


def test_a_missing_signed_field_is_named_and_never_valid() -> None:
    vector = VECTORS[0]
    fields = {k: v for k, v in vector["fields"].items() if k != "Ip"}
    with pytest.raises(SignatureError, match="Ip"):
        sign(vector["message"], fields, vector["secret"])
    assert not verify(vector["message"], fields, vector["secret"], vector["MaXacThuc"])


@pytest.mark.parametrize(
    ("body", "index"),
    [
        ("payment_init_request.json", 0),
        ("payment_callback_paid.json", 1),
        ("payment_callback_failed.json", 2),
        ("payment_query_request.json", 3),
        ("payment_get_bill_request.json", 4),
    ],
)
def test_golden_payment_bodies_carry_the_vectors_signatures(body: str, index: int) -> None:
    fixture = json.loads(
        (Path(__file__).resolve().parents[2] / "fixtures" / "contract" / body).read_text("utf-8")
    )
    vector = VECTORS[index]
    assert {k: fixture[k] for k in vector["field_order"]} == vector["fields"]
    assert fixture["MaXacThuc"] == vector["MaXacThuc"]
