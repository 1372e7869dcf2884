"""What the log says of rejected rows: one INFO line per task and crawl run, when the run's
pages reach the source's end (and during a long backfill at most every SAY_EVERY seconds). The
page agent writes each page's detail at DEBUG; the rows themselves, with their reasons, are in
job_rejects. A rejected row is expected (the source holds unparseable dates), so the line is
INFO: it asks nothing of the operator.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

SAY_EVERY = 600.0
# The source's field names mean nothing to a newcomer.
FIELD_MEANINGS = {
    "aae397": "publish date",
    "Collect_time": "collect time",
    "row": "whole row unreadable",
}


@dataclass
class _Tally:
    since_offset: int
    began: float
    reasons: Counter[str] = field(default_factory=Counter)


class RejectLog:
    """Rejected rows counted per task, said once per crawl run."""

    def __init__(self, rejects_topic: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.rejects_topic = rejects_topic
        self.clock = clock
        self._tasks: dict[str, _Tally] = {}

    def count(
        self,
        task_id: str,
        offset: int,
        next_offset: int,
        total: int,
        reasons: Counter[str],
        demo: bool,
    ) -> None:
        """An applied page: `offset`..`next_offset` of `total`, its rejects by field."""
        tally = self._tasks.get(task_id)
        if tally is None:
            tally = self._tasks[task_id] = _Tally(offset, self.clock())
        tally.reasons.update(reasons)
        if next_offset >= total or self.clock() - tally.began >= SAY_EVERY:
            del self._tasks[task_id]
            self._say(task_id, tally, next_offset, demo)

    def _say(self, task_id: str, tally: _Tally, until: int, demo: bool) -> None:
        rejected = sum(tally.reasons.values())
        if not rejected:
            return
        logger.info(
            "task_id=%s offset=%d %d rows rejected in offsets %d..%d (%s); each is in %s with "
            "its reason%s",
            task_id,
            until,
            rejected,
            tally.since_offset,
            until - 1,
            ", ".join(
                f"{name} ({FIELD_MEANINGS[name]}): {n}"
                if name in FIELD_MEANINGS
                else f"{name}: {n}"
                for name, n in tally.reasons.most_common()
            ),
            self.rejects_topic,
            "; the demo data holds bad rows on purpose" if demo else "",
        )
