"""BazhuayuClient.fetch_page against the simulator: following the cursor, variants, bad params."""

import pytest

from jobstream.errors import SourceError
from jobstream.source import BazhuayuClient, parse_page


async def test_client_full_crawl_returns_every_row_once_in_order(sim, client, crawl, task_id):
    rows, pages = await crawl(client, task_id, size=100)

    assert len(rows) == 257
    assert rows == [sim.state.row(task_id, i) for i in range(257)]
    urls = [row["ACE760"] for row in rows]
    assert len(set(urls)) == len(urls)
    assert [p.offset for p in pages] == [0, 100, 200]
    assert pages[-1].rest_total == 0 and pages[-1].next_offset == 257
    assert sim.state.stats.requests["data"] == 3


async def test_client_short_last_page_next_offset_counts_rows(make_sim, make_client, task_id):
    sim = await make_sim(total=250)
    client = make_client(sim)

    page = await client.fetch_page(task_id, 200, 100)

    assert len(page.rows) == 50
    assert (page.offset, page.next_offset, page.total, page.rest_total) == (200, 250, 250, 0)
    assert page.is_last


async def test_client_grown_total_resume_from_stored_offset_gets_only_new_rows(
    sim, client, crawl, task_id
):
    _, pages = await crawl(client, task_id)
    stored_offset = pages[-1].next_offset
    again = await client.fetch_page(task_id, stored_offset, 100)
    assert again.rows == [] and again.is_last

    sim.state.grow(40)
    new_rows, new_pages = await crawl(client, task_id, offset=stored_offset)

    assert new_rows == [sim.state.row(task_id, i) for i in range(257, 297)]
    assert new_pages[-1].next_offset == 297 and new_pages[-1].total == 297


async def test_client_datalist_variant_reads_rows(make_sim, make_client, crawl, task_id):
    sim = await make_sim(rows_key="dataList", total=120)
    rows, _ = await crawl(make_client(sim), task_id, size=50)
    assert rows == [sim.state.row(task_id, i) for i in range(120)]


async def test_client_missing_offset_advances_by_rows_returned(
    make_sim, make_client, crawl, task_id
):
    sim = await make_sim(include_offset=False, total=130)
    rows, pages = await crawl(make_client(sim), task_id, size=50)
    assert rows == [sim.state.row(task_id, i) for i in range(130)]
    # Never offset + size: the last page holds 30 rows, so the cursor ends at 130, not 150.
    assert [p.next_offset for p in pages] == [50, 100, 130]


async def test_client_empty_task_first_page_is_last(make_sim, make_client, task_id):
    sim = await make_sim(total=0)
    page = await make_client(sim).fetch_page(task_id, 0, 100)
    assert page.rows == [] and page.is_last and page.total == 0


@pytest.mark.parametrize("size", [0, 1001])
async def test_client_size_out_of_range_raises_source_error_without_retry(
    sim, client: BazhuayuClient, task_id, size
):
    with pytest.raises(SourceError, match="size must be between 1 and 1000"):
        await client.fetch_page(task_id, 0, size)
    assert sim.state.stats.requests["data"] == 1


async def test_client_unknown_task_raises_source_error_with_api_message(sim, client):
    with pytest.raises(SourceError, match=r"Task\.NotFound: task no-such-task does not exist"):
        await client.fetch_page("no-such-task", 0, 10)
    assert sim.state.stats.requests["data"] == 1


def test_client_numeric_strings_in_page_are_accepted():
    body = {"data": {"total": "3", "offset": "3", "restTotal": "0", "data": [{}, {}, {}]}}
    page = parse_page(body, "t", 0, 10)
    assert (page.total, page.next_offset, page.rest_total) == (3, 3, 0)
