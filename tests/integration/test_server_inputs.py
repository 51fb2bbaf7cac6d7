"""Hostile bodies against the inbound server: every refusal is in the path's contract shape, never a
5xx, never a traceback, never a row in the province's database; a fuzz run of a few thousand
generated requests holds the same line.

The bodies are what is tested, not the socket: the server's application runs in process
(``run_app_in_process``, requests through ``httpx.ASGITransport``), so an exception it lets through
fails the test in the caller. Callers, caps and the socket are test_server_access.py's; framing and
slow clients against the real server, tests/e2e/test_run_framing.py and test_run_slow_clients.py."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvcsync.config import Settings
from dvcsync.contract import PaymentCallback, now_wire
from dvcsync.mapping import load_mappings
from dvcsync.province.sample import generate
from dvcsync.server import create_server_app
from dvcsync.sync import payment_inbound
from mock_portal.testing import run_app_in_process

REPO = Path(__file__).resolve().parents[2]
PROMOTION_PATH = "/inbound/dvcqg/hoso"
CALLBACK_PATH = "/inbound/payment/dpnhankqthanhtoanhs"
BILL_PATH = "/inbound/payment/dptracuuthanhtoanhs"
POST_PATHS = (PROMOTION_PATH, CALLBACK_PATH, BILL_PATH)
PROMOTION = json.loads(
    (REPO / "tests/fixtures/contract/thongbaokhuyenmai_push.json").read_text(encoding="utf-8")
)
SECRET = "khoa-bi-mat-thu-nghiem"  # PaymentSettings' defaults: the server below runs with them
PARTNER = "H40-QNINH"
DEEP = 200_000
FUZZ_EXAMPLES_PER_PATH = 700
FUZZ_MINIMUM = 2000


@dataclass
class Inbound:
    url: str
    client: httpx.Client
    onestop: Path
    codes: list[str]  # dossiers of the province: real bill look-ups
    attempts: list[tuple[str, int]]  # its payment attempts (reference, amount): callbacks that apply
    sent: Counter[str] = field(default_factory=Counter)

    def post(self, path: str, content: bytes) -> httpx.Response:
        self.sent[path] += 1
        return self.client.post(path, content=content, headers={"Content-Type": "application/json"})

    def counts(self) -> tuple[int, int]:
        """What a refusal must leave alone: dossiers and payment attempts."""
        with sqlite3.connect(self.onestop) as conn:
            dossiers = conn.execute("SELECT COUNT(*) FROM ho_so").fetchone()[0]
            attempts = conn.execute("SELECT COUNT(*) FROM thanh_toan").fetchone()[0]
        return int(dossiers), int(attempts)


@pytest.fixture(scope="module")
def inbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbound]:
    """One server application for the module (a fresh copy of a sample province), in process, and
    one client."""
    tmp = tmp_path_factory.mktemp("server-inputs")
    onestop = tmp / "onestop.db"
    generate(onestop, 50, 2)
    settings = Settings.load(
        None,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        state={"url": f"sqlite:///{tmp / 'state.db'}"},
    )
    assert settings.payment.partner_code == PARTNER
    assert settings.payment.secret.get_secret_value() == SECRET
    with sqlite3.connect(onestop) as conn:
        owing = [  # two dossiers owe their up-front fees again: bill look-ups that build a bill
            str(r[0])
            for r in conn.execute(
                "SELECT h.so_ho_so FROM ho_so h WHERE EXISTS (SELECT 1 FROM le_phi l WHERE l.ho_so_id = h.id"
                " AND l.hinh_thuc_thu = 'thu_truoc' AND l.so_tien > 0) ORDER BY h.id LIMIT 2"
            )
        ]
        conn.executemany(
            "UPDATE le_phi SET da_thanh_toan = 0 WHERE hinh_thuc_thu = 'thu_truoc'"
            " AND ho_so_id = (SELECT id FROM ho_so WHERE so_ho_so = ?)",
            [(code,) for code in owing],
        )
        others = [str(r[0]) for r in conn.execute("SELECT so_ho_so FROM ho_so ORDER BY id LIMIT 8")]
        codes = [*owing, *others]
        attempts = [
            (str(r[0]), int(r[1]))
            for r in conn.execute("SELECT ma_tham_chieu, so_tien FROM thanh_toan ORDER BY id LIMIT 5")
        ]
    app = create_server_app(settings, load_mappings(settings.province.mappings))
    try:
        with run_app_in_process(app) as served, served.client(timeout=30) as client:
            yield Inbound(served.url, client, onestop, codes, attempts)
    finally:
        for engine in app.state.engines:
            engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of the test (no uvicorn here: an exception the app lets through is raised in
    the test by the in-process transport, where a server would log it).

    The process's refusal-log throttle starts a fresh window: the tests before this one may have
    spent its burst within the same ten seconds (on a fast machine), and what is asserted here is
    what a logged line holds, not the throttle (tests/unit/sync has that)."""
    monkeypatch.setattr(payment_inbound, "_log_window", [0.0, 0, 0])
    caplog.set_level(logging.INFO)
    yield caplog


