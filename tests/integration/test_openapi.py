"""The published contracts (issue #21 item 6): the inbound server's and the mock payment platform's
``/openapi.json`` give every body route its request schema, example and refusals, ``/docs`` works
without the Internet, and real requests (the golden bodies of tests/fixtures/contract) sent to the
servers' applications validate against what they publish, while a broken one does not. Both run in
process (``run_app_in_process``, ``run_mock_in_process``): what they publish and answer is tested,
not the socket."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dvcsync.config import Settings
from dvcsync.contract import examples
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.server import create_server_app
from dvcsync.server._app import INBOUND_BODIES
from mock_portal.app import PAYMENT_BODIES
from mock_portal.testing import InProcessApp, run_app_in_process, run_mock_in_process

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests/fixtures/contract"
INBOUND = {
    "/inbound/dvcqg/hoso": ("thongbaokhuyenmai_push.json", "ThongBaoKhuyenMai"),
    "/inbound/payment/dpnhankqthanhtoanhs": ("payment_callback_paid.json", "PaymentCallback"),
    "/inbound/payment/dptracuuthanhtoanhs": ("payment_bill_lookup_request.json", "BillLookupRequest"),
}
MOCK = {
    "/payment/init": ("payment_init_request.json", "InitRequest"),
    "/payment/query": ("payment_query_request.json", "QueryRequest"),
    "/payment/bill": ("payment_get_bill_request.json", "GetBillRequest"),
}


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _validator(document: dict[str, Any], ref: str) -> jsonschema.Draft202012Validator:
    """A validator for ``ref`` inside ``document`` (its ``#/components/schemas/...`` resolve)."""
    return jsonschema.Draft202012Validator({"$ref": ref, "components": document["components"]})


def _request_schema(document: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    media = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return media["schema"]["$ref"], media


@pytest.fixture(scope="module")
def inbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    folder = tmp_path_factory.mktemp("openapi")
    generate(folder / "sample.db", 20, 2)
    shutil.copy(folder / "sample.db", folder / "onestop.db")
    settings = Settings.load(
        None,
        province={"source_url": f"sqlite:///{folder / 'onestop.db'}", "mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{folder / 'state.db'}"},
    )
    app = create_server_app(settings, load_mappings(settings.province.mappings))
    with run_app_in_process(app) as served:
        yield served
    for engine in app.state.engines:
        engine.dispose()


def test_the_inbound_server_publishes_each_body_and_real_requests_validate(inbound: InProcessApp) -> None:
    with inbound.client(trust_env=False, timeout=10) as client:
        document = client.get("/openapi.json").json()
        for path, (fixture, model) in INBOUND.items():
            ref, media = _request_schema(document, path)
            assert ref == f"#/components/schemas/{model}"
            body = _fixture(fixture)
            errors = [e.message for e in _validator(document, ref).iter_errors(body)]
            assert errors == [], f"{fixture} against the published {model}: {errors}"
            assert not list(_validator(document, ref).iter_errors(media["examples"]["example"]["value"]))
            answers = document["paths"][path]["post"]["responses"]
            assert {"200", "401", "403", "413", "503"} <= set(answers), path
            assert "422" not in answers  # the routes answer in the contract's shape, never FastAPI's
            reply = client.post(path, content=json.dumps(body, ensure_ascii=False).encode())
            assert reply.status_code == 200, (path, reply.text)
            reply_ref = answers["200"]["content"]["application/json"]["schema"]["$ref"]
            assert not [e.message for e in _validator(document, reply_ref).iter_errors(reply.json())], (
                path,
                reply.json(),
            )
        # the promotion was taken in: the schema said it was right, and so did the server
        assert (
            client.post("/inbound/dvcqg/hoso", json=_fixture("thongbaokhuyenmai_push.json")).json()[
                "error_code"
            ]
            == 1
        )
        for path in ("/healthz", "/readyz", "/metrics"):
            assert {"401", "403", "503"} <= set(document["paths"][path]["get"]["responses"]), path


def test_a_request_the_schema_refuses_the_inbound_server_refuses_too(inbound: InProcessApp) -> None:
    with inbound.client(trust_env=False, timeout=10) as client:
        document = client.get("/openapi.json").json()
        ref, _ = _request_schema(document, "/inbound/dvcqg/hoso")
        body = {k: v for k, v in _fixture("thongbaokhuyenmai_push.json").items() if k != "TenThuongNhan"}
        body["MaHoSo"] = "G22.99-251120-0999"
        errors = [e.message for e in _validator(document, ref).iter_errors(body)]
        assert errors == ["'TenThuongNhan' is a required property"]
        answer = client.post("/inbound/dvcqg/hoso", json=body).json()
        assert answer["error_code"] == -1 and "TenThuongNhan" in answer["message"]


def test_docs_are_served_offline(inbound: InProcessApp) -> None:
    with inbound.client(trust_env=False, timeout=10) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn." not in page.text and "unpkg" not in page.text
        assert "/static-offline-docs/" in page.text
        script = page.text.split("/static-offline-docs/", 1)[1].split('"', 1)[0]
        assert client.get(f"/static-offline-docs/{script}").status_code == 200


def test_the_mock_payment_platform_publishes_each_body_and_real_requests_validate() -> None:
    with run_mock_in_process() as mock, mock.client(trust_env=False, timeout=10) as client:
        document = client.get("/openapi.json").json()
        for path, (fixture, model) in MOCK.items():
            ref, media = _request_schema(document, path)
            assert ref == f"#/components/schemas/{model}"
            body = _fixture(fixture)
            assert not [e.message for e in _validator(document, ref).iter_errors(body)], fixture
            assert not list(_validator(document, ref).iter_errors(media["examples"]["example"]["value"]))
            assert "503" in document["paths"][path]["post"]["responses"]
        reply = client.post(
            "/payment/init", content=json.dumps(_fixture("payment_init_request.json")).encode()
        )
        assert reply.status_code == 200
        reply_ref = document["paths"]["/payment/init"]["post"]["responses"]["200"]["content"][
            "application/json"
        ]["schema"]["$ref"]
        assert not list(_validator(document, reply_ref).iter_errors(reply.json()))
        broken = {k: v for k, v in _fixture("payment_query_request.json").items() if k != "MaThamChieu"}
        ref, _ = _request_schema(document, "/payment/query")
        assert [e.message for e in _validator(document, ref).iter_errors(broken)] == [
            "'MaThamChieu' is a required property"
        ]


@pytest.mark.parametrize(
    ("name", "fixture"),
    [
        ("PROMOTION", "thongbaokhuyenmai_push.json"),
        ("PAYMENT_CALLBACK", "payment_callback_paid.json"),
        ("BILL_LOOKUP", "payment_bill_lookup_request.json"),
        ("PAYMENT_INIT", "payment_init_request.json"),
        ("PAYMENT_QUERY", "payment_query_request.json"),
        ("PAYMENT_GET_BILL", "payment_get_bill_request.json"),
    ],
)
def test_the_published_examples_are_the_golden_bodies(name: str, fixture: str) -> None:
    assert getattr(examples, name) == _fixture(fixture)


def test_every_published_body_is_read_by_its_model() -> None:
    for body in [*INBOUND_BODIES.values(), *PAYMENT_BODIES.values()]:
        body.model.model_validate(body.example)
