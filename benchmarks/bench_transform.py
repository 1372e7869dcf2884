"""Throughput of jobstream.transform on realistic rows: prints numbers, asserts nothing.

    python -m benchmarks.bench_transform [--rows 200000] [--repeat 3] [--seed 7]

(from the repository root; or `python benchmarks/bench_transform.py` once jobstream is installed).
Rows are generated in memory with the date shapes of bazhuayu-api.md in plausible proportions,
dates spread over the last two weeks so that the 7-day rule keeps about half of them.
"""

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jobstream.transform.dates import parse_collect_date, parse_publish_date
from jobstream.transform.outcome import Kept, RowContext, classify_row

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 1, 15, 10, 30, tzinfo=ZONE)
TODAY = NOW.date()

TITLES = ["港内A2驾驶员", "仓库管理员", "Java开发工程师", "销售代表", "会计", "普工", "客服专员"]
COMPANIES = ["青岛唐盛物流有限公司", "上海某某科技有限公司", "深圳市某电子厂", "北京某咨询公司"]
CITIES = ["青岛黄岛区", "上海浦东新区", "深圳宝安区", "北京朝阳区", "成都高新区"]
SALARIES = ["1-1.5万", "6000-8000元", "面议", "8-12K", "4500元/月"]


PUBLISH_SHAPES, PUBLISH_WEIGHTS = zip(
    *{
        "word": 28, "hours": 10, "minutes": 3, "days": 14, "md_cn": 20, "md_dash": 7,
        "iso": 8, "slash": 3, "cn": 3, "prefixed": 3, "junk": 1,
    }.items(),
    strict=True,
)  # fmt: skip


def publish_value(rng: random.Random) -> object:
    """One aae397 value; weights are a guess at what job boards show."""
    day = TODAY - timedelta(days=rng.randint(0, 14))
    shape = rng.choices(PUBLISH_SHAPES, weights=PUBLISH_WEIGHTS)[0]
    match shape:
        case "word":
            return rng.choice(["今天", "昨天", "前天", "刚刚"])
        case "hours":
            return f"{rng.randint(1, 23)}小时前"
        case "minutes":
            return f"{rng.randint(1, 59)}分钟前"
        case "days":
            return f"{rng.randint(1, 14)}天前"
        case "md_cn":
            return f"{day.month}月{day.day}日"
        case "md_dash":
            return f"{day:%m-%d}"
        case "iso":
            return day.isoformat()
        case "slash":
            return f"{day.year}/{day.month}/{day.day}"
        case "cn":
            return f"{day.year}年{day.month}月{day.day}日"
        case "prefixed":
            return rng.choice(["发布于", "更新于", "发布时间："]) + f"{day.month}月{day.day}日"
        case _:
            return rng.choice(["面议", "", None])


def collect_value(rng: random.Random) -> object:
    """One Collect_time value, mostly `YYYY-MM-DD HH:MM:SS` as the API documents."""
    moment = NOW - timedelta(seconds=rng.randint(0, 14 * 86400))
    shape = rng.choices(
        ["plain", "slash", "iso_offset", "iso_z", "ms_int", "ms_str"],
        weights=[80, 8, 4, 3, 3, 2],
    )[0]
    match shape:
        case "plain":
            return f"{moment:%Y-%m-%d %H:%M:%S}"
        case "slash":
            return f"{moment.year}/{moment.month}/{moment.day} {moment:%H:%M}"
        case "iso_offset":
            return moment.isoformat(timespec="seconds")
        case "iso_z":
            return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
        case "ms_int":
            return int(moment.timestamp() * 1000)
        case _:
            return str(int(moment.timestamp() * 1000))


def make_rows(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        rows.append(
            {
                "Std_class": "机动车司机/驾驶",
                "aca112": rng.choice(TITLES),
                "AAB004": rng.choice(COMPANIES),
                "acb241": rng.choice(SALARIES),
                "aab302": rng.choice(CITIES),
                "aae397": publish_value(rng),
                "Collect_time": collect_value(rng),
                # one row in ten has no URL: its id comes from the content
                "ACE760": "" if index % 10 == 0 else f"https://jobs.example.com/job/{index}.htm",
                "acb22a": "岗位职责：\n1. 按时完成工作\n2. 遵守公司制度\n" * rng.randint(1, 20),
                "Experience": rng.choice(["1-3年", "3-5年", "经验不限"]),
                "aac011": rng.choice(["大专", "本科", "学历不限"]),
            }
        )
    return rows


def rate(label: str, count: int, run: Callable[[], object], repeat: int) -> None:
    seconds = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    best, median = min(seconds), statistics.median(seconds)
    print(f"{label:<34} {count / best:>12,.0f}/s best   {count / median:>12,.0f}/s median")


def parse_all_publish(values: Sequence[object]) -> int:
    failures = 0
    for value in values:
        try:
            parse_publish_date(value, NOW)
        except ValueError:
            failures += 1
    return failures


def parse_all_collect(values: Sequence[object]) -> int:
    failures = 0
    for value in values:
        try:
            parse_collect_date(value, ZONE)
        except ValueError:
            failures += 1
    return failures


def classify_stream(rows: Sequence[dict[str, Any]], ctx: RowContext) -> Counter[str]:
    """One row at a time, outcomes dropped after counting: the pipeline's shape."""
    kinds: Counter[str] = Counter()
    for offset, row in enumerate(rows):
        outcome = classify_row(row, offset, ctx)
        kinds[type(outcome).__name__] += 1
        if isinstance(outcome, Kept) and outcome.suspicious_future:
            kinds["suspicious_future"] += 1
    return kinds


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rows", type=int, default=200_000)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--seed", type=int, default=7)
    args = options.parse_args()

    started = time.perf_counter()
    rows = make_rows(args.rows, args.seed)
    print(f"generated {len(rows):,} rows in {time.perf_counter() - started:.1f}s (today {TODAY})")
    publish = [row["aae397"] for row in rows]
    collect = [row["Collect_time"] for row in rows]
    ctx = RowContext(task_id="bench", now=NOW, filter_days=7, demo=True)

    common_publish = [v for v in publish if isinstance(v, str) and v and v != "面议"]
    common_collect = [v for v in collect if isinstance(v, str) and " " in v and "-" in v]
    rate(
        "parse_publish_date (all shapes)",
        len(publish),
        lambda: parse_all_publish(publish),
        args.repeat,
    )
    rate(
        "parse_publish_date (valid only)",
        len(common_publish),
        lambda: parse_all_publish(common_publish),
        args.repeat,
    )
    rate(
        "parse_collect_date (all shapes)",
        len(collect),
        lambda: parse_all_collect(collect),
        args.repeat,
    )
    rate(
        "parse_collect_date (Y-m-d H:M:S)",
        len(common_collect),
        lambda: parse_all_collect(common_collect),
        args.repeat,
    )
    rate("classify_row", len(rows), lambda: classify_stream(rows, ctx), args.repeat)
    kinds = classify_stream(rows, ctx)
    print("outcomes:", ", ".join(f"{kind} {n:,}" for kind, n in sorted(kinds.items())))

    gc.collect()
    tracemalloc.start()
    classify_stream(rows, ctx)
    _, peak_streaming = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    retained = [classify_row(row, offset, ctx) for offset, row in enumerate(rows)]
    _, peak_retained = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak traced memory, classify_row one row at a time: {peak_streaming / 2**10:,.0f} KiB")
    print(
        f"peak traced memory, all {len(retained):,} outcomes kept: {peak_retained / 2**20:,.1f} MiB"
    )
    print("(the input rows were built before tracing started and are in neither figure)")


if __name__ == "__main__":
    main()
