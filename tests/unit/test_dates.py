"""parse_publish_date (aae397) and parse_collect_date (Collect_time): every format, the year rule,
relative dates across midnight, zones, junk."""

import calendar
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstream.errors import DateParseError
from jobstream.transform.dates import parse_collect_date, parse_publish_date, recent_month_day

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 1, 15, 10, 30, tzinfo=SHANGHAI)  # the seed's example day
MS_2026_01_15_1030_SHANGHAI = 1768444200000


def d(text: str) -> date:
    return date.fromisoformat(text)


# ---------------------------------------------------------------- publish date: every format
PUBLISH_CASES = [
    # words
    ("今天", "2026-01-15"),
    ("今日", "2026-01-15"),
    ("刚刚", "2026-01-15"),
    ("刚才", "2026-01-15"),
    ("昨天", "2026-01-14"),
    ("昨日", "2026-01-14"),
    ("前天", "2026-01-13"),
    ("大前天", "2026-01-12"),
    ("半小时前", "2026-01-15"),
    # relative
    ("5分钟前", "2026-01-15"),
    ("10分前", "2026-01-15"),
    ("30秒前", "2026-01-15"),
    ("3小时前", "2026-01-15"),
    ("3个小时前", "2026-01-15"),
    ("10小时前", "2026-01-15"),
    ("11小时前", "2026-01-14"),
    ("0天前", "2026-01-15"),
    ("1天前", "2026-01-14"),
    ("3天前", "2026-01-12"),
    ("8天前", "2026-01-07"),
    ("3 天前", "2026-01-12"),
    ("3天以前", "2026-01-12"),
    ("2周前", "2026-01-01"),
    ("1个星期前", "2026-01-08"),
    ("1个月前", "2025-12-15"),
    ("1年前", "2025-01-15"),
    # month-day (year rule) -- seed §5.2's own examples first
    ("1月13日", "2026-01-13"),
    ("1月9日", "2026-01-09"),
    ("01月09日", "2026-01-09"),
    ("1月15日", "2026-01-15"),
    ("1月16日", "2025-01-16"),
    ("12月30日", "2025-12-30"),
    ("1月13号", "2026-01-13"),
    ("01-13", "2026-01-13"),
    ("1-13", "2026-01-13"),
    ("01/13", "2026-01-13"),
    ("01.13", "2026-01-13"),
    ("2月29日", "2024-02-29"),
    # full dates
    ("2026-01-13", "2026-01-13"),
    ("2026/1/13", "2026-01-13"),
    ("2026/01/13", "2026-01-13"),
    ("2026.1.13", "2026-01-13"),
    ("2026年1月13日", "2026-01-13"),
    ("2026年01月13日", "2026-01-13"),
    ("2026 年 1 月 13 日", "2026-01-13"),
    ("2025-12-31", "2025-12-31"),
    ("2027-03-01", "2027-03-01"),  # the future is parsed as written; the window decides
    # prefixes, suffixes, whitespace
    ("发布于1月13日", "2026-01-13"),
    ("更新于 2026-01-13", "2026-01-13"),
    ("发布时间：2026-01-13", "2026-01-13"),
    ("发布时间: 01-13", "2026-01-13"),
    ("发布日期 2026/1/13", "2026-01-13"),
    ("更新时间：3天前", "2026-01-12"),
    ("刷新于昨天", "2026-01-14"),
    ("3天前发布", "2026-01-12"),
    ("今天发布", "2026-01-15"),
    ("  今天  ", "2026-01-15"),
    ("\t3天前\n", "2026-01-12"),
    # full-width digits and punctuation, ideographic space
    ("１月１３日", "2026-01-13"),
    ("２０２６－０１－１３", "2026-01-13"),
    ("３天前", "2026-01-12"),
    ("发布于\u30002026年1月13日", "2026-01-13"),
    ("发布时间：０１－１３", "2026-01-13"),
    # with a time of day
    ("2026-01-13 10:30", "2026-01-13"),
    ("2026-01-13 10:30:59", "2026-01-13"),
    ("2026-01-13T10:30:00", "2026-01-13"),
    ("01-13 18:20", "2026-01-13"),
    ("1月13日 18:20", "2026-01-13"),
    ("今天 09:00", "2026-01-15"),
    ("昨天 23:59", "2026-01-14"),
    # aware values are converted into now's zone; epoch milliseconds too
    ("2026-01-14T20:00:00Z", "2026-01-15"),
    ("2026-01-14T15:59:59Z", "2026-01-14"),
    ("2026-01-14T16:00:00+00:00", "2026-01-15"),
    (MS_2026_01_15_1030_SHANGHAI, "2026-01-15"),
    (str(MS_2026_01_15_1030_SHANGHAI), "2026-01-15"),
    ("20260113", "2026-01-13"),
]


