"""Hostile rows over HTTP: every kind shows up, and its truth says what the served bytes hold.

The truth is checked against an independent reading of the body: Python's json where it can
parse (with the policy's reading of NaN, lone surrogates and huge integers), raw bytes where not.
"""

import hashlib
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from jobstream.simulator import HOSTILE_KINDS, RowGenerator, RowOptions
from jobstream.simulator.__main__ import config_from_args, parse_args
from jobstream.simulator.date_formats import SHANGHAI
from tests.functional.test_simulator_rows import oracle_collect, oracle_publish

HOSTILE = RowOptions(hostile_ratio=0.05)
TEXT_FIELDS = {
    "job_category": "Std_class",
    "job_title": "aca112",
    "company": "AAB004",
    "salary": "acb241",
    "location": "aab302",
    "url": "ACE760",
    "description": "acb22a",
    "experience": "Experience",
    "education": "aac011",
}
DATE_FIELDS = ("aae397", "Collect_time")
# Kafka's default largest message: a row above it cannot be published whole.
KAFKA_MAX_BYTES = 1_048_576
# What each kind must show in the raw body, where json.loads hides or refuses it.
RAW_SIGNS = {
    "invalid_utf8": [b"\xff\xfe", b"\x80"],
    "lone_surrogate": [b"\\ud800", b"\\udc00", b"\\ud83d\\ude00"],
    "text_nan": [b": NaN", b": Infinity", b": -Infinity"],
    "huge_int": [b": " + b"9876543210" * 500],
    "deep_nesting": [b"[" * 5000 + b"]" * 5000],
}
# Digests of pages served before hostile rows existed (seed 0, FIXED_NOW, 2000 rows), requestId
# blanked: a task without hostile rows must keep serving these exact bytes.
GOLDEN_PAGES = {
    (0, 257): "88257d826704439192689b44e5bbd67103187a51c3cd94243f0a188891efab95",
    (0, 1000): "5a493812c5209229b1ddea37a561e034c3902f752115a48ad8d2272bf22f9e0b",
}


def blank_request_id(body: bytes) -> bytes:
    return re.sub(rb'"requestId": "[0-9a-f-]{36}"', b'"requestId": "-"', body)


