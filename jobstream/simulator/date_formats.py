"""How the simulator writes `aae397` (publish) and `Collect_time`: every format in bazhuayu-api.md.

Each renderer returns the text the API shows and the calendar day it means (None for junk), so the
generator can hand tests the ground truth without parsing its own output.
"""

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

# How far back publish dates reach: far enough that a real share falls outside a 7-day window.
MAX_AGE_DAYS = 20

# Relative formats are anchored to the day the row was collected, so these rows are always
# collected on the anchor day: then "relative to the collect day" and "relative to the crawl day"
# give the same answer when the crawl runs that day.
RELATIVE_FORMATS = (
    "today",
    "just_now",
    "minutes_ago",
    "hours_ago",
    "yesterday",
    "day_before_yesterday",
    "days_ago",
)
ABSOLUTE_FORMATS = ("month_day_cn", "month_day_dash", "iso_date", "slash_date", "cn_full")
PUBLISH_FORMATS = RELATIVE_FORMATS + ABSOLUTE_FORMATS
PUBLISH_WEIGHTS = (8, 3, 5, 8, 6, 4, 12, 14, 10, 12, 8, 10)
PUBLISH_JUNK = ("junk_negotiable", "junk_empty", "junk_null", "junk_missing")
PUBLISH_PREFIXES = ("发布于", "更新于")
PREFIX_RATIO = 0.08

COLLECT_FORMATS = (
    "datetime",
    "slash_minutes",
    "iso_naive",
    "iso_offset",
    "iso_utc",
    "epoch_ms",
    "epoch_ms_str",
)
COLLECT_WEIGHTS = (70, 8, 5, 4, 3, 5, 5)
COLLECT_JUNK = ("junk_empty", "junk_null", "junk_missing")

# Sentinel for "the key is absent from the row", distinct from a JSON null.
MISSING = object()


@dataclass(frozen=True)
class Rendered:
    """One date field as the API shows it, and the day it stands for (None: deliberately junk)."""

    value: object
    day: date | None
    fmt: str
    prefix: str = ""


def shanghai_now() -> datetime:
    return datetime.now(SHANGHAI)


def pick_publish_format(rng: random.Random) -> str:
    return rng.choices(PUBLISH_FORMATS, weights=PUBLISH_WEIGHTS)[0]


def collect_moment(rng: random.Random, anchor: datetime, fmt: str) -> tuple[datetime, int]:
    """Return when the row was collected and how many days before that it was published."""
    midnight = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (anchor - midnight).total_seconds()
    if fmt in RELATIVE_FORMATS:
        # Collected earlier on the anchor day, at most a few hours before the anchor.
        collected = anchor - timedelta(seconds=rng.uniform(0, min(elapsed, 4 * 3600)))
        age = {"yesterday": 1, "day_before_yesterday": 2}.get(fmt, 0)
        if fmt == "days_ago":
            age = rng.randint(1, MAX_AGE_DAYS)
        return collected, age
    # Published `published_days_ago` before the anchor, collected some day between then and now.
    published_days_ago = rng.randint(0, MAX_AGE_DAYS)
    collected_days_ago = rng.randint(0, published_days_ago)
    age = published_days_ago - collected_days_ago
    if collected_days_ago == 0:
        return midnight + timedelta(seconds=rng.uniform(0, elapsed)), age
    day = midnight - timedelta(days=collected_days_ago)
    return day + timedelta(seconds=rng.uniform(6 * 3600, 23 * 3600)), age


def collected_again(rng: random.Random, anchor: datetime, before: date) -> datetime:
    """When a posting first collected on day `before` was collected again: a later day up to
    the anchor's (the anchor's day itself when `before` is that day), at a time of day that
    has passed by the anchor."""
    midnight = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    days_back = max(0, (anchor.date() - before).days - 1)
    back = rng.randint(0, days_back)
    if back == 0:
        return midnight + timedelta(seconds=rng.uniform(0, (anchor - midnight).total_seconds()))
    return midnight - timedelta(days=back) + timedelta(seconds=rng.uniform(6 * 3600, 23 * 3600))