@pytest.mark.parametrize(("value", "expected"), PUBLISH_CASES)
def test_parse_publish_date_known_format_expected_day(value: object, expected: str) -> None:
    assert parse_publish_date(value, NOW) == d(expected)


YEAR_RULE_CASES = [
    # (today, value, expected)
    ("2027-01-03", "12月30日", "2026-12-30"),  # bazhuayu-api.md's example
    ("2027-01-03", "12-30", "2026-12-30"),
    ("2026-01-15", "1月15日", "2026-01-15"),  # today itself is this year
    ("2026-01-15", "1月16日", "2025-01-16"),  # tomorrow is last year
    ("2026-12-31", "1月1日", "2026-01-01"),
    ("2026-01-01", "12月31日", "2025-12-31"),
    ("2026-01-15", "2月29日", "2024-02-29"),  # most recent Feb 29
    ("2024-02-29", "2月29日", "2024-02-29"),
    ("2024-02-28", "2月29日", "2020-02-29"),
    ("2024-03-01", "2月29日", "2024-02-29"),
    ("2101-01-01", "2月29日", "2096-02-29"),  # 2100 is not a leap year
    ("2104-02-28", "2月29日", "2096-02-29"),  # the longest gap: 8 years
]


@pytest.mark.parametrize(("today", "value", "expected"), YEAR_RULE_CASES)
def test_parse_publish_date_month_day_most_recent_not_after_today(
    today: str, value: str, expected: str
) -> None:
    now = datetime.combine(d(today), time(12), SHANGHAI)
    assert parse_publish_date(value, now) == d(expected)


MIDNIGHT_CASES = [
    # (now in Shanghai, value, expected)
    ("2026-01-15T00:30", "1小时前", "2026-01-14"),
    ("2026-01-15T00:30", "30分钟前", "2026-01-15"),
    ("2026-01-15T00:30", "31分钟前", "2026-01-14"),
    ("2026-01-15T00:30", "半小时前", "2026-01-15"),
    ("2026-01-15T00:29", "半小时前", "2026-01-14"),
    ("2026-01-15T00:00", "1秒前", "2026-01-14"),
    ("2026-01-15T23:59", "23小时前", "2026-01-15"),
    ("2026-01-15T23:59", "24小时前", "2026-01-14"),
    ("2026-01-15T10:30", "48小时前", "2026-01-13"),
    ("2026-01-01T00:10", "1小时前", "2025-12-31"),  # across the new year too
    ("2026-01-15T00:30", "1天前", "2026-01-14"),  # days are calendar days, not 24 h
    ("2026-01-15T23:30", "1天前", "2026-01-14"),
]


@pytest.mark.parametrize(("now", "value", "expected"), MIDNIGHT_CASES)
def test_parse_publish_date_relative_across_midnight_previous_day(
    now: str, value: str, expected: str
) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=SHANGHAI)
    assert parse_publish_date(value, moment) == d(expected)


def test_parse_publish_date_hours_ago_over_dst_change_counts_real_hours() -> None:
    new_york = ZoneInfo("America/New_York")
    # 2026-03-08 03:30 EDT; 02:00-03:00 did not exist that night: 2 real hours ago is 00:30 EST.
    now = datetime(2026, 3, 8, 3, 30, tzinfo=new_york)
    assert parse_publish_date("2小时前", now) == date(2026, 3, 8)
    assert parse_publish_date("4小时前", now) == date(2026, 3, 7)


PUBLISH_JUNK: list[object] = [
    "面议",
    "",
    "   ",
    None,
    "abc",
    "发布于",
    "13月1日",
    "2月30日",
    "0月1日",
    "1月0日",
    "2026-02-30",
    "2026-13-01",
    "2026-01-13 25:00",
    "1月13日 10:61",
    "2026-01",
    "2026",
    "123",
    "1234567天前",
    "999999天前",
    "天前",
    "3天后",
    "x" * 10_000,
    3.5,
    True,
    [],
    {"date": "2026-01-13"},
    -1,
    123,
]