# ---------------------------------------------------------------------------------------------- bodies


def promotion(code: str, **changes: Any) -> dict[str, Any]:
    return {**PROMOTION, "MaHoSo": code, **changes}


def callback(ref: str = "KHONG-CO-GIAO-DICH-NAY", **changes: Any) -> dict[str, Any]:
    """A callback signed with the server's secret (for an unknown reference unless told)."""
    fields: dict[str, Any] = {
        "MaLoi": "00",
        "MaDoiTac": PARTNER,
        "MaThamChieu": ref,
        "SoTien": 8000,
        "MaGiaoDich": "GD-TEST-1",
        "MaNganHang": "NCB",
        "ThoiGianGD": now_wire(),
        "ThongTinGiaoDich": "Thanh toan ho so",
    }
    return {**PaymentCallback(**fields).signed(SECRET).to_wire(), **changes}


def with_raw(body: dict[str, Any], key: str, raw_json: str) -> bytes:
    """``body`` as JSON text with ``key`` set to ``raw_json`` verbatim (escapes Python cannot hold)."""
    rest = {k: v for k, v in body.items() if k != key}
    head = json.dumps(rest, ensure_ascii=False)
    return (head[:-1] + (", " if rest else "") + f"{json.dumps(key)}: {raw_json}}}").encode()


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


NESTED = "[" * DEEP + "]" * DEEP

# (code field, text field) per path: where the attacks go
FIELDS = {
    PROMOTION_PATH: ("MaHoSo", "TenThuongNhan"),
    CALLBACK_PATH: ("MaThamChieu", "ThongTinGiaoDich"),
    BILL_PATH: ("MaHoSo", "MaHoSo"),
}


def base_body(path: str, unique: str) -> dict[str, Any]:
    if path == PROMOTION_PATH:
        return promotion(f"G22.99-251120-{unique}")
    if path == CALLBACK_PATH:
        return callback(f"REF-{unique}")
    return {"MaHoSo": f"000.00.01.H40-251120-{unique}"}


# name -> (body builder from (path, base body), field the promotion answer must name or None)
ATTACKS: dict[str, tuple[Callable[[str, dict[str, Any]], bytes], str | None]] = {
    "nul-in-code": (
        lambda path, body: dumps({**body, FIELDS[path][0]: body[FIELDS[path][0]] + "\x00"}),
        "MaHoSo",
    ),
    "rlo-in-code": (
        lambda path, body: dumps({**body, FIELDS[path][0]: "\u202e" + body[FIELDS[path][0]]}),
        "MaHoSo",
    ),
    "nested-200000-in-a-field": (lambda path, body: with_raw(body, FIELDS[path][1], NESTED), None),
    "nested-200000-whole-body": (lambda path, body: NESTED.encode(), None),
    "lone-surrogate-escape": (
        lambda path, body: with_raw(
            body, FIELDS[path][0], json.dumps(body[FIELDS[path][0]])[:-1] + '\\ud800"'
        ),
        "MaHoSo",
    ),
    "list-for-text": (lambda path, body: dumps({**body, FIELDS[path][0]: ["x"]}), "MaHoSo"),
    "object-for-text": (lambda path, body: dumps({**body, FIELDS[path][1]: {"a": "b"}}), "TenThuongNhan"),
    "invalid-utf8": (lambda path, body: dumps(body)[:-1] + b', "X": "\xff\xfe\xc3"}', None),
    "not-json": (lambda path, body: b"not json {", None),
    "empty-body": (lambda path, body: b"", None),
}


