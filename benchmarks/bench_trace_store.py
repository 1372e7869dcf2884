"""The trace store's size over a long run: a real worker crawls a simulator task that keeps
growing, with a short `trace.retention`, and the trace's own gauges (entries, rows and bytes of
trace_pages and trace_sightings, entries pruned) are sampled from /metrics; then job_raw is read
back to tell what a row costs there (the disk a replay's `kafka.raw_retention` keeps).

    python -m benchmarks.bench_trace_store [--minutes 5] [--retention 60]
                                           [--grow-per-minute 12000] [--start-rows 20000]

(from the repository root). Prints numbers, asserts only that something was pruned and that the
store stopped growing once the retention was reached: a bounded store holds about one
retention's worth of rows (plus one pruning interval, a tenth of the retention) however long the
run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from pathlib import Path

from tests.harness import TASK_ID, Broker, Simulator, Worker, http, read_topic

GAUGE = re.compile(r'^(jobstream_trace_\w+?)(?:_total)?\{table="(\w+)"\} ([0-9.e+]+)$')


def sample(worker: Worker) -> dict[str, float]:
    code, text = http("GET", f"{worker.url}/metrics")
    assert code == 200, text
    out: dict[str, float] = {}
    for line in str(text).splitlines():
        found = GAUGE.match(line)
        if found:
            name, table, value = found.groups()
            out[f"{name.removeprefix('jobstream_trace_')}:{table}"] = float(value)
    return out


def pruned_of(got: dict[str, float]) -> float:
    return got.get("pruned:trace_pages", 0) + got.get("pruned:trace_sightings", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--retention", type=float, default=60.0)
    parser.add_argument("--grow-per-minute", type=int, default=12_000)
    parser.add_argument("--start-rows", type=int, default=20_000)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}")
    broker = Broker.start()
    sim = Simulator.start(
        "--rate-limit", "0", "--total", str(args.start_rows), "--task-id", TASK_ID,
        "--grow-per-minute", str(args.grow_per_minute), "--repeat-ratio", "0.2",
        "--hostile-ratio", "0.02",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker.configure(
            Path(tmp),
            {
                "api": sim.api(batch_size=100, task_id=TASK_ID, min_interval=0),
                "kafka": {"bootstrap_servers": broker.bootstrap},
                "crawler": {"interval": 2},
                "trace": {"retention": args.retention},
            },
        )
        try:
            worker.start()
            worker.wait_ready(120)
            started = time.monotonic()
            print(
                f"retention {args.retention:g} s, source grows {args.grow_per_minute:,} rows/min"
                f" from {args.start_rows:,}; sample every {args.every:g} s"
            )
            print(
                f"{'t (s)':>6} {'applied':>9} {'pages ent':>9} {'pages rows':>10} "
                f"{'pages KB':>9} {'sight ent':>9} {'sight rows':>10} {'sight KB':>9} "
                f"{'pruned':>7} {'load1':>6}"
            )
            peak_after_warm: list[float] = []
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(args.every)
                got = sample(worker)
                applied = worker.status()["current_offset"]
                elapsed = time.monotonic() - started
                rows = got.get("rows:trace_pages", 0) + got.get("rows:trace_sightings", 0)
                if elapsed > 2 * args.retention:
                    peak_after_warm.append(rows)
                print(
                    f"{elapsed:6.0f} {applied:9,} {got.get('entries:trace_pages', 0):9,.0f} "
                    f"{got.get('rows:trace_pages', 0):10,.0f} "
                    f"{got.get('bytes:trace_pages', 0) / 1024:9,.0f} "
                    f"{got.get('entries:trace_sightings', 0):9,.0f} "
                    f"{got.get('rows:trace_sightings', 0):10,.0f} "
                    f"{got.get('bytes:trace_sightings', 0) / 1024:9,.0f} "
                    f"{pruned_of(got):7,.0f}"
                    f" {os.getloadavg()[0]:6.2f}",
                    flush=True,
                )
            final = sample(worker)
            applied = worker.status()["current_offset"]
            pruned = pruned_of(final)
            print(f"applied {applied:,} rows in {args.minutes:g} min; {pruned:,.0f} entries pruned")
            if peak_after_warm:
                print(
                    f"rows held after 2 retentions: min {min(peak_after_warm):,.0f}, "
                    f"max {max(peak_after_warm):,.0f} (of {applied:,} applied)"
                )
            raw = asyncio.run(read_topic(broker.bootstrap, "job_raw", raw=True, idle=2))
            total = sum(len(m.value) for m in raw)
            print(
                f"job_raw: {len(raw):,} messages, {total / 1e6:,.1f} MB of values for "
                f"{applied:,} rows: {total / max(applied, 1):,.0f} bytes per row"
            )
            assert pruned > 0, "nothing pruned"
        finally:
            worker.stop()
            sim.stop()
            broker.stop()


if __name__ == "__main__":
    main()
