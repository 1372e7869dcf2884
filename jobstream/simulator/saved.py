"""The simulator's rows kept in a file, so a simulator started again serves the same rows and
grows from where it stood (the worker's demo mode keeps it in its data directory).

A task's rows are a pure function of its seed, its id and the clock reading each batch was
appended at (`rows`), so the file holds only those facts: one JSON line per change (a task
collected from scratch, rows appended), replayed in order at start. Appending a line is cheap;
a line cut short by a crash is ignored, losing at most the last growth.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jobstream.simulator.rows import RowOptions

logger = logging.getLogger(__name__)

VERSION = 1


@dataclass(frozen=True)
class Collected:
    """`task_id` collected from scratch: `total` rows from `seed`, anchored at `anchor`."""

    task_id: str
    total: int
    seed: int
    anchor: datetime


@dataclass(frozen=True)
class Grown:
    """`n` rows appended at `anchor` to `task_id`, or to every task when it is None."""

    n: int
    anchor: datetime
    task_id: str | None = None


Change = Collected | Grown


class SavedRows:
    """An append-only file of changes, written as they happen (JSON lines; the first names the
    row options the changes apply to)."""

    def __init__(self, path: str | os.PathLike[str], options: RowOptions) -> None:
        self.path = Path(path)
        self.header = {"version": VERSION, "rows": dataclasses.asdict(options)}

    def load(self) -> list[Change]:
        """The changes saved for these row options; none when the file is missing, unreadable or
        written for other options (then it is started again)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            logger.warning("simulator state %s unreadable (%s): starting afresh", self.path, exc)
            return []
        try:
            header = json.loads(lines[0]) if lines else None
        except ValueError:
            header = None
        if header != self.header:
            logger.warning(
                "simulator state %s was written for other settings: starting afresh", self.path
            )
            return []
        changes: list[Change] = []
        for number, line in enumerate(lines[1:], start=2):
            try:
                changes.append(_change(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                # A line cut short by a crash is the last one: nothing after it was written.
                logger.warning(
                    "simulator state %s: line %d unreadable, ignored with the lines after it",
                    self.path,
                    number,
                )
                break
        return changes

    def start(self, changes: list[Change]) -> None:
        """Write the file again with `changes` (the header first)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            out.write(json.dumps(self.header) + "\n")
            out.writelines(json.dumps(_fields(change)) + "\n" for change in changes)
        os.replace(temporary, self.path)

    def append(self, change: Change) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(_fields(change)) + "\n")


def _fields(change: Change) -> dict[str, Any]:
    fields = dataclasses.asdict(change)
    fields["anchor"] = change.anchor.isoformat()
    fields["kind"] = "collected" if isinstance(change, Collected) else "grown"
    return fields


def _change(fields: dict[str, Any]) -> Change:
    anchor = datetime.fromisoformat(fields["anchor"])
    if anchor.tzinfo is None:
        raise ValueError("an anchor without a time zone")
    if fields["kind"] == "collected":
        return Collected(fields["task_id"], int(fields["total"]), int(fields["seed"]), anchor)
    if fields["kind"] == "grown":
        return Grown(int(fields["n"]), anchor, fields["task_id"])
    raise ValueError(f"unknown change {fields['kind']!r}")
