"""Commands that read or tend the state store: status, dead letters, upgrades, pruning."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from dvcsync.config import Settings
from dvcsync.errors import ExitCode

from ._common import (
    JsonOpt,
    _check_identity,
    _every_tenant,
    _print_counts,
    _redact_url,
    _settings,
    _writing,
    app,
    console,
    db_app,
    dead_app,
    err_console,
)
from ._errors import cell_text, terminal_text


@app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Backlog, last runs, quarantined records and dead letters; with tenants, one block per
    tenant (all of them, or the one --tenant names)."""
    from dvcsync.sync.status import collect_status, collect_tenants_status

    settings, chosen = _every_tenant()
    if list(chosen) == [""]:  # no tenants: the one state, as it always was
        if not _state_exists(settings, as_json):
            return
        _check_identity(settings)
        data = collect_status(settings)
        if as_json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
            return
        _print_status(data, f"dvcsync status ({_redact_url(settings.state.url)})")
        return
    everything = collect_tenants_status(chosen)
    if as_json:
        print(json.dumps(everything, ensure_ascii=False, indent=2))
    else:
        for code, data in everything["tenants"].items():
            url = _redact_url(chosen[code].state.url)
            if data.get("error"):
                console.print(
                    terminal_text(f"tenant {code} ({url}): cannot read the state: {data['error']}"),
                    markup=False,
                )
            elif data.get("state", True) is None:
                console.print(
                    terminal_text(f"tenant {code}: no state yet at {url}: nothing has run for it"),
                    markup=False,
                )
            else:
                _print_status(data, f"tenant {code}: dvcsync status ({url})")
    if any(data.get("error") for data in everything["tenants"].values()):
        raise typer.Exit(ExitCode.PROBLEMS)


def _print_status(data: dict[str, Any], title: str) -> None:
    _print_counts_table(data, title)
    for conflict in data["conflicts"][:20]:
        console.print(
            terminal_text(
                f"  conflict {conflict['record_key']} {conflict['field']}:"
                f" province {conflict['province_value']!r}, portal {conflict['portal_value']!r}"
                f" — {conflict['note']}"
            ),
            markup=False,
            highlight=False,
        )
    if data["runs"]:
        _print_runs(data["runs"])
    if data.get("replicas"):
        _print_replicas(data["replicas"])
    for item in data["quarantined"][:20]:
        console.print(
            terminal_text(f"  quarantined {item['record_key']}: {item['reasons'][0]}"),
            markup=False,
            highlight=False,
        )
    for item in data["dead"][:20]:
        console.print(
            terminal_text(f"  dead {item['kind']} {item['record_key']}: {item['last_error']}"),
            markup=False,
            highlight=False,
        )


def _print_counts_table(data: dict[str, Any], title: str) -> None:
    table = Table(title=cell_text(title))
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in data["backlog"].items():
        table.add_row(cell_text(f"outbox {key}"), str(value))
    table.add_row("dossiers known", str(data["dossiers"]))
    table.add_row("quarantined", str(data["quarantined_count"]))
    table.add_row("dead letters", str(data["dead_count"]))
    table.add_row("conflicts (for the reconciler)", str(len(data["conflicts"])))
    for key, value in sorted(data["inbox"].items()):
        table.add_row(cell_text(f"inbox {key}"), str(value))
    console.print(table)


def _print_runs(last_runs: list[dict[str, Any]]) -> None:
    runs = Table(title="last runs")
    for column in ("job", "started", "status", "pushed", "history", "quarantined", "dead"):
        runs.add_column(column)
    for run in last_runs:
        counts = run["counts"] or {}
        runs.add_row(
            cell_text(run["job"]),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started_at"])),
            cell_text(run["status"]),
            str(counts.get("dossiers_pushed", "")),
            str(counts.get("steps_pushed", "")),
            str((counts.get("enqueue") or {}).get("quarantined", "")),
            str(counts.get("dead", "")),
        )
    console.print(runs)
    for run in last_runs:
        if run.get("error") and run["status"] != "ok":
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started_at"]))
            console.print(
                terminal_text(f"  {run['job']} {run['status']} ({started}): {run['error']}"),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def _print_replicas(holding: list[dict[str, Any]]) -> None:
    replicas = Table(title="replicas holding dossiers")
    for column in ("replica", "dossiers", "lease ends in"):
        replicas.add_column(column)
    for held in holding:
        ends = held["lease_ends_in_s"]
        replicas.add_row(
            cell_text(held["replica"]),
            str(held["dossiers"]),
            f"{ends:g}s" if ends >= 0 else f"ended {-ends:g}s ago",
        )
    console.print(replicas)


@dead_app.command("list")
def dead_list(as_json: JsonOpt = False) -> None:
    """Outbox entries that ran out of attempts or were refused by the portal."""
    from dvcsync.sync.status import list_dead

    settings = _settings()
    if not _state_exists(settings, as_json, empty=[]):
        return
    _check_identity(settings)
    rows = list_dead(settings)
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="dead letters")
    for column in ("id", "kind", "MaHoSo", "attempts", "last error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["id"]),
            cell_text(row["kind"]),
            cell_text(row["record_key"]),
            str(row["attempts"]),
            cell_text(row["last_error"] or ""),
        )
    console.print(table)


