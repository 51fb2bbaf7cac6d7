"""``python -m mock_portal`` / ``dvcsync mock-portal``: flags (Typer, rich help like ``dvcsync``),
``MOCK_PORTAL_<FLAG>`` environment variables (a flag given on the command line wins), start-up
banner with the local credentials.

``serve`` is the command function; ``dvcsync mock-portal`` builds its own command from its signature
(adding options of the adapter's), so the two commands cannot drift apart.
"""

from __future__ import annotations

import errno
import gc
import os
import socket
import sys
from collections.abc import Sequence
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from .config import Credentials, MockConfig
from .faults import FaultSpec

ENV_PREFIX = "MOCK_PORTAL_"
_SUCCESS: dict[str, Any] = {"int": 0, "string": "0", "00": "00"}
_SUCCESS_NAME = {0: "int", "0": "string", "00": "00"}


class SuccessName(StrEnum):
    INT = "int"
    STRING = "string"
    ZERO_ZERO = "00"


class ReplyForm(StrEnum):
    WRAPPED = "wrapped"
    FLAT = "flat"


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_D = MockConfig()
_C = Credentials()
_DEFAULT_SUCCESS = SuccessName(_SUCCESS_NAME[_D.success_code])
_DEFAULT_REPLY = ReplyForm(_D.payment_reply_form)

WHERE, CREDS, RULES, PAY, PROVINCE, RUN = (
    "Where it listens",
    "Credentials (local test values)",
    "Portal rules",
    "Payment platform",
    "Deliveries to the province",
    "Start-up",
)


def _opt(flag: str, help_text: str, panel: str, **kwargs: Any) -> Any:
    """An option with its ``MOCK_PORTAL_<FLAG>`` variable, shown in the help."""
    name = flag.split("/")[0].lstrip("-")
    return typer.Option(
        flag,
        envvar=ENV_PREFIX + name.replace("-", "_").upper(),
        help=help_text,
        rich_help_panel=panel,
        **kwargs,
    )


def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version("dvcsync")
        except metadata.PackageNotFoundError:  # run from a source tree that was never installed
            version = "unknown"
        typer.echo(f"mock_portal {version}")
        raise typer.Exit()


def parse_faults(value: str | None) -> FaultSpec:
    if not value:
        return FaultSpec()
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    return FaultSpec.model_validate_json(text)


# serve()'s options, one alias each (Typer reads them from the annotations).
_HostOption = Annotated[str, _opt("--host", "Interface to listen on.", WHERE)]
_PortOption = Annotated[int, _opt("--port", "Port.", WHERE)]
_PublicUrlOption = Annotated[
    str | None,
    _opt(
        "--public-url",
        "Base URL clients reach the mock at, for the WSDL's soap:address and UrlThanhToan "
        "(default: the URL each request came to).",
        WHERE,
    ),
]
_StateOption = Annotated[str, _opt("--state", "SQLite file kept across restarts, or :memory:.", WHERE)]
_SeedDossiersOption = Annotated[
    Path | None,
    _opt(
        "--seed-dossiers",
        'JSON file of dossiers submitted on the portal (a list, or {"dossiers": [...]}) that it '
        "holds from the start; those already in --state are kept as they are.",
        WHERE,
        exists=True,
        dir_okay=False,
    ),
]
_UsernameOption = Annotated[str, _opt("--username", "Portal login user.", CREDS)]
_PasswordOption = Annotated[str, _opt("--password", "Portal login password.", CREDS)]
_DstcodeOption = Annotated[str, _opt("--dstcode", "Destination code required in the dstcode header.", CREDS)]
_MadonviOption = Annotated[
    str, _opt("--madonvi", "The province's agency code expected in every body.", CREDS)
]
_PartnerCodeOption = Annotated[
    str, _opt("--partner-code", "Payment platform partner code (MaDoiTac).", CREDS)
]
_PaymentSecretOption = Annotated[str, _opt("--payment-secret", "Shared secret of MaXacThuc.", CREDS)]
_StrictOption = Annotated[
    bool,
    _opt(
        "--strict/--lenient",
        "Refuse illegal status moves, or accept them and record a warning "
        f"({ENV_PREFIX}LENIENT=1 also means --lenient).",
        RULES,
    ),
]
_SuccessCodeOption = Annotated[
    SuccessName, _opt("--success-code", 'Success error_code: int (0), string ("0") or 00 ("00").', RULES)
]
_BatchLimitOption = Annotated[
    int, _opt("--batch-limit", "Records per DongBoHoSoMC/CapNhatTienDoHoSoMC call.", RULES, min=1)
]
_SessionTtlOption = Annotated[float, _opt("--session-ttl", "Session lifetime in seconds.", RULES, min=0)]
_FaultsOption = Annotated[
    str | None, _opt("--faults", "Fault spec: JSON inline or @file (see docs/mock-portal.md).", RULES)
]
_PaymentReplyOption = Annotated[ReplyForm, _opt("--payment-reply", "INIT reply form.", PAY)]
_CallbackUrlOption = Annotated[
    str | None, _opt("--callback-url", "Full URL of the province's payment-result endpoint.", PROVINCE)
]
_CallbackTokenOption = Annotated[
    str | None,
    _opt("--callback-token", "Bearer credential sent with every payment callback.", PROVINCE),
]
_CallbackTypeOption = Annotated[str, _opt("--callback-type", "LoaiBanTin of the payment callback.", PROVINCE)]
_CallbackRetrySOption = Annotated[
    float, _opt("--callback-retry-s", "First retry delay of a callback (doubles).", PROVINCE)
]
_CallbackMaxAttemptsOption = Annotated[
    int, _opt("--callback-max-attempts", "Callback attempts before giving up.", PROVINCE)
]
_CallbackDelaySOption = Annotated[
    float, _opt("--callback-delay-s", "Delay before the first callback (late delivery).", PROVINCE)
]
_CallbackDuplicateOption = Annotated[
    bool, _opt("--callback-duplicate", "Deliver every acknowledged callback twice.", PROVINCE)
]
_ProvinceUrlOption = Annotated[
    str | None,
    _opt("--province-url", "Full URL where portal-submitted promotion notifications are POSTed.", PROVINCE),
]
_PushRetrySOption = Annotated[
    float, _opt("--push-retry-s", "First retry delay of a promotion push (doubles).", PROVINCE)
]
_PushMaxAttemptsOption = Annotated[
    int, _opt("--push-max-attempts", "Promotion push attempts before giving up.", PROVINCE)
]
_ProvinceTokenOption = Annotated[
    str | None,
    _opt("--province-token", "Bearer credential sent with every pushed dossier.", PROVINCE),
]
_AdminTokenOption = Annotated[
    str | None,
    _opt(
        "--admin-token",
        "Bearer credential /_admin asks of every caller; required beyond loopback.",
        WHERE,
    ),
]
_QuietOption = Annotated[bool, _opt("--quiet", "No start-up banner, warnings only.", RUN)]
_VersionOption = Annotated[
    bool,
    typer.Option(
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
        rich_help_panel=RUN,
    ),
]


