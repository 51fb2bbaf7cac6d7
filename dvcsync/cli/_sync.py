"""Commands that move data: one-off pushes, sync cycles and the service."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer

from dvcsync.errors import ExitCode

from ._common import (
    JsonOpt,
    _check_identity,
    _live_settings,
    _load_mappings,
    _print_counts,
    _report,
    _require_state,
    _run_cycles,
    _settings,
    app,
    console,
    err_console,
    push_app,
    sync_app,
)
from ._errors import terminal_text
from ._progress import PhaseProgress

# ---------------------------------------------------------------- push


@push_app.command("dossier")
def push_dossier(
    ma_ho_so: Annotated[str, typer.Argument(metavar="MaHoSo", help="The dossier's code (local number).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact envelopes; send nothing.")
    ] = False,
    show_personal: Annotated[
        bool, typer.Option("--show-personal", help="Print personal data in clear (masked by default).")
    ] = False,
) -> None:
    """Map one dossier, print the exact DongBoHoSoMC and CapNhatTienDoHoSoMC envelopes and, without
    --dry-run, push it now (through the outbox, so the state stays exact) and print the answers."""
    from dvcsync.sync.one_off import build_envelopes, push_one

    settings = _settings() if dry_run else _live_settings()
    mset = _load_mappings(settings.province.mappings)
    try:
        envelopes, errors = build_envelopes(settings, mset, ma_ho_so, show_personal=show_personal)
    except LookupError as exc:
        err_console.print(terminal_text(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.PROBLEMS) from None
    if errors:
        err_console.print(
            terminal_text(f"dossier {ma_ho_so} cannot be mapped:"), style="red", markup=False, highlight=False
        )
        for error in errors:
            err_console.print(terminal_text(f"  {error}"), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.PROBLEMS)
    if dry_run:
        print(json.dumps(envelopes, ensure_ascii=False, indent=2))  # exactly what would be sent
        return
    answers = _run_cycles(settings, "dvcsync push dossier", lambda: push_one(settings, mset, ma_ho_so))
    # one JSON document: what was sent and what the portal answered
    print(json.dumps({"envelopes": envelopes, "answers": answers}, ensure_ascii=False, indent=2))
    raise typer.Exit(ExitCode.OK if answers["ok"] else ExitCode.PROBLEMS)


# ---------------------------------------------------------------- sync, status, dead letters


@sync_app.command("push")
def sync_push(as_json: JsonOpt = False) -> None:
    """One push cycle: enqueue what changed in the province, deliver the outbox to the portal."""
    from dvcsync.sync.cycles import run_push

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    _require_state(settings, "dvcsync sync push")  # before counting in it: never create one
    before = _delivered(settings)
    report = PhaseProgress(
        "push",
        interactive=sys.stderr.isatty() and not as_json,
        labels={"enqueue": "read and mapped", "deliver": "delivered"},
        totals=lambda phase, done: _outbox_total(settings, phase, done),
    )
    try:
        with report:
            summary = _run_cycles(
                settings, "dvcsync sync push", lambda: run_push(settings, mset, progress=report.update)
            )
    except KeyboardInterrupt:
        dossiers, history = (now - then for now, then in zip(_delivered(settings), before, strict=True))
        err_console.print(
            f"interrupted: {dossiers} dossiers and {history} history entries delivered; the next run"
            " resumes where this one stopped",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    _report(summary.as_dict(), as_json, _print_push, ok=summary.dead == 0)


def _outbox_total(settings: Any, phase: str, done: int) -> int:
    """The delivery's total: what this push delivered so far and what is still pending in the
    outbox (the source's changed rows are not known before they are read: no total then)."""
    if phase != "deliver":
        return 0
    from dvcsync.state.store import StateStore

    store = StateStore(settings.state.url)
    try:
        pending = sum(n for key, n in store.backlog().items() if key.startswith("pending:"))
    finally:
        store.close()
    return done + pending


def _delivered(settings: Any) -> tuple[int, int]:
    """(dossiers, history entries) the state records as delivered, for the count Ctrl-C prints
    (the difference before and after; on replicas it includes what the others delivered)."""
    from dvcsync.state.store import StateStore

    store = StateStore(settings.state.url)
    try:
        return store.delivered()
    except Exception:  # an interrupted command still says it can be resumed
        return 0, 0
    finally:
        store.close()


def _print_push(data: dict[str, Any]) -> None:
    enqueue = data["enqueue"]
    rows = [
        ("records read", enqueue["records"]),
        ("unchanged", enqueue["unchanged"]),
        ("quarantined", enqueue["quarantined"]),
        ("not sent: no national equivalent", enqueue.get("skipped", 0)),
        ("dossiers pushed", data["dossiers_pushed"]),
        ("history entries pushed", data["steps_pushed"]),
        ("statuses of portal-submitted dossiers reported", data["statuses_reported"]),
        ("retried (later)", data["retried"]),
        ("dead letters", data["dead"]),
        ("lost answers settled by read-back", data["ambiguous_resolved"]),
        ("portal calls", data["calls"]),
    ]
    _print_counts("push cycle", rows)
    console.print(f"in {data['elapsed_s']:.2f}s")


def _print_pull(data: dict[str, Any]) -> None:
    labels = (
        ("listed by the portal", "listed"),
        ("created in the province", "created"),
        ("already in the province", "already_in_province"),
        ("acknowledged", "acknowledged"),
        ("rejected (cannot be mapped)", "rejected"),
        ("refused by the province", "failed"),
        ("acknowledgement failed (retried next cycle)", "ack_failed"),
        ("checked for a withdrawal on the portal", "checked_for_withdrawal"),
        ("withdrawals applied", "withdrawn"),
        ("conflicts recorded", "conflicts"),
    )
    _print_counts("pull cycle", [(name, data[key]) for name, key in labels])


@sync_app.command("all")
def sync_all(as_json: JsonOpt = False) -> None:
    """One cycle of every job: push, then pull, then payments."""
    from dvcsync.sync.cycles import run_payments, run_pull, run_push

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)

    async def every() -> tuple[Any, Any, Any]:
        return (
            await run_push(settings, mset),
            await run_pull(settings, mset),
            await run_payments(settings, mset),
        )

    push, pull, payments = _run_cycles(settings, "dvcsync sync all", every)
    data = {"push": push.as_dict(), "pull": pull.as_dict(), "payments": payments.as_dict()}
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        _print_push(data["push"])
        _print_pull(data["pull"])
        _print_payments(data["payments"])
    ok = push.dead == 0 and pull.failed == 0 and pull.rejected == 0 and payments.errors == 0
    raise typer.Exit(ExitCode.OK if ok else ExitCode.PROBLEMS)


