"""One aiohttp session to the API: sends a request when the rate limiter allows, times it, and
reads the body, up to MAX_ANSWER_BYTES: whatever the API sends, the worker holds a bounded
amount of it."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from jobstream.source.body import NOT_JSON, decode_body, decode_page_body
from jobstream.source.limiter import RateLimiter

logger = logging.getLogger(__name__)

OnRequest = Callable[[str, int | None, float], None]

# Far above any real page: 1000 rows with 3,000-character Chinese descriptions, escaped as the
# API escapes them, are about 17 MB. A larger answer is not parsed; a successful one is
# reported unreadable, so the crawl asks for fewer rows until it finds the row that is too big.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# What is kept of an answer that is too large: enough for an excerpt.
TOO_LARGE_KEPT = 64 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # the parsed JSON, or NOT_JSON
    raw: bytes = field(repr=False)
    retry_after: str | None
    # Why a JSON body's content cannot be parsed (asking again returns the same bytes).
    unreadable: str | None = None

    @property
    def is_json(self) -> bool:
        return self.body is not NOT_JSON

    @property
    def snippet(self) -> str:
        """The body's start, for messages about bodies that are not JSON."""
        return self.raw[:120].decode("utf-8", errors="replace")


class Transport:
    def __init__(
        self,
        base_url: str,
        *,
        request_timeout: float,
        limiter: RateLimiter | None = None,
        on_request: OnRequest | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.request_timeout = request_timeout
        self.limiter = limiter or RateLimiter()
        self._on_request = on_request
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One HTTP exchange. Raises TimeoutError or aiohttp.ClientError when it fails."""
        await self.limiter.acquire()
        if self._session is None or self._session.closed:
            # Created on first use so that it belongs to the loop that uses it.
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        started = time.perf_counter()
        status: int | None = None
        try:
            async with self._session.request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                headers=headers,
                timeout=timeout,
            ) as response:
                raw, whole = await read_bounded(response, MAX_ANSWER_BYTES)
                status = response.status
                retry_after = response.headers.get("Retry-After")
        finally:
            self._report(endpoint, status, time.perf_counter() - started)
        if not whole:
            why = f"the answer is larger than {MAX_ANSWER_BYTES} bytes"
            return Reply(status, NOT_JSON, raw[:TOO_LARGE_KEPT], retry_after, why)
        # A data page's rows stay the API's bytes (see `jobstream.source.body`).
        decode = decode_page_body if endpoint == "data" else decode_body
        body, unreadable = decode(raw)
        return Reply(status, body, raw, retry_after, unreadable)

    def _report(self, endpoint: str, status: int | None, seconds: float) -> None:
        if self._on_request is None:
            return
        try:
            self._on_request(endpoint, status, seconds)
        except Exception:
            # Metrics must never break a crawl.
            logger.exception("on_request callback failed for %s", endpoint)


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """The body, and True; or, past `limit` bytes (announced or sent), its first bytes and
    False: the rest is not read."""
    if response.content_length is not None and response.content_length > limit:
        return await response.content.read(TOO_LARGE_KEPT), False
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:TOO_LARGE_KEPT], False
    return b"".join(chunks), True
