"""dvcsync/server/_serve.py subclasses uvicorn's ``H11Protocol``, which is not uvicorn's public API:
a uvicorn release that renames what it relies on must fail here, loudly and by name, not at a
province's server (pyproject.toml bounds uvicorn below the next minor release; raise the bound
only with this file green). The checks drive a real ``GuardedH11Protocol`` over a fake transport:
construction, the connection set, the strict h11 connection, a refused framing's 400 and close."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from dvcsync.server._serve import DROPPED, GuardedH11Protocol, StrictConnection

RELIED_ON = {
    # method: the parameters _serve.py calls or overrides it with
    "__init__": ["self", "config", "server_state", "app_state", "_loop"],
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "eof_received": ["self"],
    "send_400_response": ["self", "msg"],
    "on_response_complete": ["self"],
    "handle_events": ["self"],
}


@pytest.mark.parametrize("name", sorted(RELIED_ON))
def test_h11protocol_keeps_the_methods_guarded_h11protocol_overrides(name: str) -> None:
    method = getattr(H11Protocol, name, None)
    assert callable(method), (
        f"uvicorn {uvicorn.__version__}: H11Protocol.{name} is gone (_serve.py overrides it)"
    )
    params = list(inspect.signature(method).parameters)
    assert params == RELIED_ON[name], f"uvicorn {uvicorn.__version__}: H11Protocol.{name}{params} changed"


class FakeTransport(asyncio.Transport):
    """What uvicorn asks of a socket transport, recording what is written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8090)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never reached: the framing is refused
    raise AssertionError("the application must not see a refused request")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _protocol(loop: asyncio.AbstractEventLoop) -> tuple[GuardedH11Protocol, ServerState]:
    config = uvicorn.Config(
        _app, http=GuardedH11Protocol, h11_max_incomplete_event_size=16 * 1024, lifespan="off"
    )
    state = ServerState()
    return GuardedH11Protocol(config, state, {}, _loop=loop), state


def test_guarded_protocol_builds_on_the_attributes_it_reads(loop: asyncio.AbstractEventLoop) -> None:
    protocol, state = _protocol(loop)
    assert isinstance(protocol.conn, StrictConnection), "H11Protocol.conn is not the connection uvicorn reads"
    assert protocol.config.h11_max_incomplete_event_size == 16 * 1024
    assert protocol.connections is state.connections and protocol.loop is loop
    transport = FakeTransport()
    protocol.connection_made(transport)
    assert protocol in state.connections and protocol.client == ("127.0.0.1", 40000)
    assert protocol.transport is not transport  # the lingering wrapper uvicorn closes through
    protocol.connection_lost(None)
    assert protocol not in state.connections


def test_a_refused_framing_reaches_send_400_response_and_closes(loop: asyncio.AbstractEventLoop) -> None:
    protocol, _ = _protocol(loop)
    transport = FakeTransport()
    protocol.connection_made(transport)
    before = DROPPED["framing"]
    protocol.data_received(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert bytes(transport.written).startswith(b"HTTP/1.1 400 "), bytes(transport.written)[:80]
    assert DROPPED["framing"] == before + 1
    assert transport.closed or protocol.lingering  # closed, or closing once the caller has read it