@app.command("run")
def run() -> None:
    """Run as a service: push, pull, payments and prune on their [schedule], the inbound server
    on [server] host and port. Stop with Ctrl-C or SIGTERM. On SQLite one per state (exit 3 if
    another process holds it); on PostgreSQL several replicas may share one. With tenants: every
    tenant (or the one --tenant names), each on its own schedule. Logs at [log] level (INFO by
    default: one line per cycle, a WARNING per retry and dead letter) in [log] format; -v is DEBUG."""
    from rich.markup import escape

    from dvcsync.logs import apply_log_settings
    from dvcsync.scheduler import UnsafeToStart, run_service
    from dvcsync.sync.state_lock import StateBusy

    from ._common import _chosen_tenant, _every_tenant, _refuse_published_secrets, _State

    settings, served = _every_tenant()  # every tenant, or the one --tenant names
    for own in served.values():
        _refuse_published_secrets(own)
    # a service's log is its record: [log] level applies, set or not (one-off commands: WARNING)
    apply_log_settings(settings.log, _State.verbose, service=True)
    mset = _load_mappings(settings.province.mappings)
    for own in served.values():  # a service never starts a state of its own (a mistyped url)
        _require_state(own, "dvcsync run")
        _check_identity(own)
    only = list(served) if _chosen_tenant()[0] is not None else None
    try:
        asyncio.run(run_service(settings, mset, tenants=only))
    except UnsafeToStart as exc:
        err_console.print(f"[red]refusing to start[/red]\n{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except StateBusy as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)  # one line: grep finds it
        raise typer.Exit(exc.exit_code) from None


@sync_app.command("pull")
def sync_pull(as_json: JsonOpt = False) -> None:
    """One pull cycle: take in dossiers submitted on the portal, acknowledge each once created."""
    from dvcsync.sync.cycles import run_pull

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    summary = _run_cycles(settings, "dvcsync sync pull", lambda: run_pull(settings, mset))
    _report(summary.as_dict(), as_json, _print_pull, ok=summary.failed == 0 and summary.rejected == 0)


@sync_app.command("payments")
def sync_payments(as_json: JsonOpt = False) -> None:
    """One payment cycle: INIT for dossiers awaiting payment, QUERY unanswered attempts, save receipts."""
    from dvcsync.sync.cycles import run_payments

    settings = _live_settings()
    mset = _load_mappings(settings.province.mappings)
    summary = _run_cycles(settings, "dvcsync sync payments", lambda: run_payments(settings, mset))
    _report(summary.as_dict(), as_json, _print_payments, ok=summary.errors == 0)


def _print_payments(data: dict[str, Any]) -> None:
    labels = (
        ("payment requests sent (INIT)", "initiated"),
        ("INIT refused (attempt failed)", "init_refused"),
        ("INIT unanswered (left created)", "init_unanswered"),
        ("attempts queried (QUERY)", "polled"),
        ("found paid", "paid"),
        ("found failed", "failed"),
        ("still pending", "pending"),
        ("receipts saved (GET_BILL)", "receipts"),
        ("errors", "errors"),
    )
    _print_counts("payment cycle", [(name, data[key]) for name, key in labels])
    for problem in data["problems"]:
        console.print(f"  {problem}", markup=False)