def assert_contract_shape(path: str, response: httpx.Response) -> Any:
    """Below 500, JSON, in the path's reply shape; the parsed answer."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert "Traceback" not in response.text
    answer = response.json()
    assert isinstance(answer, dict), answer
    if path == CALLBACK_PATH:
        assert isinstance(answer.get("MaLoi"), str), answer
    else:
        assert type(answer.get("error_code")) is int, answer
        allowed = {0, 1, -1}
        assert answer["error_code"] in allowed and "message" in answer, answer
    return answer


def assert_refused(path: str, answer: dict[str, Any], names: str | None) -> None:
    if path == PROMOTION_PATH:
        assert answer["error_code"] == -1 and isinstance(answer["message"], str), answer
        if names is not None:
            assert names in answer["message"], answer
    elif path == CALLBACK_PATH:
        assert answer["MaLoi"] == "99" and answer.get("MoTaLoi"), answer
    else:
        assert answer == {"error_code": -1, "message": []}, answer


def assert_no_traceback(logs: pytest.LogCaptureFixture) -> None:
    with_trace = [r for r in logs.records if r.exc_info or r.exc_text]
    assert not with_trace, [(r.name, r.getMessage()[:200]) for r in with_trace]


# ---------------------------------------------------------------------------------------------- attacks

_unique = iter(range(1000, 10_000))


@pytest.mark.parametrize("path", POST_PATHS, ids=["promotion", "callback", "bill"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_hostile_bodies_are_refused_in_the_contract_shape(
    inbound: Inbound, logs: pytest.LogCaptureFixture, path: str, attack: str
) -> None:
    build, names = ATTACKS[attack]
    body = build(path, base_body(path, f"{next(_unique):04d}"))
    before = inbound.counts()
    response = inbound.post(path, body)
    answer = assert_contract_shape(path, response)
    assert_refused(path, answer, names)
    assert inbound.counts() == before, "a refused body wrote to the province's database"
    assert_no_traceback(logs)


def test_the_valid_bodies_are_still_taken(inbound: Inbound) -> None:
    """The attacks above start from these: untouched, they are accepted (or refused for their
    business reason only)."""
    before = inbound.counts()
    answer = assert_contract_shape(
        PROMOTION_PATH, inbound.post(PROMOTION_PATH, dumps(base_body(PROMOTION_PATH, "0001")))
    )
    assert answer["error_code"] == 0, answer
    assert inbound.counts()[0] == before[0] + 1
    reply = assert_contract_shape(CALLBACK_PATH, inbound.post(CALLBACK_PATH, dumps(callback("REF-0001"))))
    assert reply["MaLoi"] == "99" and "REF-0001" in reply["MoTaLoi"]  # signature fine, reference unknown
    bill = assert_contract_shape(BILL_PATH, inbound.post(BILL_PATH, dumps({"MaHoSo": inbound.codes[0]})))
    assert bill["error_code"] == 1 and bill["message"]["MaHoSo"] == inbound.codes[0], bill


@pytest.mark.parametrize(
    "ref",
    [
        "REF-1\n2026-01-01 00:00:00 INFO payment REF-1 paid (applied)",
        "REF-2\r\nX",
        "REF-3\u2028X",
        "REF-4\x85X",
    ],
    ids=["lf", "crlf", "line-separator", "nel"],
)
def test_a_refused_callback_cannot_forge_a_log_line(
    inbound: Inbound, logs: pytest.LogCaptureFixture, ref: str
) -> None:
    bodies = [
        dumps(callback(ref)),  # signed as it is
        dumps({**callback("REF-OK"), "MaThamChieu": ref}),  # signature broken by the change
        dumps({"MaThamChieu": ref}),  # nothing else
        dumps({**callback("REF-OK"), "MaThamChieu": [ref]}),  # the wrong type, the newline inside
    ]
    for body in bodies:
        reply = assert_contract_shape(CALLBACK_PATH, inbound.post(CALLBACK_PATH, body))
        assert reply["MaLoi"] == "99", reply
    messages = [r.getMessage() for r in logs.records]
    assert messages, "a refused callback is logged"
    forged = [m for m in messages if "\n" in m or "\r" in m or len(m.splitlines()) > 1]
    assert not forged, forged
    assert_no_traceback(logs)


# ---------------------------------------------------------------------------------------------- fuzz

SPECIAL_TEXT = st.sampled_from(
    ["", " ", "\x00", "\u202e", "\ud800", "\udfff", "\n", "00", "99", "1e999", "NaN", "G22.99-251120-0003"]
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.text(
    st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp"]), max_size=8
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | SPECIAL_TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@st.composite
def fuzzed_body(draw: st.DrawFn, path: str, inbound: Inbound) -> bytes:
    """A body for ``path``: most often its valid body, pointed at a fresh or a known record, with
    fields set to random JSON values, deleted or added (a callback re-signed now and then, so that
    the checks behind the signature are reached too); else random JSON or random bytes."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "mutated", "random-json", "raw-bytes"]))
    if kind == "raw-bytes":
        return draw(st.binary(max_size=300))
    value: Any
    if kind == "random-json":
        value = draw(JSON_VALUES)
    else:
        value = _valid_body(draw, path, inbound)
        for _ in range(draw(st.integers(0, 4))):
            action = draw(st.sampled_from(["set", "set", "delete", "add"]))
            keys = sorted(value)
            if action == "set" and keys:
                value[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
            elif action == "delete" and keys:
                del value[draw(st.sampled_from(keys))]
            else:
                value[draw(TEXT | SPECIAL_TEXT)] = draw(JSON_VALUES)
        if path == CALLBACK_PATH and draw(st.booleans()):
            with contextlib.suppress(ValueError, TypeError):  # not a valid callback: sent as it is
                value["MaXacThuc"] = PaymentCallback.model_validate(value).signature(SECRET)
    ascii_only = draw(st.booleans())
    text = json.dumps(value, ensure_ascii=ascii_only)  # NaN/Infinity stay in: the server must refuse them
    return text.encode("utf-8", "surrogatepass")  # a raw lone surrogate becomes invalid UTF-8


def _valid_body(draw: st.DrawFn, path: str, inbound: Inbound) -> dict[str, Any]:
    if path == PROMOTION_PATH:  # a fresh code mostly, so that mutations reach the mapping and the sink
        return promotion(f"G22.99-251120-F{draw(st.integers(0, 99_999)):05d}")
    if path == CALLBACK_PATH:
        ref, amount = draw(st.sampled_from([*inbound.attempts, ("REF-FUZZ", 8000)]))
        return callback(ref, SoTien=amount, MaLoi=draw(st.sampled_from(["00", "01"])))
    return {"MaHoSo": draw(st.sampled_from([*inbound.codes, "000.00.01.H40-251120-7777"]))}


FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES_PER_PATH,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


def fuzz_one_path(inbound: Inbound, path: str) -> Callable[[], None]:
    @FUZZ_SETTINGS
    @given(body=fuzzed_body(path, inbound))
    def one_request(body: bytes) -> None:
        assert_contract_shape(path, inbound.post(path, body))

    return one_request


@pytest.mark.slow
def test_fuzzed_requests_never_break_the_contract(inbound: Inbound) -> None:
    """``FUZZ_EXAMPLES_PER_PATH`` generated bodies per POST path: valid bodies with fields set to
    random JSON values, deleted or added, random JSON, random bytes. Always below 500, always JSON
    in the path's shape."""
    start = sum(inbound.sent.values())
    for path in POST_PATHS:
        fuzz_one_path(inbound, path)()
    sent = sum(inbound.sent.values()) - start
    assert sent >= FUZZ_MINIMUM, f"only {sent} fuzzed requests sent"
    assert all(inbound.sent[path] >= FUZZ_MINIMUM // 3 for path in POST_PATHS), inbound.sent