@dead_app.command("retry")
def dead_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Entry ids (default: all).")] = None,
) -> None:
    """Put dead letters back in the outbox; the next push delivers them."""
    from dvcsync.sync.status import UnknownDeadLetters, requeue_dead

    settings = _settings()
    try:
        with _writing(settings, "dvcsync dead-letters retry"):
            count = requeue_dead(settings, ids or None)
    except UnknownDeadLetters as exc:
        err_console.print(terminal_text(exc), markup=False, highlight=False)
        raise typer.Exit(exc.exit_code) from None
    console.print(f"{count} dead letters back in the outbox")


@dead_app.command("discard")
def dead_discard(
    ids: Annotated[list[int], typer.Argument(help="Entry ids to discard.")],
) -> None:
    """Give up on dead letters (kept for the record as 'discarded')."""
    from dvcsync.sync.status import UnknownDeadLetters, discard_dead

    settings = _settings()
    try:
        with _writing(settings, "dvcsync dead-letters discard"):
            count = discard_dead(settings, ids)
    except UnknownDeadLetters as exc:
        err_console.print(terminal_text(exc), markup=False, highlight=False)
        raise typer.Exit(exc.exit_code) from None
    console.print(f"{count} dead letters discarded")


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Create the state store's tables or migrate them to this dvcsync's revision. The other
    commands refuse a state store at another revision: schema changes happen only here. At the
    current revision it takes no lock and returns at once, so every replica may run it before it
    starts (rolling restarts); a migration waits for the replicas to stop and names them. With
    tenants and no --tenant, every tenant's state (what `dvcsync run` then serves)."""
    from ._common import _chosen_tenant

    _, chosen = _every_tenant()
    results = {code: _upgrade_one(settings) for code, settings in chosen.items()}
    if as_json:
        if list(results) == [""] or _chosen_tenant()[0] is not None:  # one state: as it always was
            print(json.dumps(next(iter(results.values()))))
        else:
            print(json.dumps({"tenants": results}))
        return
    for code, result in results.items():
        where = f"tenant {code}: " if code else ""
        if result["from"] == result["to"]:
            line = f"{where}state store {result['url']} already at {result['to']}"
        else:
            was = result["from"] or "empty"
            line = f"{where}state store {result['url']} upgraded from {was} to {result['to']}"
        console.print(line, markup=False, highlight=False)


def _upgrade_one(settings: Settings) -> dict[str, Any]:
    """One state brought to head (created when missing), its identity recorded. A migration
    takes the state's lock exclusive, waiting up to ``[state] lock_wait_s``; while it waits it
    looks again whether another process (a replica started at the same moment, running the same
    `db upgrade && run`) has brought the state to head meanwhile, and is then done."""
    import time as _time

    from dvcsync.state import StateStore
    from dvcsync.sync.state_guard import IdentityMismatch, check_identity
    from dvcsync.sync.state_lock import StateBusy, holding_state
    from dvcsync.tenants import ensure_schema

    before = head = _at_head(settings)
    if head is None:
        url = settings.state.url
        ensure_schema(url)
        deadline = _time.monotonic() + settings.state.lock_wait_s
        while head is None:
            wait = min(1.0, max(0.0, deadline - _time.monotonic()))
            try:
                # replicas stopped first; the identity is recorded once the tables are there
                with holding_state(url, wait_s=wait, what="dvcsync db upgrade", exclusive=True):
                    store = StateStore(url)
                    try:
                        before, head = store.upgrade()
                        check_identity(store, settings)  # a new state records whom it serves
                    except IdentityMismatch as exc:
                        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
                        raise typer.Exit(exc.exit_code) from None
                    finally:
                        store.close()
            except StateBusy as exc:
                before = head = _at_head(settings)
                if head is None and _time.monotonic() >= deadline:
                    err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
                    raise typer.Exit(exc.exit_code) from None
    url_shown = _redact_url(settings.state.url)
    return {"url": url_shown, "from": before, "to": head, "upgraded": before != head}