def serve(
    ctx: typer.Context,
    host: _HostOption = _D.host,
    port: _PortOption = _D.port,
    public_url: _PublicUrlOption = None,
    state: _StateOption = _D.state,
    seed_dossiers: _SeedDossiersOption = None,
    username: _UsernameOption = _C.username,
    password: _PasswordOption = _C.password,
    dstcode: _DstcodeOption = _C.dstcode,
    madonvi: _MadonviOption = _C.madonvi,
    partner_code: _PartnerCodeOption = _C.partner_code,
    payment_secret: _PaymentSecretOption = _C.payment_secret,
    strict: _StrictOption = _D.strict,
    success_code: _SuccessCodeOption = _DEFAULT_SUCCESS,
    batch_limit: _BatchLimitOption = _D.batch_limit,
    session_ttl: _SessionTtlOption = _D.session_ttl_s,
    faults: _FaultsOption = None,
    payment_reply: _PaymentReplyOption = _DEFAULT_REPLY,
    callback_url: _CallbackUrlOption = None,
    callback_token: _CallbackTokenOption = None,
    callback_type: _CallbackTypeOption = _D.callback_type,
    callback_retry_s: _CallbackRetrySOption = _D.callback_retry_s,
    callback_max_attempts: _CallbackMaxAttemptsOption = _D.callback_max_attempts,
    callback_delay_s: _CallbackDelaySOption = _D.callback_delay_s,
    callback_duplicate: _CallbackDuplicateOption = False,
    province_url: _ProvinceUrlOption = None,
    push_retry_s: _PushRetrySOption = _D.push_retry_s,
    push_max_attempts: _PushMaxAttemptsOption = _D.push_max_attempts,
    province_token: _ProvinceTokenOption = None,
    admin_token: _AdminTokenOption = None,
    quiet: _QuietOption = False,
    version: _VersionOption = False,
) -> None:
    """Mock national public service portal (Cổng DVC Quốc gia) and payment platform, for developing
    and testing a one-stop system: REST under /dvcqg, SOAP at /soap (WSDL at /soap?wsdl), payments
    under /payment, admin under /_admin, OpenAPI at /docs (served offline).

    Every option can also be set as MOCK_PORTAL_<OPTION>; an option on the command line wins."""
    strict = _strict(ctx, strict)
    try:
        cfg = MockConfig(
            host=host,
            port=port,
            public_url=public_url or None,
            state=state,
            seed_dossiers=str(seed_dossiers) if seed_dossiers else None,
            faults=parse_faults(faults),
            callback_url=callback_url or None,
            province_url=province_url or None,
            callback_token=callback_token or None,
            province_token=province_token or None,
            credentials=_credentials(username, password, dstcode, madonvi, partner_code, payment_secret),
            strict=strict,
            success_code=_SUCCESS[SuccessName(success_code).value],
            batch_limit=batch_limit,
            session_ttl_s=session_ttl,
            payment_reply_form=ReplyForm(payment_reply).value,
            callback_type=callback_type,
            callback_retry_s=callback_retry_s,
            callback_max_attempts=callback_max_attempts,
            callback_delay_s=callback_delay_s,
            callback_duplicate=callback_duplicate,
            push_retry_s=push_retry_s,
            push_max_attempts=push_max_attempts,
            admin_token=admin_token or None,
        )
    except (ValidationError, ValueError, OSError) as exc:
        _invalid(exc)
    start(cfg, quiet=quiet)


