"""This process's name among replicas: what its claims and runs are recorded under, and its
PostgreSQL sessions' ``application_name``, so a claim or a run can be traced to a process and a
run whose owner has no session left is known to be interrupted."""

from __future__ import annotations

import os
import secrets
import socket
import zlib

_ids: dict[int, str] = {}


def replica_id() -> str:
    """``host:pid:random``, fixed for the life of the process; a forked child gets its own (the
    random part keeps a reused pid, or a container's pid 1, from taking over another's claims).
    At most 63 characters: PostgreSQL truncates ``application_name`` there."""
    pid = os.getpid()
    known = _ids.get(pid)
    if known is None:
        host = socket.gethostname()[:40]
        known = _ids[pid] = f"{host}:{pid}:{secrets.token_hex(4)}"
    return known


def lock_key(url: str, name: str) -> int:
    """A PostgreSQL advisory key (signed 32-bit) for ``name`` in this state. Advisory locks are
    per database, and tenants may keep their states as schemas of one database (the URL's
    ``options=-csearch_path=…``): the schema is part of the key, so one tenant's job never waits
    for another's."""
    from sqlalchemy.engine import make_url

    options = make_url(url).query.get("options", "")
    text = f"{options if isinstance(options, str) else ','.join(options)}|{name}"
    crc = zlib.crc32(text.encode("utf-8"))
    return crc - 2**32 if crc >= 2**31 else crc
