"""The adapter's inbound HTTP server: what the national side calls on the province.

``create_server_app`` builds the application (every inbound path behind the access guard);
``create_tenants_app`` the same for several tenants, each under ``/t/<code>/``;
``server_config`` wraps it for uvicorn with the limits that keep one hostile caller from costing
the process; ``listen_problems`` says why a configuration must not start listening.
"""

from ._access import GROUP_OF_PATH, AccessGuard, group_of, split_tenant
from ._app import create_server_app, create_tenants_app
from ._serve import listen_problems, raise_open_files_limit, server_config

__all__ = [
    "GROUP_OF_PATH",
    "AccessGuard",
    "create_server_app",
    "create_tenants_app",
    "group_of",
    "listen_problems",
    "raise_open_files_limit",
    "server_config",
    "split_tenant",
]