def _at_head(settings: Settings) -> str | None:
    """The state's revision when it exists and is at this dvcsync's head (its identity checked,
    no lock taken: replicas keep running); None when it must be created or migrated."""
    from dvcsync.state import StateStore
    from dvcsync.sync.state_guard import IdentityMismatch, check_identity, state_created

    if not state_created(settings.state.url):
        return None
    from dvcsync.tenants import ensure_schema

    ensure_schema(settings.state.url)
    store = StateStore(settings.state.url)
    try:
        current, latest = store.schema_status()
        if current != latest:
            return None
        check_identity(store, settings)
        return current
    except IdentityMismatch as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    finally:
        store.close()


@db_app.command("rebind")
def db_rebind(
    yes: Annotated[bool, typer.Option("--yes", help="Record it without asking (scripts).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Record this configuration's province and portal as the state's identity, after a
    deliberate move (a new database host, a new portal address). Other commands refuse a state
    whose identity differs from the configuration's, so a mistyped path never passes for it."""
    settings = _settings()
    with _writing(settings, "dvcsync db rebind", identity=False):
        _rebind(settings, yes=yes, as_json=as_json)


def _rebind(settings: Settings, *, yes: bool, as_json: bool) -> None:
    from dvcsync.state import StateStore
    from dvcsync.sync.state_guard import identity_of

    store = StateStore(settings.state.url)
    try:
        before = store.identity()
        wanted = identity_of(settings)
        if before == wanted:
            after = before
        else:
            if not yes and not as_json:
                for key in wanted:
                    console.print(f"{key}: {before.get(key)!r} -> {wanted[key]!r}", markup=False)
                if not typer.confirm("record the configuration's identity on this state?"):
                    raise typer.Exit(ExitCode.PROBLEMS)
            after = store.record_identity(wanted, replace=True)
    finally:
        store.close()
    if as_json:
        print(json.dumps({"before": before, "after": after}, ensure_ascii=False))
    else:
        console.print("state identity recorded", markup=False)


@db_app.command("prune")
def db_prune(
    keep_days: Annotated[
        float | None,
        typer.Option("--keep-days", help="Keep payloads this many days (default: state.keep_days, 30)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Strip personal data from delivered outbox payloads and settled inbox events older than the
    retention: each keeps its codes, hash and times. Pending and dead entries are never touched."""
    from dvcsync.sync.prune import run_prune

    settings = _settings()
    if keep_days is not None and not keep_days > 0:
        err_console.print(f"[red]--keep-days must be more than 0, not {keep_days}[/red]")
        raise typer.Exit(ExitCode.INVALID)
    days = settings.state.keep_days if keep_days is None else keep_days
    with _writing(settings, "dvcsync db prune"):
        counts = run_prune(settings, keep_days=days)
    if as_json:
        print(json.dumps({"keep_days": days, **counts}, ensure_ascii=False))
        return
    _print_counts(
        f"pruned: older than {days:g} days ({_redact_url(settings.state.url)})",
        [
            ("delivered outbox payloads", counts["outbox_done"]),
            ("superseded outbox payloads", counts["outbox_superseded"]),
            ("settled inbox events", counts["inbox"]),
        ],
    )


def _state_exists(settings: Settings, as_json: bool, empty: Any = None) -> bool:
    """A read-only command on a state that was never created says so and creates nothing."""
    from dvcsync.sync.status import state_exists

    if state_exists(settings.state.url):
        return True
    where = _redact_url(settings.state.url)
    if as_json:
        print(json.dumps(empty if empty is not None else {"state": None}, ensure_ascii=False))
    else:
        console.print(
            f"no state yet at {where}: nothing has run with this configuration (a new state is made by"
            " `dvcsync db upgrade`, `init` or `adopt`)",
            markup=False,
            highlight=False,
        )
    return False
