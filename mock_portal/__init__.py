"""The mock national public service portal and payment platform (REST, SOAP, admin, faults).

``create_app(config)`` builds the FastAPI app; ``python -m mock_portal`` serves it;
``mock_portal.testing.run_mock`` runs it on a free loopback port for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Credentials, MockConfig

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["Credentials", "MockConfig", "create_app"]


def __getattr__(name: str) -> Any:
    """``create_app`` is imported on first use: FastAPI takes half a second to import, and
    ``dvcsync`` reads the mock's command-line options (``mock_portal.cli``) at every start."""
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
