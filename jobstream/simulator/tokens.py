"""Access and refresh tokens the simulator has issued, and when each access token dies."""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    refresh_token: str
    ttl: float


class TokenStore:
    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()

    def issue(self) -> IssuedToken:
        token = IssuedToken(secrets.token_urlsafe(24), secrets.token_urlsafe(24), self.ttl)
        self._access[token.access_token] = self._monotonic() + self.ttl
        self._refresh.add(token.refresh_token)
        return token

    def refresh(self, refresh_token: str) -> IssuedToken | None:
        """Trade a refresh token for a new pair; the old refresh token is spent (rotation)."""
        if refresh_token not in self._refresh:
            return None
        self._refresh.discard(refresh_token)
        return self.issue()

    def is_valid(self, access_token: str) -> bool:
        expires = self._access.get(access_token)
        return expires is not None and self._monotonic() < expires

    def expire_all(self, *, refresh_too: bool = False) -> None:
        self._access.clear()
        if refresh_too:
            self._refresh.clear()