@pytest.mark.parametrize("value", PUBLISH_JUNK, ids=lambda v: repr(v)[:20])
def test_parse_publish_date_junk_raises_date_parse_error(value: object) -> None:
    with pytest.raises(DateParseError):
        parse_publish_date(value, NOW)


def test_parse_publish_date_junk_reason_names_value() -> None:
    with pytest.raises(DateParseError, match="面议"):
        parse_publish_date("面议", NOW)


def test_parse_publish_date_long_junk_reason_truncated() -> None:
    with pytest.raises(DateParseError) as caught:
        parse_publish_date("面议" * 500, NOW)
    assert len(str(caught.value)) < 100


def test_parse_publish_date_naive_now_raises_value_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_publish_date("今天", datetime(2026, 1, 15))


# ---------------------------------------------------------------- collect date: every format
COLLECT_CASES = [
    ("2026-01-15 10:30:00", "2026-01-15"),
    ("2026-01-15 00:00:00", "2026-01-15"),
    ("2026-01-15 23:59:59", "2026-01-15"),
    ("2026/1/15 10:30", "2026-01-15"),
    ("2026/01/15 10:30:00", "2026-01-15"),
    ("2026-1-5 8:05", "2026-01-05"),
    ("  2026-01-15 10:30:00\n", "2026-01-15"),
    ("2026年1月15日 10:30", "2026-01-15"),
    ("２０２６－０１－１５ １０：３０：００", "2026-01-15"),
    # date alone
    ("2026-01-15", "2026-01-15"),
    ("2026/1/15", "2026-01-15"),
    ("2026年1月15日", "2026-01-15"),
    ("20260115", "2026-01-15"),
    # ISO 8601 with T: naive is local, an offset is converted into Shanghai
    ("2026-01-15T10:30:00", "2026-01-15"),
    ("2026-01-15T23:30:00", "2026-01-15"),
    ("2026-01-15T10:30:00.123456", "2026-01-15"),
    ("2026-01-15T10:30:00+08:00", "2026-01-15"),
    ("2026-01-15T10:30:00+0800", "2026-01-15"),
    ("2026-01-15T10:30:00+08", "2026-01-15"),
    ("2026-01-14T16:30:00Z", "2026-01-15"),
    ("2026-01-14T15:59:59Z", "2026-01-14"),
    ("2026-01-14T16:00:00Z", "2026-01-15"),
    ("2026-01-14T16:00:00.000Z", "2026-01-15"),
    ("2026-01-15T01:00:00+09:00", "2026-01-15"),
    ("2026-01-14T10:00:00-06:00", "2026-01-15"),
    ("2026-01-15 10:30:00 +0000", "2026-01-15"),
    ("2026-01-15 18:30:00 +0000", "2026-01-16"),
    # epoch
    (MS_2026_01_15_1030_SHANGHAI, "2026-01-15"),
    (str(MS_2026_01_15_1030_SHANGHAI), "2026-01-15"),
    (MS_2026_01_15_1030_SHANGHAI // 1000, "2026-01-15"),
    # rare shapes: dateutil fallback
    ("20260115T103000+0800", "2026-01-15"),
    ("2026-W03-4", "2026-01-15"),
    ("Thu Jan 15 10:30:00 CST 2026", "2026-01-15"),
    ("Wed, 14 Jan 2026 16:30:00 GMT", "2026-01-15"),
    ("2026-01-14 20:00:00 UTC+8", "2026-01-14"),  # +08:00, not dateutil's POSIX reading
    ("2026-01-14 20:00:00 GMT+0800", "2026-01-14"),
    ("Thu Jan 15 2026 10:30:00 GMT+0800 (中国标准时间)", "2026-01-15"),
    ("1/15/2026 10:30:00 PM", "2026-01-15"),
    ("Jan 15, 2026", "2026-01-15"),
]


@pytest.mark.parametrize(("value", "expected"), COLLECT_CASES)
def test_parse_collect_date_known_format_expected_day(value: object, expected: str) -> None:
    assert parse_collect_date(value, SHANGHAI) == d(expected)


@pytest.mark.parametrize(
    ("zone", "expected"), [(SHANGHAI, "2026-01-15"), (UTC, "2026-01-14")], ids=["shanghai", "utc"]
)
def test_parse_collect_date_epoch_ms_at_day_boundary_depends_on_zone(
    zone: tzinfo, expected: str
) -> None:
    midnight_shanghai = datetime(2026, 1, 15, tzinfo=SHANGHAI)
    ms = int(midnight_shanghai.timestamp()) * 1000
    assert parse_collect_date(ms, zone) == d(expected)
    assert parse_collect_date(str(ms), zone) == d(expected)
    assert parse_collect_date(ms - 1, SHANGHAI) == date(2026, 1, 14)  # one ms before midnight


@pytest.mark.parametrize(
    ("zone", "expected"), [(SHANGHAI, "2026-01-15"), (UTC, "2026-01-14")], ids=["shanghai", "utc"]
)
def test_parse_collect_date_iso_with_z_converted_to_zone(zone: tzinfo, expected: str) -> None:
    assert parse_collect_date("2026-01-14T18:00:00Z", zone) == d(expected)


@pytest.mark.parametrize("zone", [SHANGHAI, UTC], ids=["shanghai", "utc"])
def test_parse_collect_date_naive_iso_taken_as_local(zone: tzinfo) -> None:
    assert parse_collect_date("2026-01-14T23:30:00", zone) == date(2026, 1, 14)


COLLECT_JUNK: list[object] = [
    "面议",
    "",
    "  ",
    None,
    "今天",  # relative forms belong to the publish date only
    "3天前",
    "01-15",
    "10:30",
    "2026",
    "2026-01",
    "2026-13-01",
    "2026-02-30",
    "2026-01-15 24:00:00",
    "2026-01-15 10:60",
    "2026-01-15T10:30:00+25:00",
    "2026-01-15 10:30 PST",  # a zone name we cannot place
    "0001-01-01T00:00:00+01:00",  # before the first representable day in UTC+8
    "00010101T000000+0100",
    "99991231T235959-0100",
    "12345",
    "123456789012",
    "x" * 100,
    12345,
    -1768444200000,
    10**30,
    True,
    1.5,
    [],
    {"a": 1},
]


@pytest.mark.parametrize("value", COLLECT_JUNK, ids=lambda v: repr(v)[:20])
def test_parse_collect_date_junk_raises_date_parse_error(value: object) -> None:
    with pytest.raises(DateParseError):
        parse_collect_date(value, SHANGHAI)


def test_parse_collect_date_junk_reason_names_value() -> None:
    with pytest.raises(DateParseError, match="not a date"):
        parse_collect_date("not a date", SHANGHAI)


# ---------------------------------------------------------------- properties
TODAYS = st.dates(date(2000, 1, 1), date(2100, 12, 31))
MONTH_DAYS = st.tuples(st.integers(1, 12), st.integers(1, 31)).filter(
    lambda md: md[1] <= calendar.monthrange(2024, md[0])[1]
)


def noon(today: date) -> datetime:
    return datetime.combine(today, time(12), SHANGHAI)


def next_occurrence(day: date) -> date:
    """The first date after `day` with the same month and day."""
    year = day.year + 1
    while day.month == 2 and day.day == 29 and not calendar.isleap(year):
        year += 1
    return date(year, day.month, day.day)


@given(today=TODAYS, month_day=MONTH_DAYS)
def test_parse_publish_date_month_day_property_most_recent_not_after_today(
    today: date, month_day: tuple[int, int]
) -> None:
    month, day = month_day
    result = parse_publish_date(f"{month}月{day}日", noon(today))
    assert (result.month, result.day) == (month, day)
    assert result <= today
    assert next_occurrence(result) > today  # the most recent one
    if (month, day) != (2, 29):
        assert (today - result).days < 366  # within the last year
    else:
        assert calendar.isleap(result.year)
        assert (today - result).days < 8 * 366
    assert parse_publish_date(f"{month:02d}-{day:02d}", noon(today)) == result
    assert recent_month_day(month, day, today) == result


@given(today=TODAYS, back=st.integers(0, 364))
def test_parse_publish_date_month_day_property_recent_day_round_trips(
    today: date, back: int
) -> None:
    day = today - timedelta(days=back)
    for text in (f"{day.month}月{day.day}日", f"{day.month:02d}-{day.day:02d}", f"{day:%m/%d}"):
        assert parse_publish_date(text, noon(today)) == day


@given(day=st.dates(date(1900, 1, 1), date(2200, 12, 31)), today=TODAYS)
def test_parse_publish_date_full_date_property_round_trips(day: date, today: date) -> None:
    texts = (day.isoformat(), f"{day.year}/{day.month}/{day.day}", f"{day:%Y年%m月%d日}")
    for text in texts:
        assert parse_publish_date(text, noon(today)) == day
        assert parse_publish_date(f"发布于{text}", noon(today)) == day
        assert parse_collect_date(text, SHANGHAI) == day
        assert parse_collect_date(f"{text} 23:59:59", SHANGHAI) == day


@given(
    now=st.datetimes(datetime(2000, 1, 1), datetime(2100, 12, 31), timezones=st.just(SHANGHAI)),
    hours=st.integers(0, 10_000),
    minutes=st.integers(0, 100_000),
)
def test_parse_publish_date_elapsed_property_matches_clock_arithmetic(
    now: datetime, hours: int, minutes: int
) -> None:
    assert parse_publish_date(f"{hours}小时前", now) == (now - timedelta(hours=hours)).date()
    assert parse_publish_date(f"{minutes}分钟前", now) == (now - timedelta(minutes=minutes)).date()


@given(
    now=st.datetimes(datetime(2000, 1, 1), datetime(2100, 12, 31), timezones=st.just(SHANGHAI)),
    days=st.integers(0, 5_000),
)
def test_parse_publish_date_days_ago_property_calendar_days(now: datetime, days: int) -> None:
    assert parse_publish_date(f"{days}天前", now) == now.date() - timedelta(days=days)


@given(ms=st.integers(10**12, 10**13 - 1), zone=st.sampled_from([SHANGHAI, UTC]))
def test_parse_collect_date_epoch_ms_property_matches_fromtimestamp(ms: int, zone: tzinfo) -> None:
    expected = datetime.fromtimestamp(ms / 1000, zone).date()
    assert parse_collect_date(ms, zone) == expected
    assert parse_collect_date(str(ms), zone) == expected


@given(
    moment=st.datetimes(
        datetime(1900, 1, 1),
        datetime(2200, 12, 31),
        timezones=st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    ),
    zone=st.sampled_from([SHANGHAI, UTC]),
    sep=st.sampled_from(["T", " "]),
)
def test_parse_collect_date_aware_iso_property_converted_to_zone(
    moment: datetime, zone: tzinfo, sep: str
) -> None:
    text = moment.isoformat(sep=sep)
    assert parse_collect_date(text, zone) == moment.astimezone(zone).date()
    assert parse_collect_date(text.replace("+00:00", "Z"), zone) == moment.astimezone(zone).date()


@given(value=st.text(max_size=40))
def test_parse_publish_date_any_text_property_day_or_date_parse_error(value: str) -> None:
    try:
        parse_publish_date(value, NOW)
    except DateParseError:
        pass


@given(value=st.text(alphabet="0123456789-/:. T年月日天前小时分钟今昨Z+", max_size=25))
def test_parse_dates_near_miss_text_property_day_or_date_parse_error(value: str) -> None:
    for parse in (lambda: parse_publish_date(value, NOW), lambda: parse_collect_date(value, UTC)):
        try:
            parse()
        except DateParseError:
            pass


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)


