"""One page of `GET /data/all` and where the next one starts."""

import logging
from dataclasses import dataclass
from typing import Any

from jobstream.errors import SourceError
from jobstream.source.envelope import MalformedResponse, as_int, payload

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """Rows from `offset` (the request's) up to `next_offset` (what to ask for next)."""

    task_id: str
    offset: int
    next_offset: int
    total: int
    rest_total: int
    rows: list[dict[str, Any]]

    @property
    def is_last(self) -> bool:
        """bazhuayu-api.md: stop when restTotal is 0 or the page is empty."""
        return self.rest_total == 0 or not self.rows


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
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


def parse_page(body: Any, task_id: str, offset: int) -> Page:
    """Read a data answer. Raises MalformedResponse for a wrong shape (worth retrying) and
    SourceError for a cursor that does not move forward (retrying would loop forever)."""
    data = payload(body)
    rows = _rows(data)
    total = as_int(data, "total")
    # Without `offset` the next request starts after the rows returned, never offset + size:
    # the last page is short.
    next_offset = as_int(data, "offset") if data.get("offset") is not None else offset + len(rows)
    rest_total = (
        as_int(data, "restTotal")
        if data.get("restTotal") is not None
        else max(0, total - next_offset)
    )
    if next_offset < offset:
        raise SourceError(
            f"task {task_id}: the API moved the cursor back from {offset} to {next_offset}"
        )
    if next_offset == offset and rest_total > 0:
        raise SourceError(
            f"task {task_id}: the cursor did not advance from offset {offset} "
            f"although restTotal is {rest_total}"
        )
    if next_offset != offset + len(rows):
        logger.warning(
            "task_id=%s offset=%d: the API's next offset %d is not offset + %d rows",
            task_id,
            offset,
            next_offset,
            len(rows),
        )
    return Page(task_id, offset, next_offset, total, rest_total, rows)
