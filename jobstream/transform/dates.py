"""The two date fields of a source row (`aae397`, `Collect_time`) parsed into calendar days.

Formats come from `bazhuayu-api.md` ("Field values seen in job postings") and seed §5.2.
Every common shape is matched by one precompiled regex; dateutil only sees rare shapes.
Unicode digits (full-width `２０２６`) are accepted because `\\d` and `int()` both accept them.
"""

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache

from dateutil import parser as dateutil_parser

from jobstream.errors import DateParseError

__all__ = ["parse_collect_date", "parse_publish_date", "recent_month_day"]

# Longer strings are rejected before any regex runs: no date format here comes near it.
_MAX_LEN = 64
_SHOWN_LEN = 40

_SEP = r"[-/.－／．]"
_COLON = r"[:：]"
# Absolute date: 2026-01-13, 2026/1/13, 2026.1.13 (one separator throughout) or 2026年1月13日.
_DATE = (
    rf"(?:(?P<y>\d{{4}})(?P<sep>{_SEP})(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})"
    r"|(?P<cy>\d{4})\s*年\s*(?P<cm>\d{1,2})\s*月\s*(?P<cd>\d{1,2})\s*[日号]?)"
)
# Optional time of day and UTC offset: " 10:30", "T10:30:00.123Z", " 10:30:00 +08:00".
_TIME = (
    rf"(?:(?:\s*T\s*|\s+)(?P<hh>\d{{1,2}}){_COLON}(?P<mi>\d{{2}})"
    rf"(?:{_COLON}(?P<ss>\d{{2}})(?:[.,]\d{{1,9}})?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)
_MONTH_DAY = (
    rf"(?:(?P<mm>\d{{1,2}}){_SEP}(?P<md>\d{{1,2}})"
    r"|(?P<km>\d{1,2})\s*月\s*(?P<kd>\d{1,2})\s*[日号]?)"
)
_WORDS: dict[str, int] = {
    "今天": 0, "今日": 0, "刚刚": 0, "刚才": 0,
    "昨天": 1, "昨日": 1, "前天": 2, "前日": 2, "大前天": 3,
}  # fmt: skip
_HALF_HOUR = ("半小时前", "半个小时前", "半个钟头前")
_WORD = "|".join(sorted((*_WORDS, *_HALF_HOUR), key=len, reverse=True))
_UNIT = r"秒钟?|分钟?|个?小时|个?钟头|天|日|个?星期|个?礼拜|周|个?月|年"
_RELATIVE = rf"(?P<n>\d{{1,6}})\s*(?P<unit>{_UNIT})\s*[以之]?前"
_PREFIX = r"(?:发布|更新|刷新)(?:于|时间|日期)?\s*[:：]?"
_SUFFIX = r"(?:发布|更新|刷新)"

_COLLECT_RE = re.compile(rf"\s*{_DATE}{_TIME}\s*")
_PUBLISH_RE = re.compile(
    rf"\s*(?:{_PREFIX})?\s*(?:{_DATE}|{_MONTH_DAY}|{_RELATIVE}|(?P<word>{_WORD})){_TIME}\s*{_SUFFIX}?\s*"
)

_ELAPSED_UNIT: dict[str, timedelta] = {
    "秒": timedelta(seconds=1), "秒钟": timedelta(seconds=1),
    "分": timedelta(minutes=1), "分钟": timedelta(minutes=1),
    "小时": timedelta(hours=1), "个小时": timedelta(hours=1),
    "钟头": timedelta(hours=1), "个钟头": timedelta(hours=1),
}  # fmt: skip
_DAY_UNIT: dict[str, int] = {
    "天": 1, "日": 1, "周": 7, "星期": 7, "个星期": 7, "礼拜": 7, "个礼拜": 7,
}  # fmt: skip
_MONTH_UNIT: dict[str, int] = {"月": 1, "个月": 1, "年": 12}


def parse_publish_date(value: object, now: datetime) -> date:
    """Parse `aae397` into the day it was published, in the zone of `now`.

    `now` must be timezone-aware; `now.date()` is "today". Relative forms (`今天`, `3小时前`,
    `2天前`) count back from `now`; a month-day without a year (`1月13日`, `01-13`) is the most
    recent such day that is not after today (see `recent_month_day`). Anything that
    `parse_collect_date` accepts is accepted too (aware values are converted into now's zone).
    Raises DateParseError for anything else, with a reason that names the value.
    """
    tz = now.tzinfo
    if tz is None:
        raise ValueError("now must be timezone-aware")
    if type(value) is str:
        days = _WORDS.get(value)  # the commonest values cost one dict lookup
        if days is not None:
            return now.date() - timedelta(days=days)
        if len(value) > _MAX_LEN:
            raise DateParseError(f"unrecognised publish date {_shown(value)}")
        match = _PUBLISH_RE.fullmatch(value)
        if match is None:
            return _parse_rare(value, tz, "publish date")
        try:
            return _publish_from_match(match, now, tz)
        except (ValueError, OverflowError) as exc:
            raise DateParseError(f"invalid publish date {_shown(value)}") from exc
    return _parse_non_string(value, tz, "publish date")


def parse_collect_date(value: object, tz: tzinfo) -> date:
    """Parse `Collect_time` into the calendar day in `tz` on which the row was collected.

    Accepts `2026-01-15 10:30:00`, `2026/1/15 10:30`, `2026年1月15日 10:30`, ISO 8601 with
    `T` (with or without an offset or `Z`), the date alone, epoch milliseconds (13 digits) or
    seconds (10 digits) as an int or a digit string, `20260115`, and as a slow fallback other
    complete dates dateutil understands (`Thu Jan 15 10:30:00 CST 2026`). A value with an
    offset is converted into `tz` before its date is taken; a naive one is already local.
    Raises DateParseError for anything else, with a reason that names the value.
    """
    if type(value) is str:
        if len(value) > _MAX_LEN:
            raise DateParseError(f"unrecognised collect time {_shown(value)}")
        match = _COLLECT_RE.fullmatch(value)
        if match is None:
            return _parse_rare(value, tz, "collect time")
        try:
            return _absolute_from_match(match, tz)
        except (ValueError, OverflowError) as exc:
            raise DateParseError(f"invalid collect time {_shown(value)}") from exc
    return _parse_non_string(value, tz, "collect time")


def recent_month_day(month: int, day: int, today: date) -> date:
    """The most recent `month`/`day` that is not after `today`.

    On 2027-01-03, 12/30 is 2026-12-30; on 2026-01-15, 1/15 is 2026-01-15. Feb 29 resolves
    to the most recent leap year's Feb 29 (up to 8 years back, across 2100). Raises
    ValueError when no year has such a day (`2月30日`, `13月1日`).
    """
    if not 1 <= month <= 12 or not 1 <= day <= _MAX_DAY[month]:
        raise ValueError(f"no such month-day {month}/{day}")
    year = today.year if (month, day) <= (today.month, today.day) else today.year - 1
    while month == 2 and day == 29 and not calendar.isleap(year):
        year -= 1  # at most 7 steps (2104 -> 2096)
    return date(year, month, day)


_MAX_DAY = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _publish_from_match(match: re.Match[str], now: datetime, tz: tzinfo) -> date:
    if match["y"] is not None or match["cy"] is not None:
        return _absolute_from_match(match, tz)
    month, day = match.group("mm", "md")
    if month is None:
        month, day = match.group("km", "kd")
    if month is not None:
        _check_time(*match.group("hh", "mi", "ss"))
        return recent_month_day(int(month), int(day), now.date())
    count = match["n"]
    if count is not None:
        return _relative(int(count), match["unit"], now, tz)
    word = match["word"]
    if word in _HALF_HOUR:
        return _elapsed(now, timedelta(minutes=30), tz)
    return now.date() - timedelta(days=_WORDS[word])


def _relative(count: int, unit: str, now: datetime, tz: tzinfo) -> date:
    step = _ELAPSED_UNIT.get(unit)
    if step is not None:
        return _elapsed(now, count * step, tz)
    days = _DAY_UNIT.get(unit)
    if days is not None:
        return now.date() - timedelta(days=count * days)
    return _months_before(now.date(), count * _MONTH_UNIT[unit])


def _elapsed(now: datetime, delta: timedelta, tz: tzinfo) -> date:
    # Through UTC, so "3小时前" means three real hours even across a DST change.
    return (now.astimezone(UTC) - delta).astimezone(tz).date()


def _months_before(today: date, months: int) -> date:
    year, month0 = divmod(today.year * 12 + today.month - 1 - months, 12)
    if year < 1:
        raise ValueError("before year 1")
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(today.day, last))


