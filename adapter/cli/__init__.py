"""The ``dvcsync`` command.

One Typer application; the commands live in modules by what they do and register themselves on
import: ``_sync`` (pushes, cycles, the service), ``_state`` (status, dead letters, the store),
``_tools`` (sample data, mapping checks, the demo), ``_mock`` (the mock portal).
"""

from __future__ import annotations

import logging
import time

from adapter.config import ConfigError

from . import _adopt, _catalogue, _config, _mock, _reconcile, _satisfaction, _state, _sync, _tools
from ._common import app, console, err_console

__all__ = ["app", "console", "err_console", "main"]


def main() -> None:
    from adapter._gc import tune_gc

    tune_gc()
    started = time.perf_counter()
    try:
        app()
    except ConfigError as exc:  # found late (e.g. a TLS file read when the client is built)
        err_console.print(f"configuration error\n{exc}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except Exception as exc:
        from adapter.state import SchemaOutOfDate  # here, not above: the state layer is slow to import

        if not isinstance(exc, SchemaOutOfDate):
            raise
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    finally:
        logging.getLogger(__name__).debug("done in %.2fs", time.perf_counter() - started)


if __name__ == "__main__":
    main()
