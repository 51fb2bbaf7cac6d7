"""The portal session: one login shared by every request in flight, renewed before it expires
and whenever the portal says it has (the portal never announces the lifetime)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .errors import AuthError

LoginFn = Callable[[], Awaitable[str]]


class SessionCache:
    def __init__(self, login: LoginFn, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._login = login
        self._ttl = ttl_s
        self._clock = clock
        self._session: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.logins = 0

    async def get(self, login: LoginFn | None = None) -> str:
        """The current session, logging in first when there is none or it has expired.
        ``login``: the caller's own way to log in (a cache shared by several clients logs in
        through whichever client finds it missing; see ``dvcsync.portal.shared``)."""
        if self._session is not None and self._clock() < self._expires:
            return self._session
        async with self._lock:  # one login for all the requests that found it missing
            if self._session is None or self._clock() >= self._expires:
                session = await (login or self._login)()
                if not session:
                    raise AuthError("auth", "login answered without a session")
                self.logins += 1
                self._session, self._expires = session, self._clock() + self._ttl
            return self._session

    def invalidate(self, session: str) -> None:
        """Forget ``session`` if it is still the current one (a newer login is kept)."""
        if self._session == session:
            self._session = None
