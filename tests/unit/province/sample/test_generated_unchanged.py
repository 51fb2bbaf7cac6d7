"""The sample generators' output, pinned: a digest of every table's rows for a fixed seed and size.

The golden mapping outputs and many end-to-end tests are built on these databases, so a refactor of
the generators must leave every row byte-identical; a digest that moves says which table changed.
The digests were taken from the generators before their functions were split (issue 22 item 4).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from dvcsync.province.sample import generator
from dvcsync.province.sample.opencps import generator as opencps

SAMPLE = {
    "danh_gia": "887986c846ad348f",
    "don_vi": "984c68ef19adc8d5",
    "ho_so": "cf4f7ed87b6ddbd3",
    "le_phi": "3992090c70480651",
    "qua_trinh_xu_ly": "577f729c330787a7",
    "tai_lieu": "e8d330933fae6ee1",
    "thanh_toan": "a13a790aabfb6643",
    "thu_tuc": "2616acbc425a74b5",
    "sqlite_master": "2994a7639f0006bf",
}
OPENCPS = {
    "counter": "ba0769061a0c554a",
    "opencps_dossier": "2a589e2243e1d06c",
    "opencps_dossieraction": "a4f7725c9882a146",
    "opencps_dossierfile": "ef8e1c31ded19314",
    "opencps_dossierstatusmapping": "38c4f74ac551f27f",
    "opencps_paymentfile": "dcdac98bd26ec1a6",
    "opencps_processstep": "42e6ad3e83341b6d",
    "opencps_serviceinfo": "5bd867401eb9194b",
    "opencps_serviceinfomapping": "4ff6a4a64099e96c",
    "opencps_voting": "428aeb4c852f56f3",
    "opencps_votingresult": "31857ff76631e373",
    "sqlite_master": "ddbbe7c0e76774c9",
}


def _digests(path: Path) -> dict[str, str]:
    """Each table's rows in stored order (rowid), hashed with their Python types."""
    conn = sqlite3.connect(path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        digests = {}
        for table in sorted(tables):
            h = hashlib.sha256()
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                h.update(repr(row).encode())
            digests[table] = h.hexdigest()[:16]
        schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
        digests["sqlite_master"] = hashlib.sha256(repr(schema).encode()).hexdigest()[:16]
        return digests
    finally:
        conn.close()


@pytest.mark.parametrize("seed", [7])
def test_sample_rows_unchanged(tmp_path: Path, seed: int) -> None:
    generator.generate(tmp_path / "onestop.db", 400, seed)
    assert _digests(tmp_path / "onestop.db") == SAMPLE


@pytest.mark.parametrize("seed", [7])
def test_opencps_rows_unchanged(tmp_path: Path, seed: int) -> None:
    opencps.generate(tmp_path / "opencps.db", 400, seed)
    assert _digests(tmp_path / "opencps.db") == OPENCPS
