from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from dvcsync.config import LogSettings, PortalSettings, Settings
from dvcsync.logs import LIBRARIES, SafeFormatter, apply_log_settings
from dvcsync.mapping import load_mappings
from dvcsync.metrics import REGISTRY
from dvcsync.portal import Backoff, PortalClient
from dvcsync.province.sample import generate
from dvcsync.state import StateStore
from dvcsync.sync.cycles import run_push

REPO = Path(__file__).resolve().parents[2]


def _format(msg: str, *args: object, exc: bool = False) -> str:
    record = logging.LogRecord("adapter.x", logging.WARNING, __file__, 1, msg, args, None)
    if exc:
        try:
            raise ValueError("ours")
        except ValueError:
            record.exc_info = sys.exc_info()
    return SafeFormatter("%(levelname)s %(message)s").format(record)


def test_a_newline_in_an_argument_cannot_start_a_forged_line() -> None:
    line = _format("payment callback refused for %s: %s", "REF\n2026-11-29 INFO adapter: paid", "x")
    assert "\n" not in line and "\\x0a" in line


def test_bidi_and_nul_are_escaped() -> None:
    line = _format("code %s", "AB\u202eCD\x00")
    assert "\u202e" not in line and "\x00" not in line


def test_our_own_tracebacks_keep_their_lines() -> None:
    text = _format("failed %s", "x", exc=True)
    assert "Traceback" in text and "\n" in text and "ValueError: ours" in text


# ---------------------------------------------------------------------- [log] settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """apply_log_settings changes the root logger: put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in libraries.items():
        logging.getLogger(name).setLevel(old)


def _emit(record: logging.LogRecord) -> str:
    handler = logging.getLogger().handlers[0]
    assert handler.formatter is not None
    return handler.formatter.format(record)


def test_json_lines_parse_with_their_fields(restore_logging: None) -> None:
    apply_log_settings(LogSettings(format="json"), verbose=False, service=True)
    record = logging.LogRecord(
        "dvcsync.sync", logging.WARNING, __file__, 1, "dead letter: %s", ("A\n1",), None
    )
    line = _emit(record)
    assert "\n" not in line  # the newline in the argument is escaped by JSON
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "dvcsync.sync"
    assert entry["message"] == "dead letter: A\n1" and entry["time"].endswith("+00:00")
    assert "exc_info" not in entry
    try:
        raise ValueError("ours")
    except ValueError:
        record.exc_info = sys.exc_info()
    with_traceback = json.loads(_emit(record))
    assert "ValueError: ours" in with_traceback["exc_info"]


def test_libraries_stay_at_warning_whatever_the_level(restore_logging: None) -> None:
    apply_log_settings(LogSettings(level="DEBUG"), verbose=True, service=True)
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("dvcsync.portal.client").isEnabledFor(logging.DEBUG)
    for name in LIBRARIES:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger(name).isEnabledFor(logging.WARNING), name


def test_one_off_commands_warn_unless_the_level_is_set(restore_logging: None) -> None:
    apply_log_settings(LogSettings(), verbose=False)
    assert logging.getLogger().level == logging.WARNING
    apply_log_settings(LogSettings(), verbose=False, service=True)  # dvcsync run: INFO by default
    assert logging.getLogger().level == logging.INFO
    apply_log_settings(LogSettings(level="info"), verbose=False)  # set explicitly: honoured
    assert logging.getLogger().level == logging.INFO
    apply_log_settings(LogSettings(level="ERROR"), verbose=True)
    assert logging.getLogger().level == logging.DEBUG


# ---------------------------------------------------------------------- what the sync logs

BASE = "http://portal.test/dvcqg"


def _portal(**overrides: Any) -> PortalClient:
    settings = PortalSettings(
        adapter_url=BASE, dstcode="H40", madonvi="000.00.00.H40", rate_limit=10_000, **overrides
    )

    async def no_sleep(delay: float) -> None:
        return None

    return PortalClient(settings, httpx.AsyncClient(), backoff=Backoff(rng=random.Random(1)), sleep=no_sleep)


@respx.mock(assert_all_called=False)
def test_a_retry_logs_one_warning_naming_the_service(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    respx_mock.post(f"{BASE}/auth").mock(
        return_value=httpx.Response(200, json={"error_code": 0, "session": "S1", "message": "ok"})
    )
    respx_mock.post(f"{BASE}/integration").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "2"}, text="secret body"),
            httpx.Response(200, json={"error_code": 0, "message": "", "result": []}),
        ]
    )
    before = REGISTRY.get_sample_value("dvcsync_portal_retries_total", {"cause": "transient"}) or 0.0
    with caplog.at_level(logging.INFO, logger="dvcsync"):
        assert asyncio.run(_portal().call("TraCuuHoSo", {"mahoso": "X-1"})).ok
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    message = warnings[0].getMessage()
    assert "TraCuuHoSo" in message and "transient" in message and "HTTP 503" in message
    assert "2.0 s" in message and "secret body" not in message and "\n" not in message
    assert REGISTRY.get_sample_value("dvcsync_portal_retries_total", {"cause": "transient"}) == before + 1
    ok = {"service": "TraCuuHoSo", "outcome": "ok"}
    assert (REGISTRY.get_sample_value("dvcsync_portal_requests_total", ok) or 0) >= 1


@respx.mock(assert_all_called=False)
def test_a_dead_letter_logs_a_warning_naming_the_dossier(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The portal refuses every dossier: each becomes a dead letter, and says so by its code."""
    onestop = tmp_path / "onestop.db"
    generate(onestop, 20, 3)
    settings = Settings.load(
        None,
        use_env=False,
        province={"source_url": f"sqlite:///{onestop}", "mappings": str(REPO / "mappings")},
        portal={"adapter_url": BASE, "rate_limit": 10_000},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        push={"parallel_enqueue": False},
    )

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["service"] == "TraCuuHoSo":  # the first-contact read-back: not on the portal yet
            return httpx.Response(200, json={"error_code": 0, "message": "", "result": []})
        items = json.loads(body["data"]) if isinstance(body["data"], str) else body["data"]
        items = items if isinstance(items, list) else [items]
        refused = [{"MaHoSo": i["MaHoSo"], "error_code": -1, "message": "mã thủ tục sai"} for i in items]
        if body["service"] == "DongBoHoSoMC":
            return httpx.Response(200, json={"error_code": 0, "message": "", "result": refused})
        return httpx.Response(200, json={"error_code": -1, "message": "mã thủ tục sai"})

    respx_mock.post(f"{BASE}/auth").mock(
        return_value=httpx.Response(200, json={"error_code": 0, "session": "S1", "message": "ok"})
    )
    respx_mock.post(f"{BASE}/integration").mock(side_effect=answer)
    before = REGISTRY.get_sample_value("dvcsync_dead_letters_total", {"kind": "dossier"}) or 0.0
    with caplog.at_level(logging.WARNING, logger="dvcsync"):
        summary = asyncio.run(run_push(settings, load_mappings(settings.province.mappings)))
    assert summary.dead > 0
    store = StateStore(settings.state.url)
    try:
        dead = store.dead()
    finally:
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dead letter")]
    assert len(lines) == summary.dead == len(dead)
    for entry in dead:
        assert any(entry["record_key"] in line and "mã thủ tục sai" in line for line in lines), entry
    after = REGISTRY.get_sample_value("dvcsync_dead_letters_total", {"kind": "dossier"})
    assert after == before + sum(1 for e in dead if e["kind"] == "dossier")
