"""What a hostile kind starts from (`Base`) and what it hands back (`Spoiled`)."""

import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobstream.simulator.date_formats import Rendered
from jobstream.simulator.page_bytes import RawRow
from jobstream.simulator.policy import PUBLISHED, REJECTED, ROW, Expect

PUBLISH, COLLECT = "aae397", "Collect_time"


@dataclass(frozen=True)
class Base:
    """A normal row with recent dates (`date_formats.render_recent`), for a kind to spoil.

    `occurrence` counts the earlier rows of the same kind in the task; kinds with variants (which
    date field, which value) alternate on it, so a few thousand rows show every variant.
    """

    fields: dict[str, Any]
    publish: Rendered
    collect: Rendered
    collected: datetime
    occurrence: int
    rng: random.Random

    def with_fields(self, **changes: Any) -> dict[str, Any]:
        return {**self.fields, **changes}

    @property
    def date_field(self) -> str:
        """The date field this occurrence spoils: aae397 and Collect_time take turns."""
        return (PUBLISH, COLLECT)[self.occurrence % 2]

    def variant(self, choices: tuple[Any, ...]) -> Any:
        """One of `choices`, turn by turn over the occurrences of the kind."""
        return choices[self.occurrence % len(choices)]


@dataclass(frozen=True)
class Spoiled:
    """A hostile row: what is served, what it means, and what the pipeline must do with it.

    `meaning` is the row as the pipeline reads it (None when it is not an object); `publish` and
    `collect` say what the dates really are, None keeping the base's.
    """

    row: RawRow
    expect: Expect
    field: str | None = None
    meaning: dict[str, Any] | None = None
    publish: Rendered | None = None
    collect: Rendered | None = None


def dumped(value: Any) -> RawRow:
    """A value served as UTF-8 JSON (not ASCII escapes: hostile rows bring real multibyte text)."""
    return RawRow(json.dumps(value, ensure_ascii=False).encode())


def published(
    fields: dict[str, Any], *, publish: Rendered | None = None, collect: Rendered | None = None
) -> Spoiled:
    return Spoiled(dumped(fields), PUBLISHED, meaning=fields, publish=publish, collect=collect)


def rejected(
    row: RawRow | Any,
    at: str = ROW,
    *,
    publish: Rendered | None = None,
    collect: Rendered | None = None,
) -> Spoiled:
    raw = row if isinstance(row, RawRow) else dumped(row)
    meaning = row if isinstance(row, dict) else None
    return Spoiled(raw, REJECTED, field=at, meaning=meaning, publish=publish, collect=collect)


def marker(n: int) -> str:
    """Text no generated row holds, replaced by raw bytes after dumping (`spliced_json`)."""
    return f"\ue000{n}\ue001"


def spliced_json(fields: dict[str, Any], raw: dict[str, bytes]) -> RawRow:
    """`fields` dumped as UTF-8 JSON, then each key of `raw` (a marker inside a string, or a
    quoted marker standing for a whole value) replaced by its bytes."""
    body = json.dumps(fields, ensure_ascii=False).encode()
    for text, chunk in raw.items():
        assert body.count(text.encode()) == 1, text
        body = body.replace(text.encode(), chunk)
    return RawRow(body)