def fix_surrogates(value: Any) -> Any:
    """Lone surrogates (json.loads keeps them) as U+FFFD; pairs were already joined."""
    if isinstance(value, str):
        return re.sub("[\ud800-\udfff]", "\ufffd", value)
    if isinstance(value, list):
        return [fix_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {fix_surrogates(k): fix_surrogates(v) for k, v in value.items()}
    return value


def read_body(body: bytes) -> dict[str, Any]:
    """A page read the policy's way: bytes decoded with replacement, NaN and Infinity as null,
    an integer too long for int() kept as its digits. Deep nesting still raises RecursionError."""
    text = body.decode("utf-8", errors="replace")
    page = json.loads(
        text,
        parse_constant=lambda _: None,
        parse_int=lambda digits: int(digits) if len(digits) <= 4300 else digits,
    )
    return dict(fix_surrogates(page))


def oracle_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def oracle_date(field: str, value: Any, now: datetime) -> date | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int):
        digits = len(str(value))
        if digits in (10, 13):
            return datetime.fromtimestamp(value / 1000 ** (digits == 13), SHANGHAI).date()
        if digits == 8:
            return date(value // 10000, value // 100 % 100, value % 100)
        return None
    if not isinstance(value, str):
        return None
    if field == "aae397":
        return oracle_publish(value, now)
    try:
        return oracle_collect(value)
    except ValueError:
        return None


def oracle_fate(row: Any, now: datetime) -> tuple[str, str | None]:
    """(expect, field at fault) for one parsed row, by the pipeline's policy."""
    if not isinstance(row, dict):
        return "rejected", "row"
    for field in DATE_FIELDS:
        if oracle_date(field, row.get(field), now) is None:
            return "rejected", field
    if len(json.dumps(row, ensure_ascii=False).encode()) > KAFKA_MAX_BYTES:
        return "rejected", "row"
    days = [oracle_date(f, row[f], now) for f in DATE_FIELDS]
    oldest = now.date() - timedelta(days=7)
    return ("published", None) if min(days) >= oldest else ("filtered", None)  # type: ignore[type-var]


async def test_simulator_hostile_2000_rows_at_5_percent_hold_every_kind_several_times(
    make_sim, make_api
):
    sim = await make_sim(total=2000, rows=HOSTILE)
    truths = await make_api(sim).truth(0, 2000)

    kinds = Counter(t["hostile"] for t in truths if t["hostile"])
    assert set(kinds) == set(HOSTILE_KINDS) and min(kinds.values()) >= 2
    assert sum(kinds.values()) == 100
    for kind in (k for k in HOSTILE_KINDS if k.startswith("date_")):
        spoiled = {
            "aae397" if t["publish_format"].startswith("hostile_") else "Collect_time"
            for t in truths
            if t["hostile"] == kind
        }
        assert spoiled == set(DATE_FIELDS), kind  # each date field spoiled somewhere
    normal = [t for t in truths if not t["hostile"]]
    assert all(t["expect"] is None and t["expect_field"] is None for t in normal)
    assert all(t["expect_text"] is not None for t in normal)


async def test_simulator_hostile_truth_matches_what_the_body_holds(make_sim, make_api, fixed_now):
    sim = await make_sim(total=2000, rows=HOSTILE)
    api = make_api(sim)
    truths = [t for t in await api.truth(0, 2000) if t["hostile"]]

    checked: Counter[str] = Counter()
    for truth in truths:
        i, kind = truth["index"], truth["hostile"]
        body = await api.page(i, 1)
        for sign in RAW_SIGNS.get(kind, []):
            assert sign in body, (i, kind, sign)
        try:
            row = read_body(body)["data"]["data"][0]
        except RecursionError:
            assert kind == "deep_nesting"
            assert (truth["expect"], truth["expect_field"]) == ("rejected", "row")
            checked[kind] += 1
            continue
        fate = oracle_fate(row, fixed_now)
        assert (truth["expect"], truth["expect_field"]) == fate, (i, kind)
        if isinstance(row, dict):
            for field, key in (("aae397", "publish_date"), ("Collect_time", "collect_date")):
                day = oracle_date(field, row.get(field), fixed_now)
                assert truth[key] == (day and day.isoformat()), (i, kind, field)
        if fate[0] == "rejected":
            assert truth["expect_text"] is None
        else:
            text = {out: oracle_text(row.get(src)) for out, src in TEXT_FIELDS.items()}
            assert truth["expect_text"] == text, (i, kind)
        checked[kind] += 1
    assert set(checked) == set(HOSTILE_KINDS)


async def test_simulator_hostile_rows_spell_out_each_policy_case(make_sim, make_api):
    sim = await make_sim(total=2000, rows=HOSTILE)
    truths = await make_api(sim).truth(0, 2000)
    by_kind = {t["hostile"]: t for t in truths}

    assert by_kind["publish_far_future"]["publish_date"] == "2099-01-01"
    assert by_kind["publish_far_future"]["expect"] == "published"
    assert by_kind["far_past"]["expect"] == "filtered"
    assert by_kind["lone_surrogate"]["expect_text"]["description"] == "截断\ufffd的描述\ufffd\ufffd"
    assert by_kind["lone_surrogate"]["expect_text"]["company"].startswith("😀")
    assert by_kind["invalid_utf8"]["expect_text"]["job_title"].endswith("\ufffd\ufffd")
    assert by_kind["text_nan"]["expect_text"]["salary"] == ""
    assert by_kind["huge_int"]["expect_text"]["salary"] == ("9876543210" * 500)
    assert by_kind["html"]["expect_text"]["job_title"] == '<script>alert("x")</script>'
    assert by_kind["control_chars"]["expect_text"]["experience"] == "\x00"
    assert by_kind["text_containers"]["expect_text"]["location"] == '{"区":"黄岛区","城市":"青岛"}'
    assert by_kind["duplicate_keys"]["expect"] == "published"
    description = by_kind["description_200kb"]["expect_text"]["description"]
    assert (
        len(description.encode()) >= 200_000
        and by_kind["description_1_2mb"]["expect"] == "rejected"
    )


async def test_simulator_deep_nesting_page_serves_its_other_rows_with_smaller_sizes(
    make_sim, make_api
):
    sim = await make_sim(total=2000, rows=HOSTILE)
    api = make_api(sim)
    deep = next(t["index"] for t in await api.truth(0, 2000) if t["hostile"] == "deep_nesting")
    start = deep - deep % 100

    with pytest.raises(RecursionError):
        read_body(await api.page(start, 100))
    before = read_body(await api.page(start, deep - start))["data"]
    after = read_body(await api.page(deep + 1, start + 99 - deep))["data"]
    alone = await api.page(deep, 1)

    assert len(before["data"]) == deep - start and before["offset"] == deep
    assert len(after["data"]) == start + 99 - deep and after["offset"] == start + 100
    assert alone.startswith(b'{"data": {"total": 2000, "offset": %d, ' % (deep + 1))


async def test_simulator_page_without_hostile_rows_serves_the_same_bytes_as_before(
    make_sim, make_api
):
    plain = make_api(await make_sim(total=2000))
    for (offset, size), digest in GOLDEN_PAGES.items():
        body = blank_request_id(await plain.page(offset, size))
        assert hashlib.sha256(body).hexdigest() == digest

    hostile = make_api(await make_sim(total=2000, rows=HOSTILE))
    spots = [t["index"] for t in await hostile.truth(0, 2000) if t["hostile"]]
    first, second = spots[:2]
    between = [
        blank_request_id(await api.page(first + 1, second - first - 1)) for api in (plain, hostile)
    ]
    assert between[0] == between[1]


def test_simulator_normal_rows_do_not_change_with_the_hostile_ratio(fixed_now):
    plain = RowGenerator("t", fixed_now)
    hostile = RowGenerator("t", fixed_now, HOSTILE)
    pairs = [(hostile.generate(i), plain.generate(i)) for i in range(1000)]
    normal = [(h, p) for h, p in pairs if not h[1].hostile]
    assert len(normal) == 950
    assert all(h == p for h, p in normal)


async def test_simulator_normal_row_truth_states_its_published_text(make_sim, make_api):
    sim = await make_sim()
    api = make_api(sim)
    rows = read_body(await api.page(0, 257))["data"]["data"]
    for row, truth in zip(rows, await api.truth(0, 257), strict=True):
        text = {out: oracle_text(row.get(src)) for out, src in TEXT_FIELDS.items()}
        assert truth["expect_text"] == text
        assert truth["hostile"] == "" and truth["expect"] is None


@pytest.mark.parametrize("chars", [1500, 200])
async def test_simulator_description_chars_gives_descriptions_of_about_n_chars(
    make_sim, make_api, chars
):
    long = make_api(await make_sim(total=300, rows=RowOptions(description_chars=chars)))
    short = make_api(await make_sim(total=300))
    rows = read_body(await long.page(0, 300))["data"]["data"]
    plain = read_body(await short.page(0, 300))["data"]["data"]

    descriptions = [r["acb22a"] for r in rows if r.get("acb22a")]
    assert len(descriptions) >= 290  # a few rows lose the field on purpose (noise)
    assert all(0.9 * chars <= len(d) <= 1.1 * chars for d in descriptions)
    assert len(set(descriptions)) == len(descriptions)
    assert sum("【岗位职责】" in d for d in descriptions) == len(descriptions)
    without = [{k: v for k, v in r.items() if k != "acb22a"} for r in rows]
    assert without == [{k: v for k, v in r.items() if k != "acb22a"} for r in plain]


def test_simulator_cli_hostile_and_description_options_reach_row_options():
    config = config_from_args(
        parse_args(["--hostile-ratio", "0.05", "--description-chars", "1500"])
    )
    assert (config.rows.hostile_ratio, config.rows.description_chars) == (0.05, 1500)


@pytest.mark.parametrize("options", [{"hostile_ratio": 1.5}, {"description_chars": -1}])
def test_simulator_row_options_out_of_range_raise(options):
    with pytest.raises(ValueError):
        RowOptions(**options)


def test_simulator_every_row_hostile_at_ratio_one_cycles_the_kinds(fixed_now):
    gen = RowGenerator("t", fixed_now, RowOptions(hostile_ratio=1))
    kinds = [gen.truth(i).hostile for i in range(2 * len(HOSTILE_KINDS))]
    assert Counter(kinds) == dict.fromkeys(HOSTILE_KINDS, 2)
