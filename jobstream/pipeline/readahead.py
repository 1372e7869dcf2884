"""Pages requested ahead of the one being sent, concurrently, and handed out in offset order.

The API's next offset is usually `offset + size` (bazhuayu-api.md), so the pages after the
current one can be asked for before it arrives. Nothing guarantees it: each page's returned
cursor is checked against the offset the next request guessed, and when they differ the guesses
are dropped and the crawl follows the cursor (counted as a miss). A page that ends the source
(short, empty or `restTotal` 0), an error, or a restart drops the guesses too; nothing a dropped
request returned is ever used.

Requests beyond what the API said is left (`restTotal`) are not made, so a run that finds
nothing new costs one call, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from jobstream.source import Page

Fetch = Callable[[int, int], Coroutine[Any, Any, Page]]


def guess_holds(page: Page, size: int) -> bool:
    """True when the request after `page` (asked for `size` rows) was rightly guessed to start
    at `page.offset + size`, and more pages follow."""
    return not page.is_last and len(page.rows) == size and page.next_offset == page.offset + size


def pages_left(page: Page, size: int) -> int:
    """How many more requests of `size` rows the rest of the source needs after `page`."""
    if page.is_last:
        return 0
    return -(-page.rest_total // size)


class ReadAhead:
    """Up to `depth` requests of one task in flight; `take()` returns their pages in order."""

    def __init__(self, fetch: Fetch, depth: int) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self._fetch = fetch
        self.depth = depth
        self._pending: deque[tuple[int, asyncio.Task[Page]]] = deque()
        self._next = 0
        self._size = 1
        self._ahead = False
        # Requests that may still be made: unknown (None) until a page says what is left.
        self._budget: int | None = None
        self.misses = 0  # times a guess was wrong and the pages asked ahead were dropped
        self.dropped = 0  # requests dropped unanswered or unused

    def start(self, offset: int, size: int, *, ahead: bool = True) -> None:
        """From now on, pages from `offset` of `size` rows; ahead=False asks one at a time."""
        self.cancel()
        self._next, self._size, self._ahead, self._budget = offset, size, ahead, None

    @property
    def offset(self) -> int:
        """The offset of the page `take()` returns next."""
        return self._pending[0][0] if self._pending else self._next

    @property
    def size(self) -> int:
        return self._size

    def ready(self) -> bool:
        """True when the next page has arrived (take() would not wait)."""
        return bool(self._pending) and self._pending[0][1].done()

    async def take(self) -> Page:
        """The next page in offset order. What the request raised is raised here, and the
        requests behind it are dropped."""
        self._fill()
        _, request = self._pending.popleft()
        try:
            page = await request
        except BaseException:
            self.cancel()
            raise
        if guess_holds(page, self._size):
            self._budget = pages_left(page, self._size) - len(self._pending)
            if self._ahead:
                self._fill()
        else:
            if self._pending and not page.is_last:
                self.misses += 1
            self.cancel()
            self._next, self._budget = page.next_offset, pages_left(page, self._size)
        return page

    def cancel(self) -> None:
        """Drop every request in flight."""
        while self._pending:
            _, request = self._pending.pop()
            request.cancel()
            self.dropped += 1
            if request.done() and not request.cancelled():
                # Retrieve the outcome so a failed guess is not reported as never retrieved.
                with contextlib.suppress(BaseException):
                    request.result()

    def _fill(self) -> None:
        depth = self.depth if self._ahead else 1
        while len(self._pending) < depth:
            if self._pending and (self._budget is None or self._budget <= 0):
                return  # nothing known to be left beyond the requests in flight
            self._pending.append((self._next, asyncio.create_task(self._request(self._next))))
            self._next += self._size
            if self._budget is not None:
                self._budget -= 1

    def _request(self, offset: int) -> Coroutine[Any, Any, Page]:
        return self._fetch(offset, self._size)
