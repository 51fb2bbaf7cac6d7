"""Generate a sample OpenCPS v2 database: the dossier-management tables of a province running
OpenCPS, filled with N realistic dossiers, for ``dvcsync sample-db --profile opencps``.

Why a second sample: dvcsync claims any one-stop schema is configuration; OpenCPS v2 (open source,
Liferay on MySQL/MariaDB, run by several provinces) is the real schema it is proven on. Tables and
columns are the real ones (see ``schema.py`` for the source file, ``tables.sql`` of
``backend-dossiermgt-service`` in VietOpenCPS/opencps-v2); the values follow what OpenCPS writes,
as read in its DVCQG integration (``DVCQGIntegrationActionImpl``):

- ``opencps_dossier``: ``dossierNo`` (→ MaHoSo), ``dossierStatus``/``dossierSubStatus`` (``new``,
  ``receiving``, ``processing``, ``waiting``, ``paying``, ``denied``, ``cancelled``,
  ``unresolved``, ``releasing``, ``done``; sub-statuses ``<status>_<n>``), ``serviceCode``,
  ``govAgencyCode``, ``applicantIdType`` (``citizen``/``business``), ``online_``, ``viaPostal``
  (2: the result is posted), ``fromViaPostal``, ``originality`` (1 online, 3 at the counter),
  ``submitDate``/``receiveDate``/``dueDate``/``releaseDate``/``finishDate``/``cancellingDate``,
  ``modifiedDate`` (moves whenever the dossier or one of its rows changes). Every dossier has a
  ``referenceUid`` (a UUID); one received from the national portal has ``systemId = 5`` and the
  portal's code as ``referenceUid``, ``dossierNo`` and ``originDossierNo`` (the number the dossier
  had where it came from; empty for the province's own, so it says which dossiers the portal
  owns: province.yaml's ``dossiers.portal_code``). Drafts (created online, never
  submitted) have an empty ``dossierStatus`` and ``dossierNo`` (Liferay stores an unset string as
  empty) and ``submitting = 0``.
- ``opencps_dossieraction``: the history, one row an action (``actionUser``, ``actionName``,
  ``actionNote``, ``stepCode``/``stepName``, ``fromStepCode``, ``createDate``, ``dueDate``,
  ``previousActionId``/``nextActionId``); the dossier's ``dossierActionId`` is the last one.
- ``opencps_paymentfile``: one a fee (``paymentFee`` its name, ``feeAmount`` for a charge,
  ``serviceAmount`` for a fee, ``advanceAmount`` when collected up front, ``paymentAmount``),
  ``paymentStatus`` 0 requested / 2 confirmed, ``paymentMethod`` (``KeyPayDVCQG`` online).
- ``opencps_dossierfile``: ``dossierPartType`` 1 submitted / 2 result, ``dossierPartNo``,
  ``displayName``, ``removed``, ``signCheck`` (a signed digital copy), ``referenceUid``.
- ``opencps_voting``/``opencps_votingresult``: citizens' ratings of returned dossiers, one
  question (``className`` ``dossier``, ``classPK`` the dossierId) and its answer (``selected`` 1
  very satisfied, 2 satisfied, 3 not satisfied; ``createDate`` when), drawn last from a generator
  of their own, as the sample's ratings are, so every other row of a seed stays as it was.
- ``opencps_serviceinfo``/``opencps_serviceinfomapping`` (serviceCode → serviceCodeDVCQG),
  ``opencps_processstep`` and ``opencps_dossierstatusmapping`` (statusCode/subStatusCode →
  statusCodeDVCQG), from which the shipped ``mappings/opencps/codes`` tables are exported.

Deterministic: the same seed and N give the same rows (dates from the seed, never the wall clock).
The lifecycle, names, catalogue and agencies are the sample's (``lifecycle.plan_dossier``,
``names``, ``catalogue``): the same province, run on OpenCPS.

This module writes the database; the rows come from ``reference`` (catalogue, steps, status
mapping), ``dossiers`` (each dossier with its actions, payments and files; its applicant from
``applicants``), ``votes`` (ratings), all shaped by ``columns``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from .. import catalogue
from ..common import CHUNK, claim, prepare_procedures, publish, submissions
from ..places import Geography
from .dossiers import DOSSIER_MODELS, DossierWriter
from .reference import reference_rows
from .schema import COLUMNS, INDEXES, ddl
from .votes import VOTING_MODELS, vote_rows

DOCUMENTS_URL = "https://motcua.h40.example.vn/o/rest/v2/dossiers"
TABLES = (
    "opencps_serviceinfo",
    "opencps_serviceinfomapping",
    "opencps_processstep",
    "opencps_dossierstatusmapping",
    "opencps_dossier",
    "opencps_dossieraction",
    "opencps_paymentfile",
    "opencps_dossierfile",
    "opencps_voting",
    "opencps_votingresult",
    "counter",
)


@dataclass(frozen=True)
class OpenCPSStats:
    """What ``generate`` wrote: rows per table and the time it took."""

    path: Path
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    @property
    def dossiers(self) -> int:
        return self.rows.get("opencps_dossier", 0)


def generate(
    out: str | Path,
    dossiers: int,
    seed: int = 42,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> OpenCPSStats:
    """Create a new OpenCPS v2 sample database at ``out`` with ``dossiers`` rows in
    ``opencps_dossier`` (drafts included). Refuses an existing file unless ``overwrite``; the file
    appears only when complete, in WAL mode."""
    if dossiers < 0:
        raise ValueError(f"dossiers must be >= 0, got {dossiers}")
    started = time.perf_counter()
    target, partial = claim(out, overwrite)
    partial.unlink(missing_ok=True)

    procs = catalogue.procedures()
    geo = Geography(catalogue.agencies())
    infos = prepare_procedures(procs)
    rng = Random(f"opencps:{seed}")
    counts = dict.fromkeys(TABLES, 0)
    if progress:
        progress(0, dossiers)
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(ddl())
        conn.execute("BEGIN")
        for table, rows in reference_rows(procs).items():
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(COLUMNS[table]))})", rows)
            counts[table] = len(rows)
        writer = DossierWriter(rng, seed, infos, geo)
        drawn = submissions(rng, dossiers, infos)
        for number, (submitted, arrival, proc_index, channel) in enumerate(drawn, 1):
            writer.dossier(submitted, arrival, proc_index, channel)
            if number % CHUNK == 0:
                writer.flush(conn, counts)
                if progress:
                    progress(number, dossiers)
        writer.flush(conn, counts)
        votes = vote_rows(conn, seed)
        for table, rows in votes.items():
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(COLUMNS[table]))})", rows)
            counts[table] = len(rows)
        counters = [(DOSSIER_MODELS[t], n) for t, n in writer.next_id.items()]
        counters += [(VOTING_MODELS[t], len(rows)) for t, rows in votes.items()]
        conn.executemany("INSERT INTO counter VALUES (?, ?)", counters)
        counts["counter"] = len(counters)
        conn.execute("COMMIT")
        for statement in INDEXES:
            conn.execute(statement)
        conn.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        conn.close()
        partial.unlink(missing_ok=True)
        raise
    conn.close()
    publish(partial, target, overwrite)
    if progress:
        progress(dossiers, dossiers)
    return OpenCPSStats(target, seed, counts, time.perf_counter() - started)
