"""``python -m mock_portal`` / ``dvcsync mock-portal``: flags, ``MOCK_PORTAL_<FLAG>`` environment
variables (a flag given on the command line wins), start-up banner with the local credentials."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from .config import Credentials, MockConfig
from .faults import FaultSpec

ENV_PREFIX = "MOCK_PORTAL_"
_SUCCESS = {"int": 0, "string": "0", "00": "00"}


def _env(flag: str) -> str | None:
    return os.environ.get(ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper())


def build_parser() -> argparse.ArgumentParser:
    d = MockConfig()
    c = Credentials()
    p = argparse.ArgumentParser(
        prog="mock_portal",
        description="Mock national public service portal (Cổng DVC Quốc gia) and payment platform. "
        f"Every flag can also be set as {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}PORT=8080).",
    )

    def add(flag: str, default: object, help_text: str, **kwargs: object) -> None:
        env = _env(flag)
        p.add_argument(flag, default=env if env is not None else default, help=help_text, **kwargs)  # type: ignore[arg-type]

    add("--host", d.host, "interface to listen on (default %(default)s)")
    add("--port", d.port, "port (default %(default)s)", type=int)
    add("--state", d.state, "SQLite file kept across restarts, or :memory: (default %(default)s)")
    add("--faults", None, "fault spec: JSON inline or @file (see docs/mock-portal.md)")
    add("--callback-url", None, "full URL of the province's payment-result endpoint")
    add("--province-url", None, "full URL where portal-submitted promotion notifications are POSTed")
    add("--callback-token", None, "bearer credential sent with every payment callback (or env)")
    add("--province-token", None, "bearer credential sent with every pushed dossier (or env)")
    add("--username", c.username, "portal login user")
    add("--password", c.password, "portal login password")
    add("--dstcode", c.dstcode, "destination code required in the dstcode header")
    add("--madonvi", c.madonvi, "the province's agency code expected in every body")
    add("--partner-code", c.partner_code, "payment platform partner code (MaDoiTac)")
    add("--payment-secret", c.payment_secret, "shared secret of MaXacThuc")
    strict = _env("--strict")
    lenient = _env("--lenient")
    default_strict = not (lenient is not None and lenient.lower() in {"1", "true", "yes"}) and (
        strict is None or strict.lower() in {"1", "true", "yes"}
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--strict",
        dest="strict",
        action="store_true",
        default=default_strict,
        help="refuse illegal status moves (default)",
    )
    group.add_argument(
        "--lenient",
        dest="strict",
        action="store_false",
        help="accept illegal status moves and record a warning",
    )
    add(
        "--success-code",
        {0: "int", "0": "string", "00": "00"}[d.success_code],
        'success error_code: int (0), string ("0") or 00 ("00")',
        choices=sorted(_SUCCESS),
    )
    add("--batch-limit", d.batch_limit, "records per DongBoHoSoMC/CapNhatTienDoHoSoMC call", type=int)
    add("--session-ttl", d.session_ttl_s, "session lifetime in seconds", type=float)
    add("--payment-reply", d.payment_reply_form, "INIT reply form", choices=["wrapped", "flat"])
    add("--callback-type", d.callback_type, "LoaiBanTin of the payment callback")
    add("--callback-retry-s", d.callback_retry_s, "first retry delay of a callback (doubles)", type=float)
    add("--callback-max-attempts", d.callback_max_attempts, "callback attempts before giving up", type=int)
    add(
        "--callback-delay-s",
        d.callback_delay_s,
        "delay before the first callback (late delivery)",
        type=float,
    )
    dup = _env("--callback-duplicate")
    p.add_argument(
        "--callback-duplicate",
        action="store_true",
        default=dup is not None and dup.lower() in {"1", "true", "yes"},
        help="deliver every acknowledged callback twice",
    )
    p.add_argument("--quiet", action="store_true", help="no start-up banner, warnings only")
    return p


def parse_faults(value: str | None) -> FaultSpec:
    if not value:
        return FaultSpec()
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    return FaultSpec.model_validate_json(text)


def config_from_args(args: argparse.Namespace) -> MockConfig:
    return MockConfig(
        host=args.host,
        port=args.port,
        state=args.state,
        faults=parse_faults(args.faults),
        callback_url=args.callback_url or None,
        province_url=args.province_url or None,
        callback_token=args.callback_token or None,
        province_token=args.province_token or None,
        credentials=Credentials(
            username=args.username,
            password=args.password,
            dstcode=args.dstcode,
            madonvi=args.madonvi,
            partner_code=args.partner_code,
            payment_secret=args.payment_secret,
        ),
        strict=args.strict,
        success_code=_SUCCESS[args.success_code],
        batch_limit=args.batch_limit,
        session_ttl_s=args.session_ttl,
        payment_reply_form=args.payment_reply,
        callback_type=args.callback_type,
        callback_retry_s=args.callback_retry_s,
        callback_max_attempts=args.callback_max_attempts,
        callback_delay_s=args.callback_delay_s,
        callback_duplicate=args.callback_duplicate,
    )


def banner(cfg: MockConfig) -> str:
    c = cfg.credentials
    base = f"http://{cfg.host}:{cfg.port}"
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        cfg = config_from_args(args)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"mock_portal: invalid settings: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from .app import create_app

    if not args.quiet:
        print(banner(cfg), flush=True)
    app = create_app(cfg)
    tune_gc()
    uvicorn.run(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level="warning" if args.quiet else "info",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return 0
