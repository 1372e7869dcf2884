"""CPU per source row of each step jobstream's worker takes between an API answer and job_data,
without a broker, beside what `hand` (benchmarks/crawl_baselines.py) does with the same rows,
and what the page and dedupe agents take with the trace on and off (alternated, the best of
each). Prints microseconds per row; for finding where the worker's time goes, not for claims.

    python -m benchmarks.bench_rows [--page-size 100] [--pages 20] [--description-chars 600]
                                    [--utf8]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from benchmarks.crawl_baselines import judge
from jobstream.dedupe.sightings import candidate_messages, decode_candidates, sort_candidates
from jobstream.pipeline.messages import page_messages
from jobstream.pipeline.outbox import Outbox
from jobstream.pipeline.pages import decode_event
from jobstream.records import Progress
from jobstream.simulator.rows import RowGenerator, RowOptions
from jobstream.source.body import decode_page_body
from jobstream.source.paging import parse_page
from jobstream.topics import key_partitions
from jobstream.trace import entries
from jobstream.trace.judge import dedupe_trace, page_trace
from jobstream.transform.outcome import RowContext

ZONE = ZoneInfo("Asia/Shanghai")


def bodies(args: argparse.Namespace) -> list[bytes]:
    now = datetime.now(ZONE)
    options = RowOptions(description_chars=args.description_chars, junk_ratio=args.junk_ratio)
    rows = RowGenerator("bench", now, options)
    size, total = args.page_size, args.page_size * args.pages
    return [
        json.dumps(
            {
                "data": {
                    "total": total,
                    "offset": offset + size,
                    "restTotal": total - offset - size,
                    "data": rows.rows(offset, offset + size),
                },
                "requestId": "bench",
            },
            ensure_ascii=not args.utf8,
        ).encode()
        for offset in range(0, total, size)
    ]


def timed(name: str, rows: int, step: Callable[[], Any], repeat: int) -> Any:
    best = float("inf")
    result = None
    for _ in range(repeat):
        started = time.process_time()
        result = step()
        best = min(best, time.process_time() - started)
    print(f"  {name:<44} {best / rows * 1e6:7.2f} µs/row")
    return result


def agents(values: list[bytes], now: datetime, trace: bool) -> None:
    """What the page agent and the dedupe agent do with job_raw's events, short of the broker:
    judge and encode (with `trace`, the pages' records and the decisions' batches, as
    `Tracer.page_applied` and `Tracer.decided` make them)."""
    ctx = RowContext(task_id="bench", now=now, filter_days=7, demo=False)
    progress = Progress(task_id="bench")
    for value in values:
        page = decode_event(value)
        out = page_messages(page, 0, ctx, 1_000_000, trace)
        if trace:
            done = page_trace(page, 0, ctx, out, source_resets=0, at=1.0, partitions=3)
            entries.encode_page(done.record)
            for batch in done.sightings.values():
                entries.encode_batch(1.0, batch)
        messages = candidate_messages(
            progress, out.jobs, lambda keys: key_partitions(keys, 3), 1_000_000, out.job_offsets
        )
        for partition, (_, candidates) in enumerate(messages):
            decoded = decode_candidates(candidates)
            sorting = sort_candidates(decoded.jobs, lambda k: None, 0.0)
            if trace:
                sightings = dedupe_trace(
                    "bench", decoded.jobs, sorting.first, lambda k: None, at=1.0,
                    partition=partition, window=86400.0,
                )  # fmt: skip
                entries.encode_batch(1.0, sightings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--description-chars", type=int, default=600)
    parser.add_argument("--junk-ratio", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--utf8",
        action="store_true",
        help="pages in UTF-8 (default: non-ASCII escaped, as the simulator serves them)",
    )
    args = parser.parse_args()
    raw = bodies(args)
    n = args.page_size * args.pages
    r = args.repeat
    print(f"{n} rows, {args.page_size}-row pages, {sum(map(len, raw)) / n:.0f} bytes a row")
    now = datetime.now(ZONE)
    fetched_at = now.isoformat()

    print("jobstream, crawl side:")
    decoded = timed("decode_page_body", n, lambda: [decode_page_body(b)[0] for b in raw], r)
    pages = [parse_page(body, "bench", i * args.page_size, args.page_size) for i, body in
             enumerate(decoded)]  # fmt: skip

    def outbox() -> list[Any]:
        box = Outbox("bench", 0, source="demo", demo=False, max_message_bytes=1_000_000)
        for page in pages:
            box.add_page(page, fetched_at)
        return box.take()

    events = timed("Outbox.add_page + take (encode, zstd)", n, outbox, r)
    print(f"  ({len(events)} job_raw events)")
    print("jobstream, page agent:")
    values = [value for _, value in events]
    records = timed(
        "decode_event (unzstd, rows as Raw)", n, lambda: [decode_event(v) for v in values], r
    )

    def judged() -> list[Any]:
        ctx = RowContext(task_id="bench", now=now, filter_days=7, demo=False)
        return [page_messages(event, 0, ctx, 1_000_000) for event in records]

    outs = timed("page_messages (parse, judge, encode)", n, judged, r)

    def traced() -> list[Any]:
        ctx = RowContext(task_id="bench", now=now, filter_days=7, demo=False)
        return [page_messages(event, 0, ctx, 1_000_000, trace=True) for event in records]

    traced_outs = timed("page_messages, trace on", n, traced, r)

    def page_traces() -> list[Any]:
        ctx = RowContext(task_id="bench", now=now, filter_days=7, demo=False)
        return [
            page_trace(event, 0, ctx, out, source_resets=0, at=0.0, partitions=3)
            for event, out in zip(records, traced_outs, strict=True)
        ]

    traces = timed("page_trace (trace on)", n, page_traces, r)

    def recorded() -> None:
        for trace in traces:
            entries.encode_page(trace.record)
            for batch in trace.sightings.values():
                entries.encode_batch(0.0, batch)

    timed("encode_page + encode_batch (trace on)", n, recorded, r)
    jobs = [job for out in outs for job in out.jobs]
    progress = Progress(task_id="bench")
    candidates = timed(
        "candidate_messages (murmur2, zstd)",
        n,
        lambda: candidate_messages(progress, jobs, lambda keys: key_partitions(keys, 3), 1_000_000),
        r,
    )
    print("jobstream, dedupe agent:")
    decoded_candidates = timed(
        "decode_candidates", n, lambda: [decode_candidates(v) for _, v in candidates], r
    )
    timed(
        "sort_candidates",
        n,
        lambda: [sort_candidates(c.jobs, lambda k: None, 0.0) for c in decoded_candidates],
        r,
    )
    print(f"  ({len(jobs)} jobs kept of {n} rows)")
    print("jobstream, page and dedupe agents from job_raw's events to encoded messages:")
    # Alternated, the best of each: a load that comes and goes weighs on both alike.
    best = {False: float("inf"), True: float("inf")}
    for _ in range(r * 4):
        for trace in best:
            started = time.process_time()
            agents(values, now, trace)
            best[trace] = min(best[trace], time.process_time() - started)
    for trace, taken in best.items():
        print(f"  {'trace on' if trace else 'trace off':<44} {taken / n * 1e6:7.2f} µs/row")
    print(f"  (trace on / trace off: {best[True] / best[False]:.3f})")
    print("hand:")
    hand_pages = timed("orjson.loads", n, lambda: [orjson.loads(b)["data"] for b in raw], r)

    def hand_judge() -> None:
        ctx = RowContext(task_id="bench", now=now, filter_days=7, demo=False)
        for i, page in enumerate(hand_pages):
            judge(page["data"], i * args.page_size, ctx)

    timed("judge (classify, encode)", n, hand_judge, r)


if __name__ == "__main__":
    main()
