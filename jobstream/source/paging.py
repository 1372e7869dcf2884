"""One page of `GET /data/all`, and where the next one starts.

The API's `offset` is an opaque cursor that is usually the request's offset plus the rows
returned (bazhuayu-api.md). It is checked, not trusted; each way it can lie has one recovery,
named in `anomalies` so the crawl can count and show it:

- it jumps ahead (rows deleted in the Bazhuayu console): follow it; the offsets in between
  are counted as skipped by the source;
- it moves fewer offsets than rows were returned (a page longer than asked): keep the rows the
  cursor covers; the rest come again on the next page;
- it goes backwards or stays put while rows came back: ignore it and continue after the rows;
- it stays put on an empty page although `restTotal` says more: end this run; the next one
  asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from jobstream.source.envelope import MalformedResponse, as_int, payload


@dataclass(frozen=True)
class Page:
    """Rows from `offset` (the request's) up to `next_offset` (what to ask for next).

    A row is the API's own JSON bytes (`msgspec.Raw`) when its answer was strict JSON in valid
    UTF-8, else the value a lenient parse made of it (`jobstream.source.body`)."""

    task_id: str
    offset: int
    next_offset: int
    total: int
    rest_total: int
    rows: list[Any]
    anomalies: tuple[str, ...] = ()

    @property
    def is_last(self) -> bool:
        """bazhuayu-api.md: stop when restTotal is 0 or the page is empty."""
        return self.rest_total == 0 or not self.rows

    def values(self) -> list[Any]:
        """The rows as JSON values (for whoever wants them parsed; the crawl does not)."""
        return [_value(row) for row in self.rows]

    @property
    def skipped(self) -> int:
        """Offsets the cursor jumped over: rows the source no longer serves."""
        return max(0, self.next_offset - self.offset - len(self.rows))


_DECODER = msgspec.json.Decoder()


def _value(row: Any) -> Any:
    return _DECODER.decode(row) if type(row) is msgspec.Raw else row


def _rows(data: dict[str, Any]) -> list[Any]:
    # Public clients read `data.data`; some documentation names the list `data.dataList`.
    for key in ("data", "dataList"):
        rows = data.get(key)
        if rows is None:
            continue
        # A row that is not an object is the pipeline's to reject and keep, not a reason
        # to refetch the page forever.
        if not isinstance(rows, list):
            raise MalformedResponse(f"`{key}` must be a list")
        return rows
    raise MalformedResponse("the page has neither `data` nor `dataList`")


def parse_page(body: Any, task_id: str, offset: int, size: int) -> Page:
    """Read a data answer to a request for `size` rows at `offset`. Raises MalformedResponse
    for a wrong shape (worth asking again); a cursor that lies is recovered, not raised."""
    data = payload(body)
    rows = _rows(data)
    total = as_int(data, "total")
    # Without `offset` the next request starts after the rows returned, never offset + size:
    # the last page is short.
    after_rows = offset + len(rows)
    cursor = as_int(data, "offset") if data.get("offset") is not None else after_rows
    rest_total = (
        as_int(data, "restTotal") if data.get("restTotal") is not None else max(0, total - cursor)
    )
    next_offset, anomalies = check_cursor(offset, size, len(rows), cursor, rest_total)
    if next_offset < after_rows:
        rows = rows[: next_offset - offset]
    return Page(task_id, offset, next_offset, total, rest_total, rows, anomalies)


def check_cursor(
    offset: int, size: int, returned: int, cursor: int, rest_total: int
) -> tuple[int, tuple[str, ...]]:
    """The offset to continue from after `returned` rows at `offset`, and what was odd."""
    after_rows = offset + returned
    notes: list[str] = []
    if returned > size:
        notes.append(f"long page: {returned} rows returned for size {size} at offset {offset}")
    if cursor > after_rows:
        notes.append(
            f"cursor jump: {returned} rows at offset {offset} but the next offset is {cursor}; "
            f"{cursor - after_rows} offsets skipped by the source"
        )
        return cursor, tuple(notes)
    if cursor <= offset and returned:
        notes.append(
            f"cursor {'went back' if cursor < offset else 'stood still'}: {returned} rows at "
            f"offset {offset} but the next offset is {cursor}; continuing at {after_rows}"
        )
        return after_rows, tuple(notes)
    if cursor < offset:
        notes.append(f"cursor went back from {offset} to {cursor} on an empty page")
        return offset, tuple(notes)
    if not returned and rest_total > 0:
        notes.append(
            f"empty page at offset {offset} although restTotal is {rest_total}; "
            "asking again on the next run"
        )
    elif cursor < after_rows:
        notes.append(
            f"cursor covers {cursor - offset} of the {returned} rows at offset {offset}; "
            "the others are read again on the next page"
        )
    return cursor, tuple(notes)
