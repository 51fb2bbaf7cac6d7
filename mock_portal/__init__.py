"""The mock national public service portal and payment platform (REST, SOAP, admin, faults).

``create_app(config)`` builds the FastAPI app; ``python -m mock_portal`` serves it;
``mock_portal.testing.run_mock`` runs it on a free loopback port for tests.
"""

from .app import create_app
from .config import Credentials, MockConfig

__all__ = ["Credentials", "MockConfig", "create_app"]