def _absolute_from_match(match: re.Match[str], tz: tzinfo) -> date:
    year, month, day, hour, minute, second, offset = match.group(
        "y", "m", "d", "hh", "mi", "ss", "tz"
    )
    if year is None:
        year, month, day = match.group("cy", "cm", "cd")
    calendar_day = date(int(year), int(month), int(day))
    if hour is None:
        return calendar_day
    clock = _check_time(hour, minute, second)
    if offset is None:
        return calendar_day  # naive: the value is already in the configured zone
    moment = datetime.combine(calendar_day, clock, tzinfo=_zone(offset))
    return moment.astimezone(tz).date()


def _check_time(hour: str | None, minute: str | None, second: str | None) -> time:
    """The time of day, or ValueError for an impossible one (`25:61`); midnight when absent."""
    if hour is None or minute is None:
        return time()
    return time(int(hour), int(minute), int(second or 0))


@lru_cache(maxsize=64)
def _zone(offset: str) -> tzinfo:
    if offset in ("Z", "z"):
        return UTC
    digits = offset[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
    if minutes >= 24 * 60:
        raise ValueError(f"offset out of range: {offset}")
    return timezone(timedelta(minutes=-minutes if offset[0] == "-" else minutes))


def _parse_non_string(value: object, tz: tzinfo, what: str) -> date:
    if value is None:
        raise DateParseError(f"empty {what} (null)")
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise DateParseError(f"negative {what} {_shown(value)}")
        return _parse_digits(str(value), tz, what)
    raise DateParseError(f"{what} has unsupported type {type(value).__name__}: {_shown(value)}")


def _parse_digits(digits: str, tz: tzinfo, what: str) -> date:
    """13 digits: epoch ms; 10: epoch seconds; 8: YYYYMMDD. Other lengths are ambiguous."""
    try:
        if len(digits) == 13:
            return datetime.fromtimestamp(int(digits) // 1000, tz).date()
        if len(digits) == 10:
            return datetime.fromtimestamp(int(digits), tz).date()
        if len(digits) == 8:
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except (ValueError, OverflowError, OSError) as exc:
        raise DateParseError(f"invalid {what} {_shown(digits)}") from exc
    raise DateParseError(f"unrecognised {what} {_shown(digits)} (digits, not 8, 10 or 13 long)")


def _parse_rare(value: str, tz: tzinfo, what: str) -> date:
    """Shapes outside the fast regexes: digits, then ISO 8601 variants, then dateutil's parser."""
    text = value.strip()
    if not text:
        raise DateParseError(f"empty {what}")
    if text.isdecimal():
        return _parse_digits(text, tz, what)
    moment = _parse_iso(text) or _parse_complete(text)
    if moment is None:
        raise DateParseError(f"unrecognised {what} {_shown(value)}")
    if moment.tzinfo is None:
        return moment.date()
    try:
        return moment.astimezone(tz).date()
    except OverflowError as exc:  # 0001-01-01 at +01:00 is before the first representable day
        raise DateParseError(f"invalid {what} {_shown(value)}") from exc


# Two defaults that differ in year, month and day: a value whose date comes out different under
# each was missing part of its date (dateutil fills gaps from the default), so it is refused.
_DEFAULTS = (datetime(2001, 2, 3), datetime(2002, 4, 5))
# Outside this table, a zone *name* is refused: dateutil would otherwise ask the host's zone.
_ZONE_NAMES: dict[str, tzinfo] = {
    "CST": timezone(timedelta(hours=8)),  # China Standard Time, as Java's Date.toString() writes
    "UTC": UTC,
    "GMT": UTC,
    "Z": UTC,
}


def _zone_for(name: str | None, offset: int | None) -> tzinfo | None:
    if offset is not None:
        return timezone(timedelta(seconds=offset))
    if name is None:
        return None
    zone = _ZONE_NAMES.get(name.upper())
    if zone is None:
        raise ValueError(f"unknown time zone name {name}")
    return zone


def _parse_iso(text: str) -> datetime | None:
    # isoparse fills a reduced date ("2026", "2026-01") with ones: only complete dates may pass.
    if len(text) < 8:
        return None
    try:
        return dateutil_parser.isoparse(text)
    except (ValueError, OverflowError):
        return None


# dateutil reads "UTC+8" the POSIX way (8 hours *behind* UTC); Chinese sources mean +08:00.
_NAMED_OFFSET = re.compile(r"(?:UTC|GMT)\s*([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)
# A trailing comment, as in JavaScript's "... GMT+0800 (中国标准时间)".
_TRAILING_NOTE = re.compile(r"\s*\([^()]*\)$")


def _parse_complete(text: str) -> datetime | None:
    text = _TRAILING_NOTE.sub("", text)
    text = _NAMED_OFFSET.sub(lambda m: f"{m[1]}{int(m[2]):02d}:{m[3] or '00'}", text)
    try:
        first, second = (
            dateutil_parser.parse(text, default=default, tzinfos=_zone_for) for default in _DEFAULTS
        )
    except (ValueError, OverflowError, TypeError):
        return None
    if first.date() != second.date():
        return None
    return first


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_LEN else text[: _SHOWN_LEN - 3] + "..."
