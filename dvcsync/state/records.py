"""The values passed to and from the store: mapped records, what a page enqueued, due entries and
their outcomes, and the canonical JSON and hash of a payload."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .kinds import REPLACING_KINDS, OutboxKind, OutboxState, OutcomeResult

# History entries per outbox entry: a dossier's entries go out in order, one outbox entry a round.
STEPS_PER_CALL = 10


def payload_hash(payload: Any) -> str:
    """Hash of the canonical JSON: key order and whitespace never count as a change."""
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@dataclass
class MappedRecord:
    """One source record after mapping, ready to be compared with what the portal holds."""

    record_key: str
    source_id: int | None
    source_updated_at: str | None
    dossier: dict[str, Any] | None  # the DongBoHoSoMC item, None when it could not be mapped
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (step key, TienDo item)
    errors: list[dict[str, str]] = field(default_factory=list)  # FieldError.as_dict() of every failure
    mapping: str = "dossier"  # the mapping's name, not a kind
    kind: str = OutboxKind.DOSSIER  # "status": a portal-submitted dossier, reported by DongBoTrangThaiHoSo
    skipped: str | None = None  # not to be sent at all (no national equivalent): the reason


@dataclass
class EnqueueCounts:
    records: int = 0
    dossiers_enqueued: int = 0
    steps_enqueued: int = 0
    unchanged: int = 0
    quarantined: int = 0
    released: int = 0  # left quarantine because they map now
    steps_changed: int = 0  # history entries edited in the source after being sent (append-only portal)
    skipped: int = 0  # not sent by decision (a code table's skip: no national equivalent), not quarantined

    def add(self, other: EnqueueCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_ENTRIES = ',"entries":['


@dataclass
class DueEntry:
    """An outbox entry ready to go. ``raw`` is the stored wire JSON: a batch is built by joining
    raw payloads, so dossiers are never parsed and re-serialised on their way out."""

    id: int
    kind: str
    record_key: str
    raw: str
    payload_hash: str
    attempts: int
    on_portal: bool
    verify_first: bool = False
    _parsed: Any = field(default=None, repr=False, compare=False)

    @property
    def payload(self) -> Any:
        if self._parsed is None:
            self._parsed = json.loads(self.raw)
        return self._parsed

    @cached_property
    def history(self) -> tuple[list[str], str]:
        """A history entry's step keys and its entries' JSON without the brackets, cut from the
        stored text instead of parsed and re-serialised. The text is ``{"keys":[...],"entries":
        [...]}`` as ``dumps`` writes it; a ``"`` inside a JSON string is always escaped, so the
        first ``,"entries":[`` is the separator."""
        raw = self.raw
        cut = raw.find(_ENTRIES)
        if raw.startswith('{"keys":[') and raw.endswith("]}") and cut > 0:
            return json.loads(raw[8:cut]), raw[cut + len(_ENTRIES) : -2]
        payload = self.payload
        return list(payload["keys"]), dumps(payload.get("entries", []))[1:-1]  # a pruned stub: none


# ---------------------------------------------------------------------- outcomes


_FAILED = (OutcomeResult.RETRY, OutcomeResult.DEAD)  # results that start failing_since


@dataclass
class Outcome:
    """What happened to one outbox entry; ``rows`` turns it into the round's batched updates."""

    entry_id: int
    record_key: str
    kind: str
    result: str  # done | retry | dead | resend
    payload_hash: str | None = None
    error: str | None = None
    next_attempt_at: float = 0.0
    on_portal: bool | None = None
    step_keys: Sequence[str] = ()
    count_attempt: bool = True
    new_payload: Any = None  # replaces the entry's payload (e.g. only the history entries still missing)
    verify_first: bool | None = None

    def rows(self, now: float) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        """Parameters for the batched outcome statements: the outbox row, the dossier record (or
        None when unchanged) and the history entries now acknowledged."""
        verify: bool | None
        state: OutboxState
        if self.result == OutcomeResult.DONE:
            state, error, verify = OutboxState.DONE, None, False
        elif self.result == OutcomeResult.DEAD:
            state, error, verify = OutboxState.DEAD, self.error, self.verify_first
        else:  # retry later, or resend at once with a different create/replace choice
            state, error, verify = OutboxState.PENDING, self.error, self.verify_first
        entry = {
            "e_id": self.entry_id,
            "e_state": state,
            "e_error": error,
            "e_next": self.next_attempt_at if state == OutboxState.PENDING else None,
            "e_verify": verify,
            "e_payload": dumps(self.new_payload) if self.new_payload is not None else None,
            "e_inc": 1 if self.count_attempt else 0,
            "e_failed": now if self.count_attempt and self.result in _FAILED else None,
            "e_now": now,
        }
        on_portal, acked_hash = self.on_portal, None
        if self.result == OutcomeResult.DONE and self.kind in REPLACING_KINDS:
            on_portal, acked_hash = True, self.payload_hash
        dossier = (
            {"d_key": self.record_key, "d_on_portal": on_portal, "d_acked": acked_hash, "d_now": now}
            if on_portal is not None
            else None
        )
        acked = (
            [{"s_key": self.record_key, "s_step": step} for step in self.step_keys]
            if self.result == OutcomeResult.DONE and self.kind == OutboxKind.STEPS
            else []
        )
        return entry, dossier, acked
