"""The configuration in two halves: the section models import no loader, the package imports
nothing above it (``dvcsync.tenants`` imports it, never the reverse), every name importable from
``dvcsync.config`` before the split still is, and the small value objects carry their section's
values."""

from __future__ import annotations

import ast
from pathlib import Path

import dvcsync.config
from dvcsync.config import Limits, PortalSettings, Retry, Settings, Timeouts

PACKAGE = Path(dvcsync.config.__file__).parent


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports, anywhere in it (a function's own import counts too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_the_configuration_imports_nothing_above_it() -> None:
    allowed = {"dvcsync.errors", "dvcsync._resources", "dvcsync.province.instants"}
    for path in PACKAGE.glob("*.py"):
        ours = {m for m in _imports(path) if m.startswith("dvcsync")}
        assert ours <= allowed, f"{path.name} imports {sorted(ours - allowed)}"


def test_the_section_models_do_not_read_the_configuration() -> None:
    assert "._loader" not in _imports(PACKAGE / "_sections.py")
    assert "._settings" not in _imports(PACKAGE / "_sections.py")
    assert not {"._sections", "._settings"} & _imports(PACKAGE / "_loader.py")


def test_every_module_is_small() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 800, path.name


def test_names_importable_before_the_split() -> None:
    for name in (
        "AccessSettings",
        "CitizenCheckSettings",
        "ConfigError",
        "DEPRECATED_COLUMNS",
        "LogSettings",
        "Network",
        "PaymentSettings",
        "PortalSettings",
        "REPORT_FORMATS",
        "ReconcileSettings",
        "SCHEDULE_EVERY",
        "ScheduleSettings",
        "ServerSettings",
        "Settings",
        "StateSettings",
        "TlsClientSettings",
        "_config_path",
        "duration_s",
        "is_loopback_host",
        "portal_check_mode",
        "published_secret_problems",
        "report_formats",
    ):
        assert hasattr(dvcsync.config, name), name


def test_tenants_still_offers_the_state_partition() -> None:
    from dvcsync.tenants import TENANT_CODE, state_identity, state_schema, tenant_state_url

    assert TENANT_CODE.match("tinh-b")
    assert tenant_state_url("sqlite:////srv/s.db", "a") == "sqlite:////srv/s-a.db"
    assert state_schema("postgresql://h/db?options=-csearch_path%3Ddvcsync_a") == "dvcsync_a"
    assert state_identity("sqlite:////srv/s.db") == ("sqlite", "/srv/s.db")


def test_value_objects_carry_the_sections_values() -> None:
    portal = PortalSettings(concurrency=3, rate_limit=7.5, batch_size=20, timeout=12, session_ttl_s=300)
    assert portal.limits == Limits(concurrency=3, rate_per_s=7.5, batch_size=20)
    assert portal.timeouts == Timeouts(request_s=12, session_ttl_s=300)
    default = Settings.load(None, use_env=False).portal
    assert default.retry == Retry(max_attempts=default.max_attempts, give_up_after_s=default.give_up_after)
    assert "limits" not in default.model_dump()  # a view of the section, not a key of it
