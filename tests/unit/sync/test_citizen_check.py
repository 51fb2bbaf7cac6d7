"""The citizen check without a network: verdicts, the cache, which dossiers are asked, and a
population service that is down or refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dvcsync.config import PortalSettings, Settings
from dvcsync.contract import PortalReply
from dvcsync.mapping.errors import mask
from dvcsync.portal import UnreachableError
from dvcsync.state import MappedRecord, StateStore
from dvcsync.sync import citizen_check
from dvcsync.sync.citizen_check import (
    BIRTH_FIELD,
    ID_FIELD,
    MATCH,
    NAME_FIELD,
    CitizenCheck,
    LookupClient,
    Owner,
    Verdict,
    VerdictCache,
    judge,
)

AN = {
    "SoDinhDanh": "040085367903",
    "HoVaTen": {"Ho": "Nguyễn", "ChuDem": "Văn", "Ten": "An"},
    "NgayThangNamSinh": {"NgayThangNam": "19850314"},
}


def test_judge_names_the_first_field_that_differs() -> None:
    owner = Owner("HS-1", "040085367903", "Nguyễn Văn An", "19850314")
    assert judge(owner, [AN]) is MATCH
    # NFC/NFD, case and runs of spaces do not make another name
    nfd = "NGUYE\u0302\u0303N  va\u0306n   an"
    assert judge(Owner("HS-1", "040085367903", nfd), [AN]) is MATCH
    assert judge(owner, []).field == ID_FIELD
    assert judge(Owner("HS-1", "040085367903", "Nguyễn Văn Ân"), [AN]).field == NAME_FIELD
    assert judge(Owner("HS-1", "040085367903", "Nguyễn Văn An", "19850315"), [AN]).field == BIRTH_FIELD
    assert judge(Owner("HS-1", "040085367903", "Nguyễn Văn An"), [AN]) is MATCH  # no birth date: not compared


def test_the_cache_expires_and_holds_no_clear_value() -> None:
    now = [1000.0]
    cache = VerdictCache(clock=lambda: now[0])
    owner = Owner("HS-1", "040085367903", "Nguyễn Văn An")
    cache.put(owner, MATCH, ttl_s=60)
    assert cache.get(owner) is MATCH
    assert cache.get(Owner("HS-2", "040085367903", "nguyễn  văn an")) is MATCH  # same person, other dossier
    assert cache.get(Owner("HS-1", "040085367903", "Nguyễn Văn Ân")) is None
    assert not any("040085367903" in key or "An" in key for key in cache._items)
    now[0] += 61
    assert cache.get(owner) is None and len(cache) == 0
    cache.put(owner, MATCH, ttl_s=0)  # a time-to-live of 0: nothing kept
    assert len(cache) == 0


class FakeClient:
    """Answers from ``people`` by ID; ``fail`` raises it instead; counts the calls."""

    def __init__(self, people: list[dict[str, Any]], fail: Exception | None = None, code: int = 0) -> None:
        self.people, self.fail, self.code = people, fail, code
        self.asked: list[str] = []

    async def call(
        self,
        service: str,
        fields: dict[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
        max_attempts: int | None = None,
        typed: bool = True,
    ) -> PortalReply:
        assert service == "TraCuuThongTinCongDan" and idempotent is True and fields is not None
        self.asked.append(fields["SoDinhDanh"])
        if self.fail is not None:
            raise self.fail
        found = [p for p in self.people if p["SoDinhDanh"] == fields["SoDinhDanh"]]
        return PortalReply.model_validate(
            {"error_code": self.code, "message": "", "CongdanCollection": {"CongDan": found}}
        )

    async def aclose(self) -> None:
        pass


def _check(
    client: FakeClient, *, cache: VerdictCache | None = None, **options: Any
) -> tuple[CitizenCheck, list[PortalSettings]]:
    settings = Settings.load(None, use_env=False, citizen_check={"enabled": True, **options})
    seen: list[PortalSettings] = []

    def factory(portal: PortalSettings, concurrency: int, rate: float) -> LookupClient:
        seen.append(portal)
        return client

    check = CitizenCheck(
        settings,
        source_columns={ID_FIELD: "so_giay_to", NAME_FIELD: "chu_ho_so"},
        cache=cache or VerdictCache(),
        client_factory=factory,
    )
    return check, seen


def _record(key: str, number: str, name: str, owner_type: str = "1", **extra: Any) -> MappedRecord:
    dossier = {"MaHoSo": key, "SoGiayToChuHoSo": number, "ChuHoSo": name, "LoaiDoiTuong": owner_type}
    return MappedRecord(record_key=key, source_id=1, source_updated_at="", dossier=dossier, **extra)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.prepare()
    return store


def test_a_page_asks_only_for_changed_citizen_owners_and_quarantines_a_mismatch(store: StateStore) -> None:
    client = FakeClient([AN])
    check, seen = _check(client)
    unchanged = _record("HS-0", "040085367903", "Nguyễn Văn An")
    store.enqueue_page([unchanged], cursor_name=None, watermark="", last_key=0)
    page = [
        unchanged,  # pushed before with this payload: not asked
        _record("HS-1", "040085367903", "Nguyễn Văn An"),
        _record("HS-2", "040085367903", "Nguyễn Văn Ánh"),
        _record("HS-3", "0312345678", "Công ty TNHH A", owner_type="2"),  # a business: not asked
        _record("HS-4", "123456789", "Trần B"),  # an old 9-digit ID: nothing to ask by
        MappedRecord("HS-5", 1, "", None, errors=[{"field": "x"}]),  # quarantined already
    ]
    out = check.check_page(store.engine, [{} for _ in page], page)
    assert client.asked == ["040085367903", "040085367903"]
    assert seen[0].transport_for("TraCuuThongTinCongDan") == "soap"  # whatever [portal] transport says
    assert [r.dossier is not None for r in out] == [True, True, False, True, True, False]
    (error,) = out[2].errors
    assert (error["field"], error["source"]) == (NAME_FIELD, "chu_ho_so")
    assert error["value"] == repr(mask("Nguyễn Văn Ánh"))
    counts = check.counts()
    assert (counts.lookups, counts.checked, counts.mismatched, counts.uncheckable) == (2, 2, 1, 1)

    again = check.check_page(store.engine, [{} for _ in page], page)  # within the time-to-live
    assert len(client.asked) == 2 and check.counts().cached == 2
    assert [r.dossier is not None for r in again] == [True, True, False, True, True, False]


def test_a_service_that_is_down_skips_the_page_and_the_next_ones_for_a_while(store: StateStore) -> None:
    client = FakeClient([AN], fail=UnreachableError("TraCuuThongTinCongDan", "not sent: refused"))
    check, _ = _check(client, concurrency=1)
    page = [_record(f"HS-{i}", "040085367903", "Sai Tên") for i in range(3)]
    out = check.check_page(store.engine, [{} for _ in page], page)
    assert out == page  # pushed unchecked, mismatch or not
    assert client.asked == ["040085367903"]  # the first found it down; the others were not asked
    assert check.counts().skipped == 3
    check.check_page(store.engine, [{} for _ in page], page)
    assert len(client.asked) == 1 and check.counts().skipped == 6


def test_a_refused_lookup_is_no_verdict(store: StateStore) -> None:
    check, _ = _check(FakeClient([AN], code=1))
    page = [_record("HS-1", "040085367903", "Sai Tên")]
    assert check.check_page(store.engine, [{}], page) == page
    assert check.counts().skipped == 1 and check.counts().mismatched == 0


def test_a_birth_date_column_is_compared_and_an_unreadable_one_quarantined(store: StateStore) -> None:
    client = FakeClient([AN])
    check, _ = _check(client, birth_date_column="ngay_sinh")
    page = [
        _record("HS-1", "040085367903", "Nguyễn Văn An"),
        _record("HS-2", "040085367903", "Nguyễn Văn An"),
        _record("HS-3", "040085367903", "Nguyễn Văn An"),
    ]
    sources = [{"ngay_sinh": "1985-03-14"}, {"ngay_sinh": "1985-03-15"}, {"ngay_sinh": "14/03/85"}]
    out = check.check_page(store.engine, sources, page)
    assert out[0] is page[0]
    assert [e["field"] for e in out[1].errors] == [BIRTH_FIELD]
    assert out[1].errors[0]["source"] == "ngay_sinh" and "1985" not in out[1].errors[0]["value"]
    assert [e["field"] for e in out[2].errors] == [BIRTH_FIELD] and len(client.asked) == 2


def test_counts_reach_the_metrics_once() -> None:
    from dvcsync import metrics

    check, _ = _check(FakeClient([]))
    before = metrics.CITIZEN_CHECKS.labels("mismatch")._value.get()
    check._count("checked", 3)
    check._count("mismatched", 1)
    assert check.observe().checked == 3
    assert metrics.CITIZEN_CHECKS.labels("mismatch")._value.get() == before + 1


def test_the_verdict_type_is_plain() -> None:
    assert Verdict(None) == MATCH and citizen_check.SERVICE == "TraCuuThongTinCongDan"
