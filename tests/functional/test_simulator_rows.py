"""The simulator's rows over HTTP: every date format, stable rows, and a ground truth that holds."""

import re
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp

from jobstream.simulator import RowGenerator, RowOptions
from jobstream.simulator.date_formats import SHANGHAI

FIELDS = {
    "Std_class",
    "aca112",
    "AAB004",
    "acb241",
    "aab302",
    "aae397",
    "Collect_time",
    "ACE760",
    "acb22a",
    "Experience",
    "aac011",
}

# The aae397 classes bazhuayu-api.md lists, told apart by their text alone.
PUBLISH_PATTERNS = {
    "今天": r"今天",
    "刚刚": r"刚刚",
    "昨天": r"昨天",
    "前天": r"前天",
    "N分钟前": r"\d+分钟前",
    "N小时前": r"\d+小时前",
    "N天前": r"\d+天前",
    "1月13日": r"\d{1,2}月\d{1,2}日",
    "01-13": r"\d{2}-\d{2}",
    "2026-01-13": r"\d{4}-\d{2}-\d{2}",
    "2026/1/13": r"\d{4}/\d{1,2}/\d{1,2}",
    "2026年1月13日": r"\d{4}年\d{1,2}月\d{1,2}日",
}
PREFIX = re.compile(r"^(发布于|更新于)\s?")
COLLECT_PATTERNS = {
    "2026-01-15 10:30:00": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
    "2026/1/15 10:30": r"\d{4}/\d{1,2}/\d{1,2} \d{2}:\d{2}",
    "ISO with T": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
    "epoch ms string": r"\d{13}",
}
ABSENT = object()


def publish_class(value: Any) -> str:
    if value is ABSENT:
        return "missing"
    if value is None:
        return "null"
    if value in ("", "面议"):
        return value or "empty"
    text = value
    prefix = PREFIX.match(text)
    if prefix:
        text = text[prefix.end() :]
    for name, pattern in PUBLISH_PATTERNS.items():
        if re.fullmatch(pattern, text):
            return name
    raise AssertionError(f"aae397 {value!r} matches no documented format")


def collect_class(value: Any) -> str:
    if value is ABSENT or value is None or value == "":
        return "junk"
    if isinstance(value, int):
        return "epoch ms number"
    for name, pattern in COLLECT_PATTERNS.items():
        if re.fullmatch(pattern, value):
            return name
    raise AssertionError(f"Collect_time {value!r} matches no documented format")


def oracle_publish(value: Any, now: datetime) -> date | None:
    """An independent reading of aae397, to check the generator's truth against."""
    if not isinstance(value, str) or value in ("", "面议"):
        return None
    text = PREFIX.sub("", value)
    today = now.date()
    fixed = {"今天": 0, "刚刚": 0, "昨天": 1, "前天": 2}
    if text in fixed:
        return today - timedelta(days=fixed[text])
    if m := re.fullmatch(r"(\d+)(分钟|小时|天)前", text):
        unit = {"分钟": "minutes", "小时": "hours", "天": "days"}[m[2]]
        return (now - timedelta(**{unit: int(m[1])})).date()
    if m := re.fullmatch(r"(\d{4})[-/年](\d{1,2})[-/月](\d{1,2})日?", text):
        return _calendar_day(int(m[1]), int(m[2]), int(m[3]))
    m = re.fullmatch(r"(\d{1,2})[-月](\d{1,2})日?", text)
    if m is None:
        return None  # no format at all ("99999-01-01"): publish_class names what is allowed
    guess = date(today.year, int(m[1]), int(m[2]))
    return guess if guess <= today else guess.replace(year=today.year - 1)


def _calendar_day(year: int, month: int, day: int) -> date | None:
    """The day, or None when no calendar has it ("2026-02-30", "0000-01-01")."""
    try:
        return date(year, month, day)
    except ValueError:
        return None


def oracle_collect(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) or value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, SHANGHAI).date()
    for layout in ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"):
        try:
            return datetime.strptime(value, layout).date()
        except ValueError:
            pass
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI).date()


async def fetch_rows(url: str, task_id: str, offset: int, size: int) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/token", json={"grant_type": "password", "username": "demo", "password": "demo"}
        ) as resp:
            token = (await resp.json())["data"]["access_token"]
        rows: list[dict[str, Any]] = []
        headers = {"Authorization": f"Bearer {token}"}
        while len(rows) < size:
            params = {
                "taskId": task_id,
                "offset": str(offset + len(rows)),
                "size": str(min(1000, size)),
            }
            async with http.get(f"{url}/data/all", params=params, headers=headers) as resp:
                page = (await resp.json())["data"]
            if not page["data"]:
                break
            rows.extend(page["data"])
        return rows[:size]


