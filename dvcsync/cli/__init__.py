"""The ``dvcsync`` command.

One Typer application; the commands live in modules by what they do and register themselves on
import: ``_sync`` (pushes, cycles, the service), ``_state`` (status, dead letters, the store),
``_tools`` (sample data, mapping checks, the demo), ``_mock`` (the mock portal).
"""

from __future__ import annotations

import logging
import time
from typing import NoReturn

from . import _adopt, _catalogue, _config, _mock, _reconcile, _satisfaction, _state, _sync, _tools
from ._common import app, console, err_console

__all__ = ["app", "console", "err_console", "main"]


def main() -> None:
    """Run the command; whatever escapes it ends as one escaped line and the README's exit code
    (``_errors.explain``), the traceback only with ``-v`` or ``DVCSYNC_DEBUG=1``."""
    from dvcsync._gc import tune_gc

    tune_gc()
    started = time.perf_counter()
    try:
        app()
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        _report(exc)
    finally:
        logging.getLogger(__name__).debug("done in %.2fs", time.perf_counter() - started)


def _report(exc: BaseException) -> NoReturn:
    from ._common import _State
    from ._errors import debug_wanted, explain, terminal_text

    explained = explain(exc)
    if debug_wanted(_State.verbose):
        import traceback

        err_console.print(
            terminal_text("".join(traceback.format_exception(exc)), limit=100_000),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    err_console.print(terminal_text(explained.message), markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(explained.code) from None


if __name__ == "__main__":
    main()
