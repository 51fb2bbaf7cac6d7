"""``[reconcile] *_column`` settings predate province.yaml: unset, reconcile reads the schema's
columns; set, they still win and the load warns naming the key and its province.yaml successor."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvcsync.config import DEPRECATED_COLUMNS, Settings
from dvcsync.province.schema import Dossiers, load_schema
from dvcsync.reconcile.province_state import dossier_columns

ROOT = Path(__file__).resolve().parents[2]


def test_unset_columns_come_from_province_yaml(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.load(None, use_env=False)
    schema = load_schema(ROOT / "mappings")
    columns = dossier_columns(settings, schema)
    d = schema.dossiers
    assert (columns.received, columns.agency, columns.procedure, columns.owner, columns.portal_code) == (
        d.received,
        d.agency,
        d.procedure,
        d.owner,
        d.portal_code,
    )
    assert "deprecated" not in caplog.text


def test_a_set_column_wins_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        '[reconcile]\norigin_column = "portal_no"\nowner_column = "applicant"\n', encoding="utf-8"
    )
    settings = Settings.load(config, use_env=False)
    columns = dossier_columns(settings, load_schema(ROOT / "mappings"))
    assert (columns.portal_code, columns.owner) == ("portal_no", "applicant")
    assert columns.agency == load_schema(ROOT / "mappings").dossiers.agency
    assert "[reconcile] origin_column is deprecated" in caplog.text
    assert "province.yaml (dossiers.portal_code)" in caplog.text and "owner_column" in caplog.text
    assert set(DEPRECATED_COLUMNS.values()) <= set(Dossiers.model_fields)
