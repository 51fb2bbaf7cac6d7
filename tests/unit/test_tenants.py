"""``[tenants.<code>]``: merging over the shared settings, the state partition, refusals naming
the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvcsync.config import ConfigError, Settings
from dvcsync.tenants import (
    TENANT_CODE,
    each_tenant,
    for_tenant,
    state_identity,
    state_schema,
    tenant_codes,
    tenant_state_url,
)

pytestmark = pytest.mark.usefixtures("clean_env")


def _config(tmp_path: Path, text: str, name: str = "dvcsync.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


TWO = """
[state]
url = "sqlite:///state/dvcsync-state.db"
[portal]
timeout = 12
concurrency = 3
[schedule]
pull = "every 5m"

[tenants.qninh.province]
source_url = "sqlite:///qninh.db"
mappings = "mappings-qninh"
[tenants.qninh.portal]
dstcode = "H22"
madonvi = "000.00.01.H22"

[tenants.hphong]
portal = { timeout = 5 }
schedule = { push = "every 2m" }
"""


def test_no_tenants(tmp_path: Path) -> None:
    settings = Settings.load(_config(tmp_path, "[portal]\ntimeout = 3\n"))
    assert tenant_codes(settings) == [] and settings.tenant == "" and settings.tenants == {}
    assert each_tenant(settings) == {"": settings}
    with pytest.raises(ConfigError, match=r"no \[tenants\.<code>\] tables"):
        for_tenant(settings, "qninh")


def test_each_tenant_is_the_shared_settings_with_its_own_table_over_them(tmp_path: Path) -> None:
    config = _config(tmp_path, TWO)
    settings = Settings.load(config)
    assert tenant_codes(settings) == ["hphong", "qninh"]
    tenants = each_tenant(settings)
    assert list(tenants) == ["hphong", "qninh"]
    qninh, hphong = tenants["qninh"], tenants["hphong"]
    assert for_tenant(settings, "qninh") is qninh and qninh.tenant == "qninh" and hphong.tenant == "hphong"
    assert each_tenant(qninh) == {"qninh": qninh} and for_tenant(qninh, "qninh") is qninh
    # own values
    assert qninh.portal.dstcode == "H22" and qninh.portal.madonvi == "000.00.01.H22"
    assert hphong.portal.timeout == 5 and hphong.schedule.push == "every 2m"
    # shared values (deep merge: a tenant's [portal] keeps the keys it does not set)
    assert qninh.portal.timeout == 12 and qninh.portal.concurrency == 3 and hphong.portal.concurrency == 3
    assert hphong.portal.dstcode == settings.portal.dstcode == "H40"
    assert qninh.schedule.pull == hphong.schedule.pull == "every 5m"
    # relative paths in a tenant table resolve against the file's folder
    assert qninh.province.source_url == f"sqlite:///{tmp_path / 'qninh.db'}"
    assert qninh.province.mappings == tmp_path / "mappings-qninh"
    assert hphong.province.source_url == settings.province.source_url
    # where each value came from
    assert qninh.origin("portal.dstcode") == f"file {config} [tenants.qninh]"
    assert qninh.origin("portal.timeout") == f"file {config}"
    assert qninh.origin("state.url") == "derived from state.url for tenant qninh"
    assert hphong.origin("portal.madonvi") == "default"
    assert qninh.tenants == {} and tenant_codes(qninh) == []


def test_state_partitioned_beside_the_shared_sqlite_file(tmp_path: Path) -> None:
    tenants = each_tenant(Settings.load(_config(tmp_path, TWO)))
    assert tenants["qninh"].state.url == f"sqlite:///{tmp_path / 'state' / 'dvcsync-state-qninh.db'}"
    assert tenants["hphong"].state.url == f"sqlite:///{tmp_path / 'state' / 'dvcsync-state-hphong.db'}"


def test_a_tenant_may_name_its_own_state(tmp_path: Path) -> None:
    text = TWO + '[tenants.hphong.state]\nurl = "sqlite:///hp/state.db"\nlock_wait_s = 2\n'
    hphong = for_tenant(Settings.load(_config(tmp_path, text)), "hphong")
    assert hphong.state.url == f"sqlite:///{tmp_path / 'hp' / 'state.db'}" and hphong.state.lock_wait_s == 2
    assert hphong.origin("state.url").endswith("[tenants.hphong]")


@pytest.mark.parametrize(
    ("url", "code", "expected"),
    [
        ("sqlite:////srv/dvcsync/dvcsync-state.db", "a", "sqlite:////srv/dvcsync/dvcsync-state-a.db"),
        ("sqlite+pysqlite:////srv/state.sqlite", "b-1", "sqlite+pysqlite:////srv/state-b-1.sqlite"),
        ("sqlite:////srv/state", "c", "sqlite:////srv/state-c"),
        ("sqlite:////srv/s.db?timeout=5", "d", "sqlite:////srv/s-d.db?timeout=5"),
    ],
)
def test_sqlite_state_url_per_tenant(url: str, code: str, expected: str) -> None:
    assert tenant_state_url(url, code) == expected
    assert state_schema(expected) is None


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("postgresql+psycopg2://dvcsync:p%40ss@db.example:5432/dvcsync", "dvcsync_acme"),
        ("postgresql://dvcsync@db.example/dvcsync?sslmode=require", "dvcsync_acme"),
        ("postgresql://dvcsync@db/dvcsync?options=-c%20statement_timeout%3D5000", "dvcsync_acme"),
        ("postgresql://dvcsync@db/dvcsync?options=-csearch_path%3Dshared", "dvcsync_acme"),
    ],
)
def test_postgres_state_url_per_tenant_is_a_schema_of_the_same_database(url: str, schema: str) -> None:
    from sqlalchemy.engine import make_url

    derived = tenant_state_url(url, "acme")
    assert state_schema(derived) == schema
    before, after = make_url(url), make_url(derived)
    assert (after.drivername, after.username, after.password, after.host, after.port, after.database) == (
        before.drivername,
        before.username,
        before.password,
        before.host,
        before.port,
        before.database,
    )
    options = after.query["options"]
    assert isinstance(options, str) and options.endswith("-csearch_path=dvcsync_acme")
    assert "shared" not in options  # a search_path of the shared state is replaced, not kept
    if "statement_timeout" in url:
        assert "-c statement_timeout=5000" in options  # other options kept
    if "sslmode" in url:
        assert after.query["sslmode"] == "require"
    identity = ("postgresql", before.host, str(before.port or ""), "dvcsync", schema)
    assert state_identity(derived) == identity


def test_dashes_become_underscores_in_a_schema() -> None:
    assert state_schema(tenant_state_url("postgresql://u@h/db", "tinh-a")) == "dvcsync_tinh_a"


def test_a_state_that_cannot_be_split_needs_each_tenant_s_own_url(tmp_path: Path) -> None:
    text = '[state]\nurl = "sqlite:///:memory:"\n[tenants.a]\n[tenants.b]\n'
    with pytest.raises(ConfigError, match=r"tenants\.a\.state\] url"):
        Settings.load(_config(tmp_path, text))
    text += '[tenants.a.state]\nurl = "sqlite:///a.db"\n[tenants.b.state]\nurl = "sqlite:///b.db"\n'
    assert [t.state.url for t in each_tenant(Settings.load(_config(tmp_path, text))).values()] == [
        f"sqlite:///{tmp_path / 'a.db'}",
        f"sqlite:///{tmp_path / 'b.db'}",
    ]


def test_two_tenants_on_one_state_are_refused(tmp_path: Path) -> None:
    # b's derived file is the one a names
    text = '[state]\nurl = "sqlite:///s.db"\n[tenants.a.state]\nurl = "sqlite:///s-b.db"\n[tenants.b]\n'
    config = _config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Settings.load(config)
    assert str(config) in str(caught.value) and "tenants a and b share one state" in str(caught.value)
    # the same PostgreSQL schema spelled two ways
    text = (
        "[tenants.a.state]\n"
        'url = "postgresql://u:one@db.example/dvcsync?options=-csearch_path%3Dp"\n'
        "[tenants.b.state]\n"
        'url = "postgresql+psycopg2://v:two@DB.example/dvcsync?options=-c%20search_path%3Dp,public"\n'
    )
    with pytest.raises(ConfigError, match="tenants a and b share one state"):
        Settings.load(_config(tmp_path, text))


def test_errors_name_the_file_the_tenant_section_and_key(tmp_path: Path) -> None:
    text = (
        "[tenants.qninh.portal]\ntimeout = -1\nbogus = 3\n"
        '[tenants.hphong]\nporta = 1\n[tenants.hphong.schedule]\npush = "sometimes"\n'
    )
    config = _config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Settings.load(config)
    lines = str(caught.value).splitlines()
    assert f"{config}: [tenants.qninh.portal] timeout: Input should be greater than 0" in lines
    assert f"{config}: [tenants.qninh.portal] bogus: unknown key" in lines
    assert f"{config}: [tenants.hphong] porta: unknown key" in lines
    assert any(line.startswith(f"{config}: [tenants.hphong.schedule] push: ") for line in lines)


def test_a_shared_error_is_reported_as_before(tmp_path: Path) -> None:
    config = _config(tmp_path, "[portal]\ntimeout = 0\n[tenants.a]\n")
    with pytest.raises(ConfigError, match=r": portal\.timeout: Input should be greater than 0"):
        Settings.load(config)


@pytest.mark.parametrize("code", ["QN", "-a", "a.b", "a" * 33, "tỉnh", ""])
def test_bad_codes_are_refused(tmp_path: Path, code: str) -> None:
    config = _config(tmp_path, f'[tenants."{code}"]\n')
    with pytest.raises(ConfigError, match="a tenant code is"):
        Settings.load(config)
    assert TENANT_CODE.match(code) is None


def test_good_codes() -> None:
    for code in ("a", "qninh", "h40", "tinh-a", "tinh_b", "0", "a" * 32):
        assert TENANT_CODE.match(code), code


def test_tenants_do_not_nest_and_must_be_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[tenants\.a\] tenants: tenants do not nest"):
        Settings.load(_config(tmp_path, "[tenants.a.tenants.b]\n"))
    with pytest.raises(ConfigError, match=r"tenants\.a: expected a table"):
        Settings.load(_config(tmp_path, "[tenants]\na = 1\n"))


def test_unknown_tenant_names_the_known_ones(tmp_path: Path) -> None:
    settings = Settings.load(_config(tmp_path, TWO))
    with pytest.raises(ConfigError, match="no tenant 'haiphong': the configured tenants are hphong, qninh"):
        for_tenant(settings, "haiphong")


def test_environment_per_tenant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "hp.secret"
    secret.write_text("mat-khau-hai-phong\n", encoding="utf-8")
    monkeypatch.setenv("DVCSYNC_TENANTS__HPHONG__PORTAL__PASSWORD_FILE", str(secret))
    monkeypatch.setenv("DVCSYNC_TENANTS__HPHONG__SERVER__PAYMENT__ALLOW", '["10.1.0.0/16"]')
    monkeypatch.setenv("DVCSYNC_PORTAL__TIMEOUT", "20")  # shared: loses to a tenant's own value
    settings = Settings.load(_config(tmp_path, TWO))
    hphong, qninh = for_tenant(settings, "hphong"), for_tenant(settings, "qninh")
    assert hphong.portal.password.get_secret_value() == "mat-khau-hai-phong"
    assert qninh.portal.password.get_secret_value() != "mat-khau-hai-phong"
    assert [str(n) for n in hphong.server.payment.allow or []] == ["10.1.0.0/16"]
    assert qninh.server.payment.allow is None
    assert hphong.portal.timeout == 5 and qninh.portal.timeout == 20
    assert hphong.origin("portal.password_file") == (
        "environment DVCSYNC_TENANTS__HPHONG__PORTAL__PASSWORD_FILE [tenants.hphong]"
    )


def test_environment_unknown_tenant_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVCSYNC_TENANTS__HPHONG__PORTAL__TIMEOT", "5")
    with pytest.raises(ConfigError, match="DVCSYNC_TENANTS__HPHONG__PORTAL__TIMEOT: no such setting"):
        Settings.load(_config(tmp_path, TWO))


def test_a_tenant_only_in_the_environment_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 20: a variable naming no declared tenant once built a tenant from defaults
    monkeypatch.setenv("DVCSYNC_TENANTS__EXTRA__PORTAL__DSTCODE", "H99")
    with pytest.raises(ConfigError, match="DVCSYNC_TENANTS__EXTRA__PORTAL__DSTCODE: no tenant 'EXTRA'"):
        Settings.load(_config(tmp_path, TWO))


def test_dvcsync_tenant_is_not_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVCSYNC_TENANT", "qninh")
    Settings.load()  # the CLI reads it; the settings do not refuse it as an unknown key
