"""End-to-end throughput: the real worker crawls the simulator into a Tansu broker.

    python -m benchmarks.bench_pipeline [--total 50000] [--batch-size 1000]

(from the repository root: the benchmarks use the tests' harness, tests/harness.py). Prints
the worker's ready time, rows/s from start of crawl to 100 %, and the worker's peak RSS.
Loopback only; bounded by --deadline seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.harness import Broker, Simulator, Worker
from tests.integration.truth import settled


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--deadline", type=float, default=300)
    args = parser.parse_args()

    broker = Broker.start()
    sim = Simulator.start("--total", str(args.total), "--rate-limit", "0")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            worker = Worker.configure(
                Path(tmp),
                {
                    "api": sim.api(batch_size=args.batch_size, min_interval=0),
                    "kafka": {"bootstrap_servers": broker.bootstrap},
                },
            )
            worker.fast_group_joins = False  # the ready time as a user will see it
            worker.start()
            ready = worker.wait_ready()
            start = time.monotonic()
            # Every row accounted for: with dedupe on, published and duplicates follow the offset.
            status = worker.wait_status(
                lambda s: s["current_offset"] >= args.total and settled(s), timeout=args.deadline
            )
            seconds = time.monotonic() - start
            assert worker.process is not None
            rss = peak_rss_mb(worker.process.pid)
            worker.stop()
    finally:
        sim.stop()
        broker.stop()
    rows = status["rows"]
    print(f"rows            {args.total} (batch_size {args.batch_size})")
    print(f"ready           {ready:.1f} s")
    print(f"crawl+apply     {seconds:.1f} s  ->  {args.total / seconds:,.0f} rows/s")
    print(
        f"published       {rows['published']}  filtered {rows['filtered']}  "
        f"rejected {rows['rejected']}"
    )
    print(f"worker peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
