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

from jobstream.records import Job

__all__ = ["DATE_FIELDS", "FIELD_MAP", "TEXT_FIELDS", "build_job", "map_text_fields", "text_value"]

# seed §6.1, in the order of the output message (seed §6.2).
FIELD_MAP: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Std_class": "job_category",
        "aca112": "job_title",
        "AAB004": "company",
        "acb241": "salary",
        "aab302": "location",
        "aae397": "publish_date",
        "Collect_time": "collect_time",
        "ACE760": "url",
        "acb22a": "description",
        "Experience": "experience",
        "aac011": "education",
    }
)
DATE_FIELDS: Final = ("aae397", "Collect_time")
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
    return Job(
        id=job_id,
        job_category=text["job_category"],
        job_title=text["job_title"],
        company=text["company"],
        salary=text["salary"],
        location=text["location"],
        publish_date=publish.isoformat(),
        collect_time=collect.isoformat(),
        url=text["url"],
        description=text["description"],
        experience=text["experience"],
        education=text["education"],
        crawl_time=crawl_time,
        task_id=task_id,
        source_offset=source_offset,
        demo=demo,
    )
