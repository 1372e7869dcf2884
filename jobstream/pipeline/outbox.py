"""A task's fetched rows on their way to job_raw, gathered into events, and the events sent but
not yet applied.

Consecutive pages are joined into one event while its JSON stays under RAW_EVENT_FACTOR times
`kafka.max_message_bytes`: a zstd frame of scraped JSON is about a tenth of it, and fewer,
larger events cost the broker and the page agent less per row. Each event is encoded and framed
once, when it is taken for sending; only when its frame is still too large (text that does not
compress) is it split in halves until each part fits, framed or as plain JSON, whichever is
smaller. A row too large for a message on its own travels as an excerpt with the reason, and
the page agent rejects it. A cursor jump ends the event that holds it: the offsets the source
skipped stay at the end of an event (its `next_offset` beyond its rows).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

from jobstream.frames import frame
from jobstream.limits import MESSAGE_HEADROOM
from jobstream.pipeline.pages import encode_row, excerpt
from jobstream.records import RawPage
from jobstream.source import Page

# How many times kafka.max_message_bytes of JSON one job_raw event may hold.
RAW_EVENT_FACTOR = 2

_ENCODER = msgspec.json.Encoder()
# Offsets as large as any event can carry, so a header measured with them bounds every header.
_LARGEST_OFFSET = 2**53
# ISO 8601 with microseconds and an offset is 32 characters.
_FETCHED_AT_BOUND = "x" * 40


@dataclass
class _Event:
    """The event being gathered: its offsets, its rows and an upper bound of its JSON size."""

    offset: int
    next_offset: int
    total: int
    fetched_at: str
    size: int
    rows: list[msgspec.Raw] = field(default_factory=list)
    unreadable: dict[int, str] = field(default_factory=dict)

    @property
    def jumped(self) -> bool:
        return self.next_offset > self.offset + len(self.rows)


class Outbox:
    """One crawl run's rows of one task, from fetched to sent; then what awaits applying."""

    def __init__(
        self, task_id: str, partition: int, *, source: str, demo: bool, max_message_bytes: int
    ) -> None:
        self.task_id = task_id
        self.partition = partition
        self.source = source
        self.demo = demo
        self.message_limit = max_message_bytes - MESSAGE_HEADROOM
        self._json_limit = RAW_EVENT_FACTOR * max_message_bytes - MESSAGE_HEADROOM
        self._header = len(
            _ENCODER.encode(
                RawPage(
                    task_id=task_id,
                    source=source,
                    offset=_LARGEST_OFFSET,
                    next_offset=_LARGEST_OFFSET,
                    total=_LARGEST_OFFSET,
                    fetched_at=_FETCHED_AT_BOUND,
                    demo=demo,
                )
            )
        )
        self._gathering: _Event | None = None
        self._sealed: list[_Event] = []
        # The next_offset of each event sent and not yet known to be applied, in order.
        self.unapplied: deque[int] = deque()

    def add_page(self, page: Page, fetched_at: str) -> int:
        """Keep a page's rows (pages come in offset order); the number of rows."""
        for index, row in enumerate(page.rows):
            # The API's own bytes when its answer was strict JSON (jobstream.source.body).
            encoded, problem = (row, None) if type(row) is msgspec.Raw else encode_row(row)
            if problem is None and self._header + len(encoded) + 1 > self.message_limit:
                problem = (
                    f"the row is {len(encoded)} bytes as JSON, too large for one Kafka message "
                    f"(kafka.max_message_bytes is {self.message_limit + MESSAGE_HEADROOM})"
                )
                encoded = excerpt(bytes(encoded))
            self._add_row(page.offset + index, encoded, problem, page.total, fetched_at)
        self._end_at(page.offset + len(page.rows), page.next_offset, page.total, fetched_at)
        return len(page.rows)

    def add_unreadable(
        self, offset: int, total: int, *, why: str, excerpt_text: str, fetched_at: str
    ) -> int:
        """Keep one source row the API cannot serve as JSON, as an excerpt the agent rejects."""
        self._add_row(offset, excerpt(excerpt_text), why, total, fetched_at)
        self._end_at(offset + 1, offset + 1, total, fetched_at)
        return 1

    def full(self) -> bool:
        """True once an event is complete: what is kept is worth sending now."""
        return bool(self._sealed)

    def take(self) -> list[tuple[RawPage, bytes]]:
        """Every event kept so far, each as job_raw takes it; the outbox emptied."""
        self._seal()
        events, self._sealed = self._sealed, []
        return [framed for event in events for framed in self._fitted(self._record(event))]

    def _add_row(
        self,
        offset: int,
        encoded: bytes | msgspec.Raw,
        problem: str | None,
        total: int,
        fetched_at: str,
    ) -> None:
        # A note costs its text (JSON-escaped, at most 3 bytes a byte) plus its index.
        cost = len(encoded) + 1 + (len(problem) * 3 + 16 if problem is not None else 0)
        event = self._gathering
        if event is not None and (
            event.next_offset != offset or event.jumped or event.size + cost > self._json_limit
        ):
            self._seal()
            event = None
        if event is None:
            event = self._gathering = _Event(offset, offset, total, fetched_at, self._header)
        if problem is not None:
            event.unreadable[len(event.rows)] = problem
        event.rows.append(encoded if type(encoded) is msgspec.Raw else msgspec.Raw(encoded))
        event.size += cost
        event.next_offset = offset + 1
        event.total = total

    def _end_at(self, end_of_rows: int, next_offset: int, total: int, fetched_at: str) -> None:
        """A page whose rows end at `end_of_rows` continues at `next_offset`: the API's cursor,
        beyond its rows when it jumped."""
        event = self._gathering
        if event is None or event.next_offset != end_of_rows:
            self._seal()
            # An empty page: an event with no rows still moves the offset when the cursor did.
            event = self._gathering = _Event(
                end_of_rows, end_of_rows, total, fetched_at, self._header
            )
        event.next_offset = max(event.next_offset, next_offset)
        event.total = total
        if event.jumped:
            self._seal()

    def _seal(self) -> None:
        if self._gathering is not None:
            self._sealed.append(self._gathering)
            self._gathering = None

    def _record(self, event: _Event) -> RawPage:
        return RawPage(
            task_id=self.task_id,
            source=self.source,
            offset=event.offset,
            next_offset=event.next_offset,
            total=event.total,
            fetched_at=event.fetched_at,
            demo=self.demo,
            rows=event.rows,
            unreadable=event.unreadable,
        )

    def _fitted(self, event: RawPage) -> Iterator[tuple[RawPage, bytes]]:
        """The event, encoded once, framed when that is smaller; split in halves while it is
        larger than a message (rows too large alone were cut to excerpts: a row always fits)."""
        data = _ENCODER.encode(event)
        value = frame(data)
        if len(value) > len(data):
            value = data
        if len(value) <= self.message_limit or len(event.rows) <= 1:
            yield event, value
            return
        half = len(event.rows) // 2
        middle = event.offset + half
        yield from self._fitted(
            msgspec.structs.replace(
                event,
                next_offset=middle,
                rows=event.rows[:half],
                unreadable={i: why for i, why in event.unreadable.items() if i < half},
            )
        )
        yield from self._fitted(
            msgspec.structs.replace(
                event,
                offset=middle,
                rows=event.rows[half:],
                unreadable={i - half: why for i, why in event.unreadable.items() if i >= half},
            )
        )
