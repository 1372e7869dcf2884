"""The API's cursor is checked, not trusted: each way it can lie has one recovery."""

from __future__ import annotations

import pytest

from jobstream.source import MalformedResponse, parse_page


def answer(offset: int, rows: int, total: int = 1000, rest: int | None = None) -> dict:
    data = {"total": total, "offset": offset, "data": [{"i": i} for i in range(rows)]}
    if rest is not None:
        data["restTotal"] = rest
    return {"data": data}


def test_paging_honest_cursor_has_no_anomaly():
    page = parse_page(answer(200, 100, rest=800), "t", 100, 100)
    assert (page.next_offset, page.skipped, page.anomalies, page.is_last) == (200, 0, (), False)


def test_paging_cursor_jump_is_followed_and_counts_skipped_offsets():
    page = parse_page(answer(250, 100, rest=750), "t", 100, 100)
    assert page.next_offset == 250 and page.skipped == 50 and len(page.rows) == 100
    assert page.anomalies and "cursor jump" in page.anomalies[0]


def test_paging_long_page_with_consistent_cursor_keeps_every_row():
    page = parse_page(answer(220, 120, rest=780), "t", 100, 100)
    assert (page.next_offset, len(page.rows), page.skipped) == (220, 120, 0)
    assert "long page" in page.anomalies[0]


def test_paging_long_page_with_cursor_at_size_keeps_only_covered_rows():
    page = parse_page(answer(200, 120, rest=800), "t", 100, 100)
    assert (page.next_offset, len(page.rows)) == (200, 100)
    assert page.rows[-1] == {"i": 99}
    assert any("read again on the next page" in note for note in page.anomalies)


@pytest.mark.parametrize("cursor", [50, 100])
def test_paging_cursor_back_or_still_with_rows_continues_after_rows(cursor):
    page = parse_page(answer(cursor, 10, rest=400), "t", 100, 10)
    assert (page.next_offset, len(page.rows), page.skipped) == (110, 10, 0)
    assert "continuing at 110" in page.anomalies[0]


def test_paging_empty_page_with_rest_total_ends_the_run_without_moving():
    page = parse_page(answer(100, 0, rest=400), "t", 100, 10)
    assert page.next_offset == 100 and page.is_last
    assert "restTotal is 400" in page.anomalies[0]


def test_paging_empty_page_with_cursor_behind_stays_at_request_offset():
    page = parse_page(answer(40, 0, rest=0), "t", 100, 10)
    assert page.next_offset == 100 and page.is_last and page.anomalies


def test_paging_missing_offset_counts_rows_not_size():
    body = {"data": {"total": 250, "restTotal": 0, "data": [{}] * 50}}
    page = parse_page(body, "t", 200, 100)
    assert (page.next_offset, page.anomalies) == (250, ())


def test_paging_rows_not_a_list_is_malformed():
    with pytest.raises(MalformedResponse):
        parse_page({"data": {"total": 1, "data": {"a": 1}}}, "t", 0, 10)
