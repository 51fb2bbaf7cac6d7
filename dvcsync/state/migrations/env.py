"""Alembic's environment for the state store. ``StateStore.upgrade`` passes its connection, in
the transaction that holds the migration lock, so every step commits or none does."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from dvcsync.state.migrations import state_metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """SQLModel's ``str`` columns as plain ``sa.String()``: a revision must not import sqlmodel."""
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=state_metadata(),
        # SQLite alters a table by copying it: batch mode writes that for later revisions
        render_as_batch=connection.dialect.name == "sqlite",
        # the sqlite3 driver is left in autocommit mode and BEGIN is ours, so DDL is transactional
        transactional_ddl=True,
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    # a developer's command (e.g. autogenerate) on a URL
    from dvcsync.state.engine import make_state_engine

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "alembic_config(url=...) or a connection"
    engine = make_state_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


# Alembic runs this file inside a migration; a tool walking the package (the error-root test)
# imports it outside one, where alembic's context has no configuration: nothing to do then.
if hasattr(context, "config"):
    _main()
