"""Outbound deliveries: payment-result callbacks and portal-submitted dossiers pushed to the province.

Both retry with a doubling delay until the province acknowledges (callback: ``MaLoi`` "00";
push: ``error_code`` 0 created, 1 duplicate or -1 rejected), and record every attempt in the state
so a test or a developer can see what was delivered, when and with what answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, ClassVar

import httpx

from .store import Store, now_local

MAX_DELAY_S = 30.0


class _Sender:
    """Where to send (read at each attempt: the admin API may change it), how often to retry."""

    def __init__(
        self,
        store: Store,
        url: Callable[[], str | None],
        retry_s: Callable[[], float],
        max_attempts: Callable[[], int],
        token: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.store = store
        self._url = url
        self._token = token
        self._retry_s = retry_s
        self._max_attempts = max_attempts
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0, trust_env=False)
        return self._client

    async def post(self, url: str, body: dict[str, Any]) -> tuple[int | None, Any, str | None]:
        """(HTTP status, parsed JSON or None, transport error text)."""
        try:
            token = self._token()
            headers = {"Authorization": f"Bearer {token}"} if token else None
            response = await self.client().post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, None, f"{type(exc).__name__}: {exc}"
        try:
            return response.status_code, response.json(), None
        except ValueError:
            return response.status_code, None, "reply is not JSON"

    @property
    def busy(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class CallbackDeliverer(_Sender):
    """POSTs signed payment results to ``callback_url`` until answered ``MaLoi`` "00"."""

    def schedule(self, ref: str, body: dict[str, Any], duplicate: bool, delay_s: float) -> None:
        self._spawn(self._deliver(ref, body, duplicate, delay_s))

    async def _deliver(self, ref: str, body: dict[str, Any], duplicate: bool, delay_s: float) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        delay = self._retry_s()
        for attempt in range(1, self._max_attempts() + 1):
            if await self._attempt(ref, body, attempt, duplicate=False):
                if duplicate:
                    await self._attempt(ref, body, attempt + 1, duplicate=True)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
        self.store.add_delivery(ref, {"at": now_local(), "gave_up": True})

    async def _attempt(self, ref: str, body: dict[str, Any], attempt: int, duplicate: bool) -> bool:
        url = self._url()
        if not url:
            return False
        status, answer, problem = await self.post(url, body)
        code = answer.get("MaLoi") if isinstance(answer, dict) else None
        acked = status == 200 and code == "00"
        self.store.add_delivery(
            ref,
            {
                "attempt": attempt,
                "at": now_local(),
                "status": status,
                "MaLoi": code,
                "acknowledged": acked,
                "duplicate": duplicate,
                "error": problem,
            },
        )
        return acked


class ProvincePusher(_Sender):
    """POSTs promotion notifications to ``province_url`` until the province answers 0, 1 or -1."""

    FINAL: ClassVar[dict[int, str]] = {0: "created", 1: "duplicate", -1: "rejected"}

    def schedule(self, codes: list[str]) -> None:
        if not self._url():
            return
        pending = dict(self.store.pending_pushes())
        for code in codes:
            if code in pending:
                self._spawn(self._push(code, pending[code]))

    def resume(self) -> None:
        """After a restart: push what was seeded but never answered."""
        self.schedule([code for code, _ in self.store.pending_pushes()])

    async def _push(self, code: str, body: dict[str, Any]) -> None:
        delay = self._retry_s()
        attempts = self._max_attempts()
        for attempt in range(1, attempts + 1):
            url = self._url()
            if not url:
                return
            status, answer, problem = await self.post(url, body)
            raw_code = answer.get("error_code") if isinstance(answer, dict) else None
            try:
                parsed = int(raw_code) if raw_code is not None and not isinstance(raw_code, bool) else None
            except (TypeError, ValueError):
                parsed = None
            if status == 200 and parsed in self.FINAL:
                self.store.set_push_result(code, self.FINAL[parsed], answer, attempt)
                return
            self.store.set_push_result(
                code,
                "pending" if attempt < attempts else "failed",
                {
                    "status": status,
                    "answer": json.dumps(answer, ensure_ascii=False)[:500] if answer else None,
                    "error": problem,
                },
                attempt,
            )
            if attempt < attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
