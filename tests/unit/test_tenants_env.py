"""Tenants from the environment (issue 20 item 3): a tenant whose code has ``-`` is reached by
one documented spelling, and a variable naming any undeclared tenant is an error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvcsync.config import ConfigError, Settings
from dvcsync.tenants import for_tenant, tenant_codes

pytestmark = pytest.mark.usefixtures("clean_env")

THREE = """
[state]
url = "sqlite:///state/dvcsync-state.db"
[tenants.tinh-a.portal]
dstcode = "H01"
[tenants.tinh-b.portal]
dstcode = "H02"
[tenants.qninh.portal]
dstcode = "H03"
"""


def _config(tmp_path: Path, text: str = THREE) -> Path:
    path = tmp_path / "dvcsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_underscore_spelling_reaches_the_dashed_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "b.secret"
    secret.write_text("mat-khau-b\n", encoding="utf-8")
    monkeypatch.setenv("DVCSYNC_TENANTS__TINH_B__PORTAL__PASSWORD_FILE", str(secret))
    settings = Settings.load(_config(tmp_path))
    assert tenant_codes(settings) == ["qninh", "tinh-a", "tinh-b"]  # no fourth tenant tinh_b
    b = for_tenant(settings, "tinh-b")
    assert b.portal.password is not None and b.portal.password.get_secret_value() == "mat-khau-b"
    assert for_tenant(settings, "tinh-a").portal.password_file is None
    assert b.origin("portal.password_file") == (
        "environment DVCSYNC_TENANTS__TINH_B__PORTAL__PASSWORD_FILE [tenants.tinh-b]"
    )


def test_the_literal_dash_spelling_also_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVCSYNC_TENANTS__TINH-A__PORTAL__TIMEOUT", "7")
    settings = Settings.load(_config(tmp_path))
    assert for_tenant(settings, "tinh-a").portal.timeout == 7
    assert for_tenant(settings, "tinh-b").portal.timeout != 7


@pytest.mark.parametrize("spelt", ["TINH_C", "TINHB", "TINH-C"])
def test_an_undeclared_tenant_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelt: str
) -> None:
    name = f"DVCSYNC_TENANTS__{spelt}__PORTAL__DSTCODE"
    monkeypatch.setenv(name, "H99")
    with pytest.raises(ConfigError) as caught:
        Settings.load(_config(tmp_path))
    assert name in str(caught.value)
    assert "declared: qninh, tinh-a, tinh-b" in str(caught.value)


def test_without_tenant_tables_a_tenant_variable_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVCSYNC_TENANTS__TINH_B__PORTAL__DSTCODE", "H02")
    with pytest.raises(ConfigError, match=r"no tenant 'TINH_B' is declared in the file \(no \[tenants"):
        Settings.load(_config(tmp_path, "[portal]\ntimeout = 5\n"))


def test_whole_tenants_as_json_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVCSYNC_TENANTS", '{"extra": {"portal": {"dstcode": "H99"}}}')
    with pytest.raises(ConfigError, match="DVCSYNC_TENANTS: no such setting"):
        Settings.load(_config(tmp_path))


def test_two_codes_reading_alike_each_keep_their_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = THREE + '[tenants.tinh_b.portal]\ndstcode = "H04"\n'
    monkeypatch.setenv("DVCSYNC_TENANTS__TINH_B__PORTAL__TIMEOUT", "8")
    settings = Settings.load(_config(tmp_path, text))
    assert for_tenant(settings, "tinh_b").portal.timeout == 8  # the exact code wins
    assert for_tenant(settings, "tinh-b").portal.timeout != 8


def test_each_tenant_has_its_own_files_folders(tmp_path: Path) -> None:
    from dvcsync.reconcile.run import reports_root
    from dvcsync.sync.attachments import documents_dir
    from dvcsync.sync.payments import receipts_dir

    text = THREE + '[payment]\nreceipts_dir = "receipts"\n[reconcile]\nout_dir = "reports"\n'
    settings = Settings.load(_config(tmp_path, text))
    state = (tmp_path / "state").resolve()
    for code in ("tinh-a", "tinh-b"):
        own = for_tenant(settings, code)
        assert documents_dir(own) == state / "documents" / code
        assert receipts_dir(own) == tmp_path / "receipts" / code
        assert reports_root(own) == tmp_path / "reports" / code
    # one province: the folders as they always were
    single = Settings.load(_config(tmp_path, '[state]\nurl = "sqlite:///state/s.db"\n'))
    assert documents_dir(single) == state / "documents" and receipts_dir(single) == state / "receipts"
