"""Fetch-ahead decisions: which guesses hold, when pages asked ahead are dropped, and that pages
come out in offset order whatever order they arrive in."""

from __future__ import annotations

import asyncio

import pytest

from jobstream.pipeline.readahead import ReadAhead, guess_holds, pages_left
from jobstream.source import Page


def page(offset: int, rows: int, next_offset: int | None = None, total: int = 1000) -> Page:
    cursor = offset + rows if next_offset is None else next_offset
    return Page("t", offset, cursor, total, max(0, total - cursor), [{}] * rows)


def test_guess_holds_for_a_full_page_whose_cursor_is_offset_plus_size():
    assert guess_holds(page(0, 100), 100)


@pytest.mark.parametrize(
    "p",
    [
        page(0, 100, next_offset=130),  # a jump: rows deleted upstream
        page(0, 60),  # a short page
        page(900, 100, total=1000),  # the last page: restTotal 0
        page(0, 0, next_offset=0),  # empty
    ],
)
def test_guess_fails_for_jumps_short_last_and_empty_pages(p):
    assert not guess_holds(p, 100)


def test_pages_left_counts_the_requests_the_rest_needs():
    assert pages_left(page(0, 100, total=1000), 100) == 9
    assert pages_left(page(0, 100, total=1050), 100) == 10
    assert pages_left(page(900, 100, total=1000), 100) == 0


class FakeApi:
    """Pages of a source of `total` rows; `jump_at` makes the cursor skip `skip` offsets there.
    Answers arrive in the order `release` lets them."""

    def __init__(self, total: int, jump_at: int = -1, skip: int = 0, fail_at: int = -1) -> None:
        self.total, self.jump_at, self.skip, self.fail_at = total, jump_at, skip, fail_at
        self.asked: list[int] = []
        self.delays: dict[int, float] = {}

    async def fetch(self, offset: int, size: int) -> Page:
        self.asked.append(offset)
        await asyncio.sleep(self.delays.get(offset, 0.0))
        if offset == self.fail_at:
            raise RuntimeError(f"failed at {offset}")
        rows = max(0, min(size, self.total - offset))
        cursor = offset + rows + (self.skip if offset == self.jump_at else 0)
        return Page("t", offset, cursor, self.total, max(0, self.total - cursor), [{}] * rows)


async def crawl(reader: ReadAhead, offset: int = 0, size: int = 100) -> list[Page]:
    reader.start(offset, size)
    pages = []
    while True:
        p = await reader.take()
        pages.append(p)
        if p.is_last:
            return pages


async def test_readahead_asks_one_page_first_then_fills_the_window():
    api = FakeApi(total=1000)
    reader = ReadAhead(api.fetch, depth=4)
    reader.start(0, 100)
    await reader.take()
    await asyncio.sleep(0)  # the requests start
    assert api.asked == [0, 100, 200, 300, 400]  # the first alone, then four ahead


async def test_readahead_returns_pages_in_offset_order_when_answers_arrive_out_of_order():
    api = FakeApi(total=1000)
    api.delays = {100: 0.03, 200: 0.02, 300: 0.01}
    pages = await crawl(ReadAhead(api.fetch, depth=8))
    assert [p.offset for p in pages] == list(range(0, 1000, 100))
    assert len(api.asked) == 10  # never beyond what restTotal said was left


async def test_readahead_cursor_jump_drops_the_guesses_and_follows_the_cursor():
    api = FakeApi(total=1000, jump_at=200, skip=30)
    reader = ReadAhead(api.fetch, depth=4)
    pages = await crawl(reader)
    assert [p.offset for p in pages] == [0, 100, 200, 330, 430, 530, 630, 730, 830, 930]
    assert reader.misses == 1 and reader.dropped >= 1
    # The pages asked at the guessed offsets 300.. were never handed out.
    assert 300 in api.asked


async def test_readahead_failure_is_raised_in_order_and_stops_the_window():
    api = FakeApi(total=1000, fail_at=300)
    reader = ReadAhead(api.fetch, depth=4)
    reader.start(0, 100)
    got = [(await reader.take()).offset for _ in range(3)]
    with pytest.raises(RuntimeError, match="failed at 300"):
        await reader.take()
    assert got == [0, 100, 200]
    assert reader.dropped >= 1  # the requests behind the failure were dropped
    await asyncio.sleep(0.01)
    assert not reader.ready()


async def test_readahead_one_at_a_time_never_asks_ahead():
    api = FakeApi(total=1000)
    reader = ReadAhead(api.fetch, depth=8)
    reader.start(0, 50, ahead=False)
    await reader.take()
    await reader.take()
    assert api.asked == [0, 50]


async def test_readahead_short_last_page_ends_without_extra_requests():
    api = FakeApi(total=250)
    reader = ReadAhead(api.fetch, depth=8)
    pages = await crawl(reader)
    assert [len(p.rows) for p in pages] == [100, 100, 50]
    assert api.asked == [0, 100, 200] and reader.misses == 0
