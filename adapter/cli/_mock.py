"""`dvcsync mock-portal`: the mock national portal and payment platform for developers."""

from __future__ import annotations

import typer

from ._common import app


@app.command(
    "mock-portal",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def mock_portal(ctx: typer.Context) -> None:
    """Run the mock national portal and payment platform (arguments as `python -m mock_portal`;
    `dvcsync mock-portal --help` lists them)."""
    from mock_portal.cli import main as mock_main

    raise typer.Exit(mock_main(list(ctx.args)))
