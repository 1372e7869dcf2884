"""The JSON text of served row ranges, kept so that serving a range again costs no generation.

Rows are a pure function of their task's data and index, and a task's data only grows (a reset
replaces the whole `TaskRows`), so the text of rows first..first+count of one `TaskRows` never
changes. Off by default; benchmarks turn it on so that the simulator's CPU does not compete
with what they measure. Bounded by bytes, oldest range dropped first.
"""

from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class PageCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, int, int], tuple[Any, bytes]] = OrderedDict()
        self._bytes = 0

    def rows_json(self, owner: Any, first: int, count: int, render: Callable[[], bytes]) -> bytes:
        """The rows' JSON array as `render` writes it, from the cache when it holds it."""
        if self.max_bytes <= 0:
            return render()
        key = (id(owner), first, count)
        entry = self._entries.get(key)
        # The owner is kept with its text: an id is only unique among live objects.
        if entry is not None and entry[0] is owner:
            self._entries.move_to_end(key)
            return entry[1]
        text = render()
        if len(text) <= self.max_bytes:
            if entry is not None:
                self._bytes -= len(entry[1])
            self._entries[key] = (owner, text)
            self._bytes += len(text)
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(dropped)
        return text
