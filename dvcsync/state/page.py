"""The decision of ``enqueue_page``, without a database: given a page of mapped records and what
the state holds of them, what is enqueued, what is unchanged, what goes into quarantine and what
leaves it. ``EnqueueOps.enqueue_page`` reads the state, calls ``decide_page`` and writes its
rows, in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .kinds import OutboxKind, OutboxState
from .records import STEPS_PER_CALL, EnqueueCounts, MappedRecord, dumps, payload_hash


class KnownDossier(Protocol):
    """What the state holds of a dossier (a row of ``dossier_state``)."""

    payload_hash: str | None
    acked_hash: str | None
    on_portal: bool


@dataclass(frozen=True)
class Known:
    """A ``KnownDossier`` as a value (tests; rows of the database qualify as they are)."""

    payload_hash: str | None
    acked_hash: str | None = None
    on_portal: bool = False


@dataclass
class PageDecision:
    """What to write for one page. ``quarantine``: in page order, ``(record, held before)`` to
    (re)hold a record that does not map, ``(key, None)`` to release one."""

    counts: EnqueueCounts
    outbox_rows: list[dict[str, Any]] = field(default_factory=list)
    new_states: list[dict[str, Any]] = field(default_factory=list)
    changed_states: list[dict[str, Any]] = field(default_factory=list)
    new_steps: list[dict[str, Any]] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)  # dossiers whose older pending versions go
    quarantine: list[tuple[MappedRecord, bool] | tuple[str, None]] = field(default_factory=list)


def is_first_contact(state: KnownDossier | None) -> bool:
    """A dossier the state knows nothing of the portal's copy: never seen, or enqueued but never
    acknowledged nor read back (``acked_hash`` empty and not known to be on the portal)."""
    return state is None or (state.acked_hash is None and not state.on_portal)


def outbox_row(
    kind: str,
    record_key: str,
    payload: Any,
    digest: str,
    now: float,
    *,
    after: str | None = None,
    verify_first: bool = False,
) -> dict[str, Any]:
    """``after``: the hash this version replaces. A dossier can come back to an earlier version
    (A → B → A); keyed by its hash alone, the return to A would find A's old key and never be
    sent, leaving B on the portal. A change is keyed by what it replaces and when it was enqueued
    (a page is enqueued once: the cursor moves in the same transaction)."""
    key = f"{kind}:{record_key}:{digest}"
    if after is not None:
        key = f"{key}<{after}@{now!r}"
    return {
        "idem_key": key,
        "kind": kind,
        "record_key": record_key,
        "payload": dumps(payload),
        "payload_hash": digest,
        "state": OutboxState.PENDING,
        "attempts": 0,
        "next_attempt_at": 0.0,
        "last_error": None,
        "verify_first": verify_first,
        "created_at": now,
        "updated_at": now,
    }


def history_rows(
    record_key: str, steps: Sequence[tuple[str, Any]], now: float, *, verify_first: bool
) -> list[dict[str, Any]]:
    """History entries as outbox rows of ``STEPS_PER_CALL`` entries each, in order."""
    rows = []
    for start in range(0, len(steps), STEPS_PER_CALL):
        chunk = steps[start : start + STEPS_PER_CALL]
        payload = {"keys": [k for k, _ in chunk], "entries": [e for _, e in chunk]}
        rows.append(
            outbox_row(
                OutboxKind.STEPS, record_key, payload, payload_hash(payload), now, verify_first=verify_first
            )
        )
    return rows


def decide_page(
    records: Sequence[MappedRecord],
    known: Mapping[str, KnownDossier],
    steps_known: Mapping[tuple[str, str], str],
    quarantined: set[str] | frozenset[str],
    now: float,
) -> PageDecision:
    """Compare a page with the state: ``known`` dossiers by key, ``steps_known`` history entry
    hashes by (dossier, step key), the keys ``quarantined``; pure, so it is tested without a
    database. Records are decided in page order."""
    decision = PageDecision(EnqueueCounts(records=len(records)))
    for record in records:
        _decide_record(decision, record, known, steps_known, quarantined, now)
    return decision


def _decide_record(
    decision: PageDecision,
    record: MappedRecord,
    known: Mapping[str, KnownDossier],
    steps_known: Mapping[tuple[str, str], str],
    quarantined: set[str] | frozenset[str],
    now: float,
) -> None:
    counts = decision.counts
    held = record.record_key in quarantined
    if record.skipped:
        counts.skipped += 1
        if held:  # it was waiting for a code: now decided
            decision.quarantine.append((record.record_key, None))
        return
    if record.errors or record.dossier is None:
        counts.quarantined += 1
        decision.quarantine.append((record, held))
        return
    if held:
        counts.released += 1
        decision.quarantine.append((record.record_key, None))
    digest = payload_hash(record.dossier)
    state = known.get(record.record_key)
    fresh_steps = _fresh_steps(counts, record, steps_known)
    if state is not None and state.payload_hash == digest and not fresh_steps:
        counts.unchanged += 1
        return
    # First contact: the state has no evidence of what the portal holds of this dossier (a new or
    # lost state, a province coming from another integration). Its entries are read back before
    # anything is sent (sync.first_contact): the portal may hold it already, and it never
    # removes a history entry.
    unseen = is_first_contact(state)
    if state is None or state.payload_hash != digest:
        _enqueue_dossier(decision, record, state, digest, now, unseen)
    if fresh_steps:
        counts.steps_enqueued += len(fresh_steps)
        decision.outbox_rows.extend(
            history_rows(record.record_key, [(k, e) for k, e, _ in fresh_steps], now, verify_first=unseen)
        )
        decision.new_steps.extend(
            {"record_key": record.record_key, "step_key": k, "entry_hash": d, "acked": False}
            for k, _, d in fresh_steps
        )


def _fresh_steps(
    counts: EnqueueCounts, record: MappedRecord, steps_known: Mapping[tuple[str, str], str]
) -> list[tuple[str, dict[str, Any], str]]:
    """The record's history entries the state has never seen, with their hashes; an entry seen
    with another hash is counted as changed (the portal's history is append-only) and not sent."""
    fresh = []
    for step_key, entry in record.steps:
        entry_digest = payload_hash(entry)
        previous = steps_known.get((record.record_key, step_key))
        if previous is None:
            fresh.append((step_key, entry, entry_digest))
        elif previous != entry_digest:
            counts.steps_changed += 1
    return fresh


def _enqueue_dossier(
    decision: PageDecision,
    record: MappedRecord,
    state: KnownDossier | None,
    digest: str,
    now: float,
    unseen: bool,
) -> None:
    assert record.dossier is not None
    decision.counts.dossiers_enqueued += 1
    decision.outbox_rows.append(
        outbox_row(
            record.kind,
            record.record_key,
            record.dossier,
            digest,
            now,
            after=state.payload_hash if state is not None else None,
            verify_first=unseen,
        )
    )
    if state is not None:
        decision.superseded.append(record.record_key)
    target = decision.new_states if state is None else decision.changed_states
    target.append(
        {
            "record_key": record.record_key,
            "source_id": record.source_id,
            "source_updated_at": record.source_updated_at,
            "payload_hash": digest,
            "acked_hash": None,
            "on_portal": False,
            "status": record.dossier.get("TrangThaiHoSo", record.dossier.get("TrangThai")),
            "updated_at": now,
        }
    )