def render_publish(rng: random.Random, fmt: str, collected: datetime, age: int) -> Rendered:
    """Write the publish date `age` days before `collected` in format `fmt`."""
    text, fmt = _publish_text(rng, fmt, collected, age)
    day = collected.date() - timedelta(days=age)
    prefix = ""
    if rng.random() < PREFIX_RATIO:
        prefix = rng.choice(PUBLISH_PREFIXES) + (" " if rng.random() < 0.3 else "")
    return Rendered(prefix + text, day, fmt, prefix.strip())


def _publish_text(rng: random.Random, fmt: str, collected: datetime, age: int) -> tuple[str, str]:
    minutes_today = collected.hour * 60 + collected.minute
    # "N hours ago" must stay on the collect day, or its day would depend on the reader's clock.
    if fmt == "hours_ago":
        if collected.hour >= 1:
            return f"{rng.randint(1, min(23, collected.hour))}小时前", fmt
        fmt = "minutes_ago"
    if fmt == "minutes_ago":
        if minutes_today >= 1:
            return f"{rng.randint(1, min(59, minutes_today))}分钟前", fmt
        fmt = "just_now"
    fixed = {
        "today": "今天",
        "just_now": "刚刚",
        "yesterday": "昨天",
        "day_before_yesterday": "前天",
    }
    if fmt in fixed:
        return fixed[fmt], fmt
    if fmt == "days_ago":
        return f"{age}天前", fmt
    day = collected.date() - timedelta(days=age)
    absolute = {
        "month_day_cn": f"{day.month}月{day.day}日",
        "month_day_dash": f"{day.month:02d}-{day.day:02d}",
        "iso_date": day.isoformat(),
        "slash_date": f"{day.year}/{day.month}/{day.day}",
        "cn_full": f"{day.year}年{day.month}月{day.day}日",
    }
    return absolute[fmt], fmt


def render_publish_junk(rng: random.Random) -> Rendered:
    fmt = rng.choice(PUBLISH_JUNK)
    value = {"junk_negotiable": "面议", "junk_empty": "", "junk_null": None}.get(fmt, MISSING)
    return Rendered(value, None, fmt)


def render_collect(rng: random.Random, collected: datetime) -> Rendered:
    fmt = rng.choices(COLLECT_FORMATS, weights=COLLECT_WEIGHTS)[0]
    return Rendered(_collect_value(fmt, collected.replace(microsecond=0)), collected.date(), fmt)


def _collect_value(fmt: str, c: datetime) -> object:
    if fmt == "datetime":
        return c.strftime("%Y-%m-%d %H:%M:%S")
    if fmt == "slash_minutes":
        return f"{c.year}/{c.month}/{c.day} {c.hour:02d}:{c.minute:02d}"
    if fmt == "iso_naive":
        return c.replace(tzinfo=None).isoformat()
    if fmt == "iso_offset":
        return c.isoformat()
    if fmt == "iso_utc":
        # The UTC form's calendar day differs from Shanghai's before 08:00: a deliberate trap.
        return c.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    millis = int(c.timestamp() * 1000)
    return millis if fmt == "epoch_ms" else str(millis)


def render_collect_junk(rng: random.Random) -> Rendered:
    fmt = rng.choice(COLLECT_JUNK)
    value = {"junk_empty": "", "junk_null": None}.get(fmt, MISSING)
    return Rendered(value, None, fmt)


def render_recent(rng: random.Random, anchor: datetime) -> tuple[Rendered, Rendered, datetime]:
    """Dates inside any window of two days or more: published `今天` or `昨天`, collected on the
    anchor day (`%Y-%m-%d %H:%M:%S`). Returns (publish, collect, the moment collected)."""
    fmt = rng.choice(("today", "yesterday"))
    collected, age = collect_moment(rng, anchor, fmt)
    collected = collected.replace(microsecond=0)
    text, fmt = _publish_text(rng, fmt, collected, age)
    publish = Rendered(text, collected.date() - timedelta(days=age), fmt)
    collect = Rendered(_collect_value("datetime", collected), collected.date(), "datetime")
    return publish, collect, collected