@given(value=st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=5))
def test_parse_collect_date_any_json_property_day_or_date_parse_error(value: object) -> None:
    try:
        parse_collect_date(value, SHANGHAI)
    except DateParseError:
        pass
    try:
        parse_publish_date(value, NOW)
    except DateParseError:
        pass


@given(today=TODAYS)
def test_parse_publish_date_words_property_fixed_offsets(today: date) -> None:
    now = noon(today)
    assert parse_publish_date("今天", now) == today
    assert parse_publish_date("昨天", now) == today - timedelta(days=1)
    assert parse_publish_date("前天", now) == today - timedelta(days=2)
    assert parse_publish_date("1年前", now) < today


@given(
    moment=st.datetimes(
        datetime(1, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    ),
    zone=st.sampled_from([SHANGHAI, UTC]),
    shape=st.sampled_from(["%Y-%m-%dT%H:%M:%S%z", "%Y%m%dT%H%M%S%z", "%Y-%m-%d %H:%M:%S %z"]),
)
def test_parse_collect_date_full_range_property_day_or_date_parse_error(
    moment: datetime, zone: tzinfo, shape: str
) -> None:
    text = f"{moment.year:04d}" + moment.strftime(shape.removeprefix("%Y"))
    try:
        expected = moment.astimezone(zone).date()
    except OverflowError:
        with pytest.raises(DateParseError):
            parse_collect_date(text, zone)
        return
    assert parse_collect_date(text, zone) == expected
