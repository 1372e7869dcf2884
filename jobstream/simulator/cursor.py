"""A cursor that lies: anomalies armed from outside, and the page plan each one produces.

bazhuayu-api.md: the returned `offset` is an opaque cursor that is usually the request's offset
plus the rows returned; deleted rows or data collected again make it jump, and `total` can
shrink. An armed anomaly fires on the data request for its task whose `offset` parameter equals
`at_offset`, `times` times, then disarms.
"""

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["jump", "long_page", "backwards", "empty"]
KINDS: tuple[Kind, ...] = ("jump", "long_page", "backwards", "empty")


@dataclass
class CursorFault:
    """One armed anomaly.

    jump: rows served normally, the cursor skips `skip` rows past them (rows deleted upstream).
    long_page: `extra` rows beyond `size`; the cursor counts them (`cursor="rows"`) or only
    `size` (`cursor="size"`, disagreeing with the rows).
    backwards: rows served normally, the cursor is `back` below the request's offset.
    empty: no rows, the cursor stays, and `restTotal` still says more are coming.
    """

    kind: Kind
    task_id: str
    at_offset: int
    times: int = 1
    skip: int = 0
    extra: int = 0
    cursor: Literal["rows", "size"] = "rows"
    back: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.cursor not in ("rows", "size"):
            raise ValueError(f"cursor must be 'rows' or 'size', got {self.cursor!r}")
        for name in ("at_offset", "skip", "extra", "back"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 1:
            raise ValueError(f"times must be an integer >= 1, got {self.times!r}")

    def to_json(self) -> dict[str, Any]:
        shown = {"kind": self.kind, "taskId": self.task_id, "at_offset": self.at_offset}
        shown["times"] = self.times
        params = {"jump": ("skip",), "long_page": ("extra", "cursor"), "backwards": ("back",)}
        fields = asdict(self)
        return shown | {name: fields[name] for name in params.get(self.kind, ())}


@dataclass(frozen=True)
class PagePlan:
    """Which rows a data answer carries and the cursor and `restTotal` it states."""

    first_row: int
    row_count: int
    next_offset: int
    rest_total: int


def plan_page(offset: int, size: int, total: int, fault: CursorFault | None = None) -> PagePlan:
    """The honest page for (offset, size), or the lie `fault` tells instead."""
    served = max(0, min(size, total - offset))
    if fault is None:
        return _plan(offset, served, offset + served, total)
    if fault.kind == "jump":
        return _plan(offset, served, offset + served + fault.skip, total)
    if fault.kind == "long_page":
        long = max(0, min(size + fault.extra, total - offset))
        cursor = offset + (long if fault.cursor == "rows" else min(size, long))
        return _plan(offset, long, cursor, total)
    if fault.kind == "backwards":
        return _plan(offset, served, max(0, offset - fault.back), total)
    # empty: the stall case, a page with nothing in it that says more is coming.
    return PagePlan(offset, 0, offset, max(1, total - offset))


def _plan(offset: int, count: int, cursor: int, total: int) -> PagePlan:
    return PagePlan(offset, count, cursor, max(0, total - cursor))


class CursorFaults:
    """The armed anomalies, in the order they were armed."""

    def __init__(self) -> None:
        self._armed: deque[CursorFault] = deque()

    def arm(self, fault: CursorFault) -> None:
        self._armed.append(fault)

    def clear(self) -> None:
        self._armed.clear()

    def take(self, task_id: str, offset: int) -> CursorFault | None:
        """The first anomaly armed for this request, one firing spent (disarmed at zero)."""
        for i, fault in enumerate(self._armed):
            if fault.task_id == task_id and fault.at_offset == offset:
                fault.times -= 1
                if fault.times == 0:
                    del self._armed[i]
                return fault
        return None

    def to_json(self) -> list[dict[str, Any]]:
        return [fault.to_json() for fault in self._armed]
