"""``mock_portal.testing.run_app_in_process``: what a test sees when the app it runs in process
fails at start-up, hangs there, or lets an exception through; and that its URL reaches nothing
but the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from mock_portal import testing
from mock_portal.testing import IN_PROCESS_URL, run_app_in_process, run_mock_in_process


def _app(on_start: str = "ok") -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_start == "fail":
            raise RuntimeError("cannot open its state")
        if on_start == "hang":
            await asyncio.Event().wait()
        app.state.stopped = False
        yield
        app.state.stopped = True

    app = FastAPI(lifespan=lifespan)

    @app.get("/ok")
    def ok() -> dict[str, str]:
        return {"ok": "1"}

    @app.get("/boom")
    def boom() -> None:
        raise ValueError("a bug in the app")

    return app


def test_requests_reach_the_app_and_its_shutdown_runs_at_exit() -> None:
    app = _app()
    with run_app_in_process(app) as served, served.client() as client:
        assert client.get("/ok").json() == {"ok": "1"}
        assert app.state.stopped is False
    assert app.state.stopped is True


def test_a_start_up_that_fails_raises_its_own_error() -> None:
    with pytest.raises(RuntimeError, match="cannot open its state"), run_app_in_process(_app("fail")):
        pass


def test_a_start_up_that_hangs_fails_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hung start is cancelled, not waited for again at exit (whose own timeout would replace
    this error with a bare one)."""
    monkeypatch.setattr(testing, "IN_PROCESS_WAIT_S", 0.3)
    hang = run_app_in_process(_app("hang"), name="the receiver")
    with pytest.raises(TimeoutError, match="the receiver did not start in 0 s"), hang:
        pass


def test_an_exception_the_app_lets_through_reaches_the_caller() -> None:
    with run_app_in_process(_app()) as served, served.client() as client:
        with pytest.raises(ValueError, match="a bug in the app"):
            client.get("/boom")
        assert client.get("/ok").status_code == 200  # and the app goes on answering


def test_its_url_reaches_only_the_app() -> None:
    with run_mock_in_process() as mock:
        assert mock.url == IN_PROCESS_URL
        with mock.client() as client:
            assert client.get("/dvcqg/").status_code < 500
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{IN_PROCESS_URL}/dvcqg/", timeout=5)  # nothing listens there
