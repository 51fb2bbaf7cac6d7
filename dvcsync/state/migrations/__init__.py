"""Alembic migrations of the state store, configured in code: no ``alembic.ini`` is needed where
dvcsync runs, the scripts ship inside the package.

A new revision, by a developer (compare the models with a database at head)::

    from alembic import command
    from dvcsync.state.migrations import alembic_config
    command.revision(alembic_config(url="sqlite:///scratch.db"), "what changes", autogenerate=True,
                     rev_id="0003")
"""

# ruff: noqa: E402  (a logger is set before alembic is imported)
from __future__ import annotations

import logging

# Before alembic is imported: it names each plugin it sets up at INFO, noise in the service's log.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class _QuietUnlessVerbose(logging.Filter):
    """Alembic's INFO lines ("Context impl …", "Will assume transactional DDL", one "Running
    upgrade" per revision: seven on a new state) reach the log only under ``-v`` (the root logger
    at DEBUG); its warnings and errors always do."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or logging.getLogger().level <= logging.DEBUG


for _name in ("alembic.runtime.migration", "alembic.ddl.impl", "alembic.ddl.postgresql"):
    logging.getLogger(_name).addFilter(_QuietUnlessVerbose())

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from dvcsync.state.errors import SchemaOutOfDate, newer_message, shown_url
from dvcsync.state.tables import STATE_TABLES

SCRIPT_LOCATION = Path(__file__).resolve().parent
# The releases before migrations made these tables, unversioned: such a database is this revision.
BASELINE = "0001"
VERSION_TABLE = "alembic_version"
BASELINE_TABLES = frozenset(
    ("dossier_state", "step_state", "outbox", "cursor", "quarantine", "run", "inbox", "conflict")
)


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic's configuration without a file. ``connection``: migrate on it, inside the caller's
    transaction (how ``StateStore.upgrade`` holds its lock across the whole migration); else
    ``url`` is opened by ``env.py``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def script_directory() -> ScriptDirectory:
    """The revision scripts, read once a process."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None, "no migration scripts"
    return head


def state_metadata() -> MetaData:
    """The state tables only, as the models declare them: what autogenerate compares with."""
    metadata = MetaData()
    for table in STATE_TABLES:
        table.to_metadata(metadata)
    return metadata


# pg_advisory_xact_lock key of a migration ("dvcs-mig"): not the service's single-instance key.
LOCK_KEY = int.from_bytes(b"dvcs-mig", "big")


def is_known(revision: str) -> bool:
    """A revision of these scripts; one that is not was written by a newer dvcsync."""
    try:
        return script_directory().get_revision(revision) is not None
    except CommandError:
        return False


def revision_of(conn: Connection) -> tuple[str | None, bool]:
    """``(revision, stamped)`` of the database on ``conn``: its ``alembic_version``; BASELINE,
    unstamped, when it has state tables but no version (made by a release before migrations);
    None when it has no state tables at all."""
    names = set(inspect(conn).get_table_names())
    if VERSION_TABLE in names:  # read directly: a MigrationContext logs at INFO, each cycle
        versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        if len(versions) > 1:
            raise SchemaOutOfDate(f"the state database has several revisions ({', '.join(versions)})")
        if versions:
            return versions[0], True
    legacy = BASELINE_TABLES & names
    return (BASELINE, False) if legacy else (None, False)


def upgrade_to_head(conn: Connection) -> str | None:
    """Migrate the database on ``conn`` to head, inside the caller's transaction; returns the
    revision it was at. The caller's transaction serialises migrators: BEGIN IMMEDIATE holds
    SQLite's write lock, and on PostgreSQL a transaction-scoped advisory lock is taken here, so
    a second process finds the first one's work when it gets its turn."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    current, stamped = revision_of(conn)
    if current == head_revision():
        return current
    if current is not None and not is_known(current):
        raise SchemaOutOfDate(newer_message(str(conn.engine.url), current))
    config = alembic_config(connection=conn)
    if current is not None and not stamped:
        missing = sorted(BASELINE_TABLES - set(inspect(conn).get_table_names()))
        if missing:  # from a development build before the inbox or conflicts: not the baseline
            raise SchemaOutOfDate(
                f"the state database {shown_url(str(conn.engine.url))} has some of"
                f" dvcsync's tables but not {', '.join(missing)} and no revision: it cannot be"
                " migrated; start a new one"
            )
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    return current
