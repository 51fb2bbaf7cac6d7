"""The province's database on MariaDB (OpenCPS's own) and PostgreSQL, below the CLI:

- ``SqlSource.iter_changed`` over MariaDB ``DATETIME``/``DATETIME(6)`` and text columns, with the
  checks tests/integration/test_changed_rows.py runs on SQLite and PostgreSQL (instant order,
  full pages, resumable from any page's cursor, a late commit inside the look-back);
- the reads that go over a whole table or window use a server-side cursor (the driver never
  holds the whole result): the listing of a mixed-form text window, reconcile's dossier stream;
- reconcile's stream is in byte order on both (MariaDB's usual collation is case-insensitive,
  PostgreSQL's a locale's): ``H40.A`` before ``H40.a``, as Python compares them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from dvcsync.province.reconcile import dossier_rows
from dvcsync.province.sample import generate
from dvcsync.province.schema import ProvinceSchema
from dvcsync.province.source import make_engine

from .. import mariadb, postgres
from ..source_servers import copy_sqlite
from . import test_changed_rows as changed_rows
from .test_changed_rows import TEXT_FORMS, Source

SERVERS = {"postgresql": postgres, "mariadb": mariadb}


@pytest.fixture(scope="module")
def mariadb_url() -> Iterator[str]:
    with mariadb.mariadb_server() as server:
        yield server


@pytest.fixture(scope="module")
def servers(mariadb_url: str) -> Iterator[dict[str, str]]:
    with postgres.postgres_server() as pg:
        yield {"postgresql": pg, "mariadb": mariadb_url}


MARIADB_CASES = {
    "DATETIME": ("DATETIME", changed_rows._local),
    "DATETIME6": ("DATETIME(6)", changed_rows._local),
    "varchar-space": ("VARCHAR(40)", TEXT_FORMS["space"]),
    "varchar-mixed": ("VARCHAR(40)", TEXT_FORMS["mixed-T-and-space"]),
    "varchar-offset": ("VARCHAR(40)", TEXT_FORMS["offset"]),
}


@pytest.fixture(params=list(MARIADB_CASES))
def source(request: pytest.FixtureRequest, mariadb_url: str) -> Iterator[Source]:
    column_type, render = MARIADB_CASES[request.param]
    engine = make_engine(mariadb.create_database(mariadb_url, "changes"))
    yield Source(engine, column_type, render)
    engine.dispose()


def test_mariadb_rows_in_instant_order_in_full_pages_and_resumable(source: Source) -> None:
    changed_rows.test_everything_in_instant_order_in_full_pages_and_resumable_from_any_page(source)


def test_mariadb_until_is_inclusive(source: Source) -> None:
    changed_rows.test_until_is_inclusive_and_later_rows_wait(source)


def test_mariadb_late_commit_inside_the_look_back(source: Source) -> None:
    changed_rows.test_a_late_commit_inside_the_look_back_is_read_and_one_behind_the_cursor_alone_is_not(
        source
    )


def _watch(engine: Engine) -> list[tuple[str, bool]]:
    """Every statement run on ``engine`` from now on, and whether its cursor is server-side."""
    import pymysql.cursors

    seen: list[tuple[str, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        server_side = (
            isinstance(cursor, pymysql.cursors.SSCursor) or getattr(cursor, "name", None) is not None
        )  # PyMySQL: an unbuffered cursor; psycopg2: a named one
        seen.append((" ".join(statement.split()), server_side))

    return seen


@pytest.mark.parametrize("kind", list(SERVERS))
def test_a_mixed_text_window_is_listed_through_a_server_side_cursor(
    servers: dict[str, str], kind: str
) -> None:
    engine = make_engine(SERVERS[kind].create_database(servers[kind], "listed"))
    made = Source(engine, "VARCHAR(40)", TEXT_FORMS["mixed-T-and-space"])
    changed_rows._fill(made, 23)
    seen = _watch(engine)
    until = changed_rows.BASE + timedelta(days=1)
    ids = [i for page, _ in made.changed(None, until=until, page_size=10) for i in page]
    assert ids == made.in_order(list(made.times))
    listings = [side for statement, side in seen if statement.startswith("SELECT updated_at, id FROM items")]
    assert listings == [True]
    assert not any(side for statement, side in seen if "IN (" in statement)  # pages by id: bounded
    engine.dispose()


@pytest.mark.parametrize("kind", list(SERVERS))
def test_reconcile_streams_the_dossiers_in_byte_order(
    servers: dict[str, str], kind: str, tmp_path: Path
) -> None:
    generate(tmp_path / "onestop.db", 60, 7)
    url = SERVERS[kind].create_database(servers[kind], "reconcile")
    copy_sqlite(tmp_path / "onestop.db", url)
    engine = make_engine(url)
    # unique on MariaDB's case- and accent-insensitive collation too; its order would be this one
    codes = ["H40.a-0001", "H40.A-0002", "H40.é-0003", "H40.E-0004", "H40.z-0005"]
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM ho_so WHERE ma_ho_so_qg IS NULL ORDER BY id"))]
        for dossier_id, code in zip(ids, codes, strict=False):
            conn.execute(text("UPDATE ho_so SET so_ho_so = :c WHERE id = :i"), {"c": code, "i": dossier_id})
    seen = _watch(engine)
    rows = list(dossier_rows(engine, ProvinceSchema()))
    keys = [row["k"] for row in rows]
    assert keys == sorted(keys) and len(keys) == 60
    ours = [k for k in keys if k in codes]
    assert ours == ["H40.A-0002", "H40.E-0004", "H40.a-0001", "H40.z-0005", "H40.é-0003"]
    assert {row["procedure"] for row in rows} and all(row["local_key"] for row in rows)
    assert [side for statement, side in seen if "FROM ho_so" in statement] == [True]
    engine.dispose()
