"""Source field names to output names (seed §6.1) and the job message on `job_data` (seed §6.2).

Text fields are always strings in the output: a missing or null source value becomes "", so
consumers never meet a type that changes from row to row. Values are stripped at both ends;
inner whitespace (line breaks in a description) is kept.
"""

import json
import math
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any, Final

import msgspec

from jobstream.records import Job

__all__ = [
    "COLLECT_SOURCE",
    "DATE_FIELDS",
    "DESCRIPTION_SOURCE",
    "FIELD_MAP",
    "PUBLISH_SOURCE",
    "TEXT_FIELDS",
    "build_job",
    "map_text_fields",
    "text_value",
]


def _copied_fields() -> dict[str, str]:
    """Source field -> Job field for every field `Job` declares as copied from the row."""
    info = msgspec.inspect.type_info(Job)
    assert isinstance(info, msgspec.inspect.StructType)
    copied = {}
    for field in info.fields:
        extra = field.type.extra if isinstance(field.type, msgspec.inspect.Metadata) else None
        if extra and "source_field" in extra:
            copied[extra["source_field"]] = field.name
    return copied


# seed §6.1, in the order of the output message (seed §6.2): declared on `Job`'s fields.
FIELD_MAP: Final[Mapping[str, str]] = MappingProxyType(_copied_fields())
_SOURCE_OF: Final = {out: src for src, out in FIELD_MAP.items()}
# The two copied fields that are dates, parsed by the 7-day rule (build_job's publish, collect).
PUBLISH_SOURCE: Final[str] = _SOURCE_OF["publish_date"]
COLLECT_SOURCE: Final[str] = _SOURCE_OF["collect_time"]
# The longest text field by far (a posting's description): the page agent copies its JSON.
DESCRIPTION_SOURCE: Final[str] = _SOURCE_OF["description"]
DATE_FIELDS: Final = (PUBLISH_SOURCE, COLLECT_SOURCE)
# (source name, output name) for every field copied as text.
TEXT_FIELDS: Final = tuple((src, out) for src, out in FIELD_MAP.items() if src not in DATE_FIELDS)


def text_value(value: object) -> str:
    """One source value as output text: None -> "", strings stripped, other scalars via str().

    NaN and infinities (Python's json reads them; JSON has no such numbers) count as null. A
    list or object is kept as compact JSON rather than Python's repr.
    """
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, int | float | str):
        return str(value).strip()
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def map_text_fields(row: Mapping[str, Any]) -> dict[str, str]:
    """The text fields of a source row under their output names (url, title, ... not dates)."""
    text = {}
    for src, out in TEXT_FIELDS:
        value = row.get(src)
        text[out] = value.strip() if type(value) is str else text_value(value)  # inline: hot
    return text


def build_job(
    *,
    job_id: str,
    text: Mapping[str, str],
    publish: date,
    collect: date,
    crawl_time: str,
    task_id: str,
    source_offset: int,
    demo: bool,
) -> Job:
    """The job message of seed §6.2 plus `task_id`, `source_offset` and `demo`.

    `text` comes from `map_text_fields`; `crawl_time` is already ISO 8601 with its offset.
    """
    # The text fields are already under Job's names. One dict unpacked into Job is not only
    # shorter than naming every field: measured 10-15% faster than sixteen keyword arguments.
    fields: dict[str, Any] = dict(
        text,
        id=job_id,
        publish_date=publish.isoformat(),
        collect_time=collect.isoformat(),
        crawl_time=crawl_time,
        task_id=task_id,
        source_offset=source_offset,
        demo=demo,
    )
    return Job(**fields)
