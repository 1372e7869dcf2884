"""Everything a running simulator knows: each task's rows, issued tokens, faults and counters."""

from __future__ import annotations

import bisect
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jobstream.simulator.cursor import CursorFaults
from jobstream.simulator.faults import Faults
from jobstream.simulator.options import SimulatorConfig
from jobstream.simulator.pagecache import PageCache
from jobstream.simulator.rows import REPEAT_REACH, RowGenerator, RowOptions, RowRef, RowTruth
from jobstream.simulator.saved import Change, Collected, Grown, SavedRows
from jobstream.simulator.stats import Stats
from jobstream.simulator.tokens import TokenStore

logger = logging.getLogger(__name__)


class TaskRows:
    """One task's rows. Rows are only ever appended; each batch keeps the clock reading it was
    appended at, so an existing row never changes while later rows carry later dates."""

    def __init__(self, task_id: str, anchor: datetime, total: int, options: RowOptions) -> None:
        self.task_id = task_id
        self.options = options
        self.total = total
        self._starts: list[int] = [0]
        self._generators: list[RowGenerator] = [
            RowGenerator(task_id, anchor, options, Earlier(self, {}))
        ]

    def grow(self, n: int, anchor: datetime, others: dict[str, tuple[TaskRows, int]]) -> None:
        """Append n rows; `others` are the simulator's tasks and their totals just before this
        growth, whose rows repeats may copy (with `shared_postings`)."""
        if n <= 0:
            return
        self._starts.append(self.total)
        self._generators.append(
            RowGenerator(self.task_id, anchor, self.options, Earlier(self, others))
        )
        self.total += n

    def generator_for(self, index: int) -> RowGenerator:
        return self._generators[bisect.bisect_right(self._starts, index) - 1]

    def rows(self, offset: int, size: int) -> list[Any]:
        """Rows offset..offset+size-1 that exist: dicts, and `RawRow`s for hostile rows."""
        stop = min(self.total, offset + size)
        return [self.generator_for(i).row(i) for i in range(offset, stop)]

    def truth(self, index: int) -> RowTruth:
        if not 0 <= index < self.total:
            raise IndexError(f"task {self.task_id} has no row {index} (total {self.total})")
        return self.generator_for(index).truth(index)


class Earlier:
    """What a batch's repeats may copy: the task's own rows before the repeat (nearby ones),
    and with `shared_postings` the rows other tasks had when the batch was appended (the
    TaskRows objects of that moment: a task reset later keeps its old rows here)."""

    def __init__(self, own: TaskRows, others: dict[str, tuple[TaskRows, int]]) -> None:
        self.own = own
        self.others = {t: v for t, v in others.items() if t != own.task_id and v[1] > 0}

    def pick(self, rng: random.Random, task_id: str, index: int) -> RowRef | None:
        choices = [task_id] + (sorted(self.others) if self.own.options.shared_postings else [])
        chosen = rng.choice(choices)
        if chosen == task_id:
            if index == 0:
                return None
            return RowRef(task_id, rng.randrange(max(0, index - REPEAT_REACH), index))
        total = self.others[chosen][1]
        return RowRef(chosen, rng.randrange(max(0, total - 2 * REPEAT_REACH), total))

    def generate(self, ref: RowRef) -> tuple[Any, RowTruth]:
        rows = self.own if ref.task_id == self.own.task_id else self.others[ref.task_id][0]
        return rows.generator_for(ref.index).generate(ref.index)


class SimulatorState:
    """With `config.state_file`, the rows are those the file describes (tasks it does not know
    start with `config.total` rows), and every change is added to it."""

    def __init__(
        self, config: SimulatorConfig, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._monotonic = monotonic
        self._started = monotonic()
        self._grown_by_time = 0
        self.tasks: dict[str, TaskRows] = {}
        self._saved = SavedRows(config.state_file, config.rows) if config.state_file else None
        # Changes of tasks no longer configured stay in the file, unused.
        changes = self._saved.load() if self._saved is not None else []
        for change in changes:
            if change.task_id is None or change.task_id in config.task_ids:
                self._apply(change)
        # Whether the rows of some task came from the file.
        self.restored = bool(self.tasks)
        anchor = config.clock()
        for task_id in config.task_ids:
            if task_id not in self.tasks:
                collected = Collected(task_id, config.total, config.rows.seed, anchor)
                self._apply(collected)
                changes.append(collected)
        if self._saved is not None:
            self._saved.start(changes)
        self.tokens = TokenStore(config.token_ttl, monotonic)
        self.faults = Faults(random.Random(config.rows.seed))
        self.faults.latency_ms = config.latency_ms
        self.faults.latency_jitter_ms = config.latency_jitter_ms
        self.faults.set_rate_limit(config.rate_limit, config.rate_burst_seconds)
        self.cursor = CursorFaults()
        self.stats = Stats()
        self.page_cache = PageCache(config.page_cache_bytes)

    def tick(self) -> None:
        """Append the rows `grow_per_minute` says are due by now (called on each data request)."""
        if self.config.grow_per_minute <= 0:
            return
        minutes = (self._monotonic() - self._started) / 60
        due = int(minutes * self.config.grow_per_minute) - self._grown_by_time
        if due > 0:
            self._grown_by_time += due
            self.grow(due)

    def grow(self, n: int, task_id: str | None = None) -> None:
        """Append n rows to one task, or to every task when task_id is None."""
        if task_id is not None and task_id not in self.tasks:
            raise KeyError(task_id)
        self._change(Grown(n, self.config.clock(), task_id))

    def reset(self, task_id: str, total: int, seed: int | None = None) -> int:
        """Clear a task's data and collect it again: `total` rows from `seed` (default: the next
        seed), anchored now. Rows grown later continue from the new data. Returns the seed."""
        if total < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        old = self.tasks[task_id]
        seed = old.options.seed + 1 if seed is None else seed
        self._change(Collected(task_id, total, seed, self.config.clock()))
        logger.info("task %s reset to %d rows (seed %d)", task_id, total, seed)
        return seed

    def _change(self, change: Change) -> None:
        self._apply(change)
        if self._saved is not None:
            try:
                self._saved.append(change)
            except OSError as exc:
                logger.warning("simulator state %s not saved: %s", self._saved.path, exc)

    def _apply(self, change: Change) -> None:
        if isinstance(change, Collected):
            options = dataclasses.replace(self.config.rows, seed=change.seed)
            task = TaskRows(change.task_id, change.anchor, change.total, options)
            self.tasks[change.task_id] = task
            return
        targets = list(self.tasks.values())
        if change.task_id is not None:
            targets = [t for t in targets if t.task_id == change.task_id]
        before = {t: (task, task.total) for t, task in self.tasks.items()}
        for task in targets:
            task.grow(change.n, change.anchor, before)
            logger.debug("task %s grew by %d rows to %d", task.task_id, change.n, task.total)

    def total(self, task_id: str) -> int:
        return self.tasks[task_id].total

    def row(self, task_id: str, index: int) -> Any:
        return self.tasks[task_id].generator_for(index).row(index)

    def truth(self, task_id: str, index: int) -> RowTruth:
        return self.tasks[task_id].truth(index)

    def expire_tokens(self, *, refresh_too: bool = False) -> None:
        self.tokens.expire_all(refresh_too=refresh_too)
