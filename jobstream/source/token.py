"""An access token and when to renew it (seed §15: refresh 5 minutes before it expires)."""

from dataclasses import dataclass, field, replace
from typing import Any

from jobstream.source.envelope import MalformedResponse, payload

REFRESH_MARGIN = 300.0


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    lifetime: float
    expires_at: float

    def needs_renewal(self, now: float, margin: float = REFRESH_MARGIN) -> bool:
        # A token that lives no longer than the margin (simulators, tests) would otherwise be
        # renewed before every call; it is renewed at half its life instead.
        early = margin if self.lifetime > margin else self.lifetime / 2
        return now >= self.expires_at - early

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at

    def revoked(self) -> "Token":
        """This token marked unusable, keeping its refresh token for the renewal."""
        return replace(self, expires_at=float("-inf"))


def parse_token(body: Any, now: float) -> Token:
    """Read a `/token` answer: fields under `data` or at the top level, expires_in str or number."""
    data = payload(body, allow_top_level=True)
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise MalformedResponse("the token answer has no access_token")
    raw = data.get("expires_in")
    try:
        lifetime = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MalformedResponse(f"expires_in must be a number of seconds, got {raw!r}") from None
    if isinstance(raw, bool) or lifetime <= 0:
        raise MalformedResponse(f"expires_in must be a positive number, got {raw!r}")
    refresh = data.get("refresh_token")
    return Token(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        lifetime=lifetime,
        expires_at=now + lifetime,
    )
