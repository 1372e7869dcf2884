"""A task's source from an offset to its end, as values in offset order: the pages the API
served, each row it cannot serve (narrowed down to that one row), and a source reset.

Pages are requested ahead (`ReadAhead`). An answer whose content no parser can take is asked
for again in halves, one request at a time, down to the one row that holds it; that row becomes
an `Unreadable` and the crawl goes on after it at full size. A first answer with no rows whose
total is below the offset asked for means the source's data was cleared and collected again: a
`SourceReset`, after which the pages start again from offset 0.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from jobstream.pipeline.readahead import ReadAhead
from jobstream.source import Page, UnreadableAnswer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """A page as the API served it, and when (the 7-day rule's "now" for its rows)."""

    page: Page
    fetched_at: str

    @property
    def is_last(self) -> bool:
        return self.page.is_last


@dataclass(frozen=True)
class Unreadable:
    """One source row whose JSON no parser takes: `excerpt` is the start of the answer."""

    offset: int
    why: str
    excerpt: str
    fetched_at: str
    is_last = False


@dataclass(frozen=True)
class SourceReset:
    """The API holds fewer rows (`page.total`) than the offset asked for (`page.offset`)."""

    page: Page
    is_last = False


Fetch = Fetched | Unreadable | SourceReset


async def pages_from(
    reader: ReadAhead, task_id: str, offset: int, batch_size: int, now: Callable[[], str]
) -> AsyncGenerator[Fetch, None]:
    """What the source holds from `offset` on, ending with the page that is its last. What a
    request raises (but an unreadable answer) is raised here."""
    reader.start(offset, batch_size)
    first = True
    while True:
        at, size = reader.offset, reader.size
        fetched_at = now()
        try:
            page = await reader.take()
        except UnreadableAnswer as exc:
            if size > 1:
                size = max(1, size // 2)
                logger.warning(
                    "task_id=%s offset=%d %s; asking for %d rows to find the row",
                    task_id, at, exc, size,
                )  # fmt: skip
                reader.start(at, size, ahead=False)
                continue
            first = False
            reader.start(at + 1, batch_size)
            yield Unreadable(
                at,
                f"the API's answer for this row cannot be parsed: {exc}",
                exc.excerpt,
                fetched_at,
            )
            continue
        if first and page.offset > 0 and page.total < page.offset and not page.rows:
            first = False
            reader.start(0, batch_size)
            yield SourceReset(page)
            continue
        first = False
        if size != batch_size and not page.is_last:
            reader.start(page.next_offset, batch_size)  # the unreadable row was narrowed down
        yield Fetched(page, fetched_at)
        if page.is_last:
            return