async def test_simulator_first_2000_rows_cover_every_date_format(make_sim, task_id):
    sim = await make_sim(total=2000)
    rows = await fetch_rows(sim.url, task_id, 0, 2000)

    publish = Counter(publish_class(r.get("aae397", ABSENT)) for r in rows)
    collect = Counter(collect_class(r.get("Collect_time", ABSENT)) for r in rows)
    prefixes = Counter(m[1] for r in rows if (m := PREFIX.match(str(r.get("aae397", "")))))

    assert set(publish) == set(PUBLISH_PATTERNS) | {"面议", "empty", "null", "missing"}
    assert set(collect) == set(COLLECT_PATTERNS) | {"epoch ms number", "junk"}
    assert set(prefixes) == {"发布于", "更新于"}
    junk = sum(publish[k] for k in ("面议", "empty", "null", "missing"))
    assert 0 < junk < 60  # about 1 %


async def test_simulator_truth_matches_an_independent_reading(make_sim, task_id, fixed_now):
    sim = await make_sim(total=2000)
    rows = await fetch_rows(sim.url, task_id, 0, 2000)

    for i, row in enumerate(rows):
        truth = sim.state.truth(task_id, i)
        assert truth.publish_date == oracle_publish(row.get("aae397"), fixed_now), (i, row)
        assert truth.collect_date == oracle_collect(row.get("Collect_time")), (i, row)
        assert truth.url == row["ACE760"]
        assert FIELDS - set(row) <= {
            "acb241",
            "Experience",
            "aac011",
            "acb22a",
            "aae397",
            "Collect_time",
        }
        assert not any("truth" in key.lower() for key in row)


def test_simulator_dates_span_twenty_days_with_a_share_outside_seven(fixed_now):
    gen = RowGenerator("t", fixed_now)
    truths = [gen.truth(i) for i in range(2000)]
    today = fixed_now.date()
    published = [t.publish_date for t in truths if t.publish_date]
    collected = [t.collect_date for t in truths if t.collect_date]

    assert min(published) == today - timedelta(days=20) and max(published) == today
    assert min(collected) >= today - timedelta(days=20) and max(collected) == today
    old = sum(d < today - timedelta(days=7) for d in published) / len(published)
    assert 0.2 < old < 0.6
    assert all(
        t.collect_date >= t.publish_date for t in truths if t.publish_date and t.collect_date
    )


async def test_simulator_row_is_identical_across_requests(sim, task_id):
    by_hundreds = await fetch_rows(sim.url, task_id, 0, 257)
    again = []
    for offset in range(0, 257, 7):
        again.extend(await fetch_rows(sim.url, task_id, offset, min(7, 257 - offset)))
    assert again == by_hundreds


def test_simulator_rows_depend_only_on_seed_task_index_and_anchor(fixed_now):
    a = RowGenerator("t", fixed_now, RowOptions(seed=1))
    b = RowGenerator("t", fixed_now, RowOptions(seed=1))
    assert [a.row(i) for i in range(50)] == [b.row(i) for i in range(50)]
    assert a.row(3) != RowGenerator("t", fixed_now, RowOptions(seed=2)).row(3)
    assert a.row(3) != RowGenerator("u", fixed_now, RowOptions(seed=1)).row(3)


def test_simulator_urls_unique_by_default(fixed_now):
    gen = RowGenerator("t", fixed_now)
    urls = [gen.row(i)["ACE760"] for i in range(5000)]
    assert len(set(urls)) == 5000
    assert all(re.match(r"https://(www\.zhaopin|jobs\.51job|www\.liepin)\.com/", u) for u in urls)


def test_simulator_missing_and_duplicate_urls_when_switched_on(fixed_now):
    options = RowOptions(missing_url_ratio=0.02, duplicate_url_ratio=0.02)
    gen = RowGenerator("t", fixed_now, options)
    rows = [gen.row(i) for i in range(5000)]
    truths = [gen.truth(i) for i in range(5000)]
    present = [r["ACE760"] for r in rows if r.get("ACE760")]
    assert 50 < 5000 - len(present) < 160
    assert 50 < len(present) - len(set(present)) < 160
    assert sum(t.url is None for t in truths) == 5000 - len(present)


def test_simulator_junk_ratio_zero_gives_no_junk(fixed_now):
    gen = RowGenerator("t", fixed_now, RowOptions(junk_ratio=0))
    truths = [gen.truth(i) for i in range(3000)]
    assert all(t.publish_date and t.collect_date for t in truths)


async def test_simulator_grown_rows_leave_old_rows_unchanged(make_sim, task_id, fixed_now):
    now = [fixed_now]
    sim = await make_sim(total=100, clock=lambda: now[0])
    before = [sim.state.row(task_id, i) for i in range(100)]

    now[0] = fixed_now + timedelta(days=1)
    sim.state.grow(500)

    assert [sim.state.row(task_id, i) for i in range(100)] == before
    assert sim.state.total(task_id) == 600
    new_today = [
        sim.state.truth(task_id, i)
        for i in range(100, 600)
        if sim.state.truth(task_id, i).publish_format == "today"
    ]
    assert new_today and all(t.publish_date == now[0].date() for t in new_today)
