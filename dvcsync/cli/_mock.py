"""`dvcsync mock-portal`: the mock national portal and payment platform for developers.

The command is ``mock_portal.cli.serve`` (every option of ``python -m mock_portal``, same names and
``MOCK_PORTAL_`` variables) plus ``--knows``: a fresh mock does not hold the dossiers of a one-stop
database that were submitted on the portal, so the status reports of a first ``sync push`` would
all be refused as unknown. ``--knows onestop.db`` builds their portal-side records with the
adapter's mappings and hands them to the mock as its generic ``--seed-dossiers`` file.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from dvcsync.errors import ExitCode
from mock_portal.cli import serve

from ._common import _load_mappings, _settings, app, err_console

KnowsOpt = Annotated[
    str | None,
    typer.Option(
        "--knows",
        help="A one-stop database (SQLite file or SQLAlchemy URL of the province's source): the mock starts "
        "holding its dossiers that were submitted on the portal, as the real portal does.",
        rich_help_panel="Where it listens",
    ),
]
MappingsOpt = Annotated[
    Path | None,
    typer.Option(
        "--mappings",
        help="Mapping specs for --knows (default: [province] mappings of the configuration).",
        rich_help_panel="Where it listens",
    ),
]


def _source_url(knows: str) -> str:
    if "://" in knows:
        return knows
    if not Path(knows).is_file():
        err_console.print(f"[red]--knows {knows}: no such file[/red]", highlight=False)
        raise typer.Exit(ExitCode.INVALID)
    return f"sqlite:///{Path(knows).resolve()}"


def _with_knows(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with ``--knows`` and ``--mappings`` in front of its own options (Typer reads the
    signature, so the mock's options are declared once, in ``mock_portal.cli``)."""

    def mock_portal(knows: str | None = None, mappings: Path | None = None, **options: Any) -> None:
        if knows is None:
            command(**options)
            return
        if options.get("seed_dossiers") is not None:
            err_console.print("[red]--knows and --seed-dossiers: give one of them[/red]")
            raise typer.Exit(ExitCode.INVALID)
        source_url = _source_url(knows)
        from dvcsync.sync.portal_side import portal_side_dossiers

        mset = _load_mappings(mappings or _settings().province.mappings)
        try:
            dossiers = portal_side_dossiers(source_url, mset)
        except Exception as exc:  # not a one-stop database, unreadable: bad input, not a crash
            err_console.print(f"[red]--knows {knows}: cannot read its dossiers[/red]: {exc}", highlight=False)
            raise typer.Exit(ExitCode.INVALID) from None
        with tempfile.TemporaryDirectory(prefix="dvcsync-mock-") as folder:  # 0700: personal data
            seed = Path(folder) / "portal-dossiers.json"
            seed.write_text(json.dumps({"dossiers": dossiers}, ensure_ascii=False), encoding="utf-8")
            command(**{**options, "seed_dossiers": seed})

    own = inspect.signature(mock_portal, eval_str=True).parameters
    theirs = inspect.signature(command, eval_str=True).parameters.values()
    params = [
        own["knows"].replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=KnowsOpt),
        own["mappings"].replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=MappingsOpt),
        *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in theirs),
    ]
    mock_portal.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    mock_portal.__annotations__ = {p.name: p.annotation for p in params}
    return mock_portal


app.command(
    "mock-portal",
    help=f"{inspect.cleandoc(serve.__doc__ or '')}\n\nWith --knows onestop.db it already holds that "
    "database's dossiers submitted on the portal, so `dvcsync sync push` can report their status.",
)(_with_knows(serve))
