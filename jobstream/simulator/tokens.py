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
    # Who holds it: one label per password grant, kept by the tokens refreshed from it (so a
    # test can tell which worker made a request).
    client: str = ""
    # The account (user name) it was granted to.
    account: str = ""


class TokenStore:
    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()
        # Every token ever issued, by access and by refresh token.
        self.issued: list[IssuedToken] = []
        self._client_of: dict[str, str] = {}
        self._account_of: dict[str, str] = {}

    def issue(self, client: str | None = None, account: str = "") -> IssuedToken:
        """A new pair for `account`; `client` None starts a new holder (a password grant)."""
        client = client or f"client-{len({t.client for t in self.issued}) + 1}"
        token = IssuedToken(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            self.ttl,
            client=client,
            account=account,
        )
        self._access[token.access_token] = self._monotonic() + self.ttl
        self._refresh.add(token.refresh_token)
        self.issued.append(token)
        self._client_of[token.access_token] = self._client_of[token.refresh_token] = client
        self._account_of[token.access_token] = self._account_of[token.refresh_token] = account
        return token

    def refresh(self, refresh_token: str) -> IssuedToken | None:
        """Trade a refresh token for a new pair; the old refresh token is spent (rotation)."""
        if refresh_token not in self._refresh:
            return None
        self._refresh.discard(refresh_token)
        return self.issue(self._client_of[refresh_token], self._account_of[refresh_token])

    def client_of(self, token: str) -> str:
        """The holder of an access or refresh token ("" for one never issued)."""
        return self._client_of.get(token, "")

    def account_of(self, token: str) -> str:
        """The account of an access or refresh token ("" for one never issued)."""
        return self._account_of.get(token, "")

    def is_valid(self, access_token: str) -> bool:
        expires = self._access.get(access_token)
        return expires is not None and self._monotonic() < expires

    def expire_all(self, *, refresh_too: bool = False) -> None:
        self._access.clear()
        if refresh_too:
            self._refresh.clear()
