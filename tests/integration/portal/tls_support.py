"""A test CA (trustme) written to files as an operator would configure them, and a real TLS server
(uvicorn) on a free loopback port, optionally asking for client certificates."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
import uvicorn


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    """The test CA's certificate: what ``ca_bundle`` points at."""
    server: Path
    """The server's key and certificate chain (127.0.0.1, localhost), one PEM."""
    client_cert: Path
    client_key: Path
    """A client certificate from the same CA, for mutual TLS."""
    other_ca: Path
    """Another CA's certificate: trusted by nobody here."""


def make_tls_files(folder: Path) -> TlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    files = TlsFiles(
        folder / "ca.pem",
        folder / "server.pem",
        folder / "client.crt",
        folder / "client.key",
        folder / "other-ca.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    other.cert_pem.write_to_path(str(files.other_ca))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(files.server))
    client = ca.issue_cert("dvcsync.so-tt-tt.test")
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    client.private_key_pem.write_to_path(str(files.client_key))
    return files


@contextmanager
def serve_tls(app: Any, files: TlsFiles, *, client_ca: Path | None = None) -> Iterator[str]:
    """Serve ``app`` over TLS on a free loopback port; yields ``https://127.0.0.1:PORT``. With
    ``client_ca`` the server requires a client certificate issued by that CA."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="critical",  # refused handshakes are the point of some tests
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        ssl_certfile=str(files.server),
        ssl_ca_certs=str(client_ca) if client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("TLS server did not start")
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