def _strict(ctx: typer.Context, strict: bool) -> bool:
    """--strict/--lenient, where MOCK_PORTAL_LENIENT=1 means --lenient unless the command line says."""
    lenient = os.environ.get(ENV_PREFIX + "LENIENT", "").lower() in _TRUE
    source = ctx.get_parameter_source("strict")  # Typer's own click: compared by name
    return False if lenient and getattr(source, "name", None) != "COMMANDLINE" else strict


def _credentials(
    username: str, password: str, dstcode: str, madonvi: str, partner_code: str, payment_secret: str
) -> Credentials:
    return Credentials(
        username=username,
        password=password,
        dstcode=dstcode,
        madonvi=madonvi,
        partner_code=partner_code,
        payment_secret=payment_secret,
    )


def _invalid(exc: Exception) -> NoReturn:
    typer.echo(f"mock_portal: invalid settings: {exc}", err=True)
    raise typer.Exit(2)


def banner(cfg: MockConfig) -> str:
    c = cfg.credentials
    base = cfg.public_url or f"http://{cfg.host}:{cfg.port}"
    return "\n".join(
        [
            f"mock national portal on {base}  (OpenAPI: {base}/docs, admin: {base}/_admin/stats)",
            f"  REST      {base}/dvcqg/auth | /dvcqg/integration | /dvcqg/share   SOAP {base}/soap?wsdl",
            f"  payments  {base}/payment/init | /payment/query | /payment/bill",
            f"  state     {cfg.state}   mode {'strict' if cfg.strict else 'lenient'}   "
            f"batch limit {cfg.batch_limit}   session TTL {cfg.session_ttl_s:g}s",
            "  local credentials (for testing only):",
            f"    username={c.username} password={c.password} dstcode={c.dstcode} madonvi={c.madonvi}",
            f"    partner_code={c.partner_code} payment_secret={c.payment_secret}",
            f"  callback → {cfg.callback_url or '(none)'}   province push → {cfg.province_url or '(none)'}",
            f"  faults    {len(cfg.faults.rules)} rule(s), seed {cfg.faults.seed}",
        ]
    )


def tune_gc() -> None:
    """A validated batch allocates ~1,000 short-lived objects per dossier; with the default
    thresholds the cyclic collector runs every few hundred of them and rescans the long-lived
    heap. Freezing what start-up built and collecting less often cuts a third of the validation
    time (bench/mock_portal.py). Only done when the mock owns its process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def start(cfg: MockConfig, *, quiet: bool = False) -> None:
    """Build the app (seeding ``cfg.seed_dossiers``) and serve it until interrupted."""
    import uvicorn

    from .app import create_app

    listener = _listen(cfg)  # before the banner: a busy port is one line and exit 2
    try:
        app = create_app(cfg)
    except (ValueError, OSError) as exc:  # the seed file: unreadable, not JSON, a bad record
        listener.close()
        _invalid(exc)
    if not quiet:
        seeded = len(app.state.store.list_portal_dossiers())
        print(
            banner(cfg) + (f"\n  portal    {seeded} dossier(s) submitted on it" if seeded else ""), flush=True
        )
    tune_gc()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=cfg.host,
            port=cfg.port,
            log_level="warning" if quiet else "info",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    )
    server.run(sockets=[listener])


def _listen(cfg: MockConfig) -> socket.socket:
    """The listening socket, bound here so that a busy port or an unknown host is one line and
    exit 2 (uvicorn would log a trace and exit 1 or 3)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            cfg.host.strip("[]"), cfg.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        typer.echo(f"mock_portal: cannot listen on {cfg.host}:{cfg.port}: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        typer.echo(f"mock_portal: cannot listen on {cfg.host}:{cfg.port}: {why}", err=True)
        raise typer.Exit(2) from None
    sock.set_inheritable(True)
    return sock


app = typer.Typer(
    name="mock_portal",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command(name="mock_portal")(serve)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit code is returned (0 after a clean stop, 2 for bad input)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="python -m mock_portal")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
