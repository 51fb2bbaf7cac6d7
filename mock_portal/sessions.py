"""Login sessions, kept in memory: checked on every call, so never a database lookup.

A restart forgets them (clients log in again, as after a real portal restart). The lifetime is
counted from login; a fault rule may shorten it per service or expire a session on demand.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

EXPIRED = "Phiên làm việc hết hạn"
MISSING = "Thiếu session: hãy đăng nhập qua /dvcqg/auth"
UNKNOWN = "Phiên làm việc không hợp lệ"
FOREIGN = "Phiên làm việc không thuộc dstcode này"


@dataclass
class Session:
    issued: float
    dstcode: str


class Sessions:
    def __init__(self) -> None:
        self._by_token: dict[str, Session] = {}

    def issue(self, dstcode: str) -> str:
        token = secrets.token_urlsafe(24)
        self._by_token[token] = Session(time.monotonic(), dstcode)
        return token

    def check(self, token: object, dstcode: str, ttl_s: float, force_expiry: bool = False) -> str | None:
        """None when the session may be used, else the reason (answered with error_code 401)."""
        if not isinstance(token, str) or not token:
            return MISSING
        session = self._by_token.get(token)
        if session is None:
            return UNKNOWN
        if force_expiry or time.monotonic() - session.issued > ttl_s:
            del self._by_token[token]
            return EXPIRED
        if session.dstcode != dstcode:
            return FOREIGN
        return None

    def clear(self) -> None:
        self._by_token.clear()

    def __len__(self) -> int:
        return len(self._by_token)
