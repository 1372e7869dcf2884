"""BazhuayuClient: the OpenAPI's token and data calls, with the bounded retries of seed §9 and
the token handling of seed §15. Knows nothing of Kafka: it hands back pages."""

import asyncio
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from jobstream.errors import AuthError, JobstreamError, SourceError
from jobstream.limits import EXCERPT_BYTES
from jobstream.redaction import keep_secret, scrub
from jobstream.source.backoff import full_jitter, retry_after
from jobstream.source.envelope import MalformedResponse, UnreadableAnswer, error_of
from jobstream.source.limiter import RateLimiter
from jobstream.source.paging import Page, parse_page
from jobstream.source.token import REFRESH_MARGIN, Token, parse_token
from jobstream.source.transport import OnRequest, Reply, Transport

logger = logging.getLogger(__name__)

T = TypeVar("T")

INVALID_TOKEN = "Invalid.Token"
INVALID_GRANT = "Invalid.Grant"
# Statuses that say "try again later" rather than "this request is wrong".
_TRANSIENT_4XX = frozenset({408})
# An error code is a short word ("Invalid.Grant"); the body a message quotes, an excerpt.
CODE_CHARS = 100
SNIPPET_CHARS = 200


class ApiRequestError(SourceError):
    """The API refused a request in a way retrying will not change (a 4xx, or an error object)."""

    def __init__(self, message: str, *, status: int, code: str, api_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.api_message = api_message


class _TokenRejected(JobstreamError):
    """The data call's answer says the token is no good (401 or Invalid.Token)."""


class BazhuayuClient:
    """One account on one Bazhuayu OpenAPI host. Safe to share between tasks of one event loop."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        request_timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_rate_limit_waits: int = 10,
        min_interval: float = 0.0,
        max_requests_per_second: float = 0.0,
        limiter: RateLimiter | None = None,
        refresh_margin: float = REFRESH_MARGIN,
        on_request: OnRequest | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if max_retries < 0 or max_rate_limit_waits < 0:
            raise ValueError("max_retries and max_rate_limit_waits must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        keep_secret(password)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_rate_limit_waits = max_rate_limit_waits
        self.refresh_margin = refresh_margin
        # The clock only decides token freshness; tests move it instead of sleeping.
        self._clock = clock
        self._rng = rng or random.Random()
        # One limiter for every call of this account: token and data, every task, every page
        # in flight. A 429 pauses all of them.
        self.limiter = limiter or RateLimiter(max_requests_per_second, min_interval)
        self._transport = Transport(
            self.base_url,
            request_timeout=request_timeout,
            limiter=self.limiter,
            on_request=on_request,
        )
        self._token: Token | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BazhuayuClient(base_url={self.base_url!r}, username={self.username!r})"

    async def __aenter__(self) -> "BazhuayuClient":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    async def fetch_page(self, task_id: str, offset: int, size: int) -> Page:
        """`GET /data/all` once (with retries). The caller follows `next_offset` until `is_last`."""
        return await self._call(
            "data",
            "GET",
            "/data/all",
            params={"taskId": task_id, "offset": str(offset), "size": str(size)},
            auth=True,
            parse=lambda body: parse_page(body, task_id, offset, size),
            context=f"task_id={task_id} offset={offset}",
        )

    # --- token (seed §15) -------------------------------------------------------------------

    async def _valid_token(self) -> Token:
        token = self._token
        if token is not None and not token.needs_renewal(self._clock(), self.refresh_margin):
            return token
        async with self._token_lock:
            # Another task may have renewed it while this one waited for the lock.
            token = self._token
            if token is not None and not token.needs_renewal(self._clock(), self.refresh_margin):
                return token
            self._token = await self._renew(token)
            return self._token

    async def _renew(self, old: Token | None) -> Token:
        if old is not None and old.refresh_token:
            try:
                return await self._grant(
                    {"grant_type": "refresh_token", "refresh_token": old.refresh_token}, "refresh"
                )
            except SourceError as exc:
                logger.info("token refresh failed (%s); asking with the password instead", exc)
        try:
            return await self._grant(
                {"grant_type": "password", "username": self.username, "password": self._password},
                "password",
            )
        except ApiRequestError as exc:
            if exc.code == INVALID_GRANT:
                raise AuthError(
                    f"the Bazhuayu API refused the credentials of user {self.username!r} "
                    f"(Invalid.Grant: {exc.api_message}); check API_USERNAME and API_PASSWORD"
                ) from None
            raise
        except SourceError as exc:
            # The token service is down but the old token still works: keep crawling with it.
            if old is not None and not old.is_expired(self._clock()):
                logger.warning("token renewal failed (%s); using the current token meanwhile", exc)
                return old
            raise

    async def _grant(self, body: dict[str, str], kind: str) -> Token:
        token = await self._call(
            "token",
            "POST",
            "/token",
            json_body=body,
            auth=False,
            parse=lambda reply: parse_token(reply, self._clock()),
            context=f"token ({kind} grant)",
        )
        keep_secret(token.access_token, token.refresh_token, rotating=True)
        return token

    def _drop(self, token: Token) -> None:
        # Only if no other task has replaced it meanwhile; keep its refresh token for renewal.
        if self._token is token:
            self._token = token.revoked()

    # --- requests and retries (seed §9) -----------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, str] | None = None,
        auth: bool,
        parse: Callable[[Any], T],
        context: str,
    ) -> T:
        """Send until `parse` accepts an answer. Three bounds, counted apart: transient failures
        (max_retries), 429 waits (max_rate_limit_waits) and one token renewal."""
        failures = throttles = 0
        renewed = False
        while True:
            token = await self._valid_token() if auth else None
            headers = {"Authorization": f"Bearer {token.access_token}"} if token else {}
            try:
                reply = await self._transport.send(
                    endpoint, method, path, params=params, json_body=json_body, headers=headers
                )
                if reply.status == 429:
                    throttles += 1
                    await self._wait_for_rate_limit(reply, throttles, context)
                    continue
                return parse(self._accepted(reply, token))
            except _TokenRejected:
                if renewed:
                    raise SourceError(
                        f"{context}: the API rejected a freshly issued token"
                    ) from None
                renewed = True
                assert token is not None
                self._drop(token)
                logger.warning("%s: token rejected; getting a new one and retrying once", context)
                continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                problem = scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            except MalformedResponse as exc:
                problem = scrub(str(exc))
            failures += 1
            if failures > self.max_retries:
                raise SourceError(f"{context}: {problem}; gave up after {failures} attempts")
            delay = full_jitter(failures, self.backoff_base, self.backoff_max, self._rng)
            logger.warning(
                "%s: %s; retrying in %.2fs (%d attempts left)",
                context,
                problem,
                delay,
                self.max_retries + 1 - failures,
            )
            await asyncio.sleep(delay)

    async def _wait_for_rate_limit(self, reply: Reply, throttles: int, context: str) -> None:
        # The API asking us to slow down is not a failure: it has its own, larger bound.
        if throttles > self.max_rate_limit_waits:
            raise SourceError(
                f"{context}: still rate limited (HTTP 429) after {self.max_rate_limit_waits} waits"
            )
        delay = retry_after(reply.retry_after)
        if delay is None:
            delay = full_jitter(throttles, self.backoff_base, self.backoff_max, self._rng)
        logger.warning(
            "%s: rate limited (HTTP 429); every request waits %.2fs (%d waits left)",
            context,
            delay,
            self.max_rate_limit_waits - throttles,
        )
        # Shared backoff: the limiter holds every request of this account, this one included
        # (its next attempt waits in `acquire`).
        self.limiter.pause(delay)

    def _accepted(self, reply: Reply, token: Token | None) -> Any:
        """The body of a reply worth parsing. Raises _TokenRejected, MalformedResponse for what
        is worth retrying, and ApiRequestError or UnreadableAnswer for answers that retrying
        will not change."""
        status = reply.status
        if status < 400 and reply.unreadable:
            raise UnreadableAnswer(
                reply.unreadable, reply.raw[:EXCERPT_BYTES].decode("utf-8", errors="replace")
            )
        error = _error_text(reply.body)
        if token is not None and (status == 401 or (error and error[0] == INVALID_TOKEN)):
            raise _TokenRejected
        if status >= 500 or status in _TRANSIENT_4XX or (status < 400 and not reply.is_json):
            if not reply.is_json:
                snippet = scrub(repr(reply.snippet), SNIPPET_CHARS)
                raise MalformedResponse(f"HTTP {status} with a non-JSON body {snippet}")
            detail = f" {error[0]}: {error[1]}" if error else ""
            raise MalformedResponse(f"HTTP {status}{detail}")
        if status >= 400 or error is not None:
            code, message = error or ("", scrub(reply.snippet, SNIPPET_CHARS))
            raise ApiRequestError(
                f"HTTP {status} {code or 'error'}: {message or 'no message'}",
                status=status,
                code=code,
                api_message=message,
            )
        return reply.body


def _error_text(body: Any) -> tuple[str, str] | None:
    """The API's error code and message as they may be kept and shown: the message may echo
    what was sent (the password, a token), whole, cut or escaped, and be of any size; the one
    scrub masks and clips both where they enter, before anything stores them."""
    error = error_of(body)
    if error is None:
        return None
    return scrub(error[0], CODE_CHARS), scrub(error[1])
