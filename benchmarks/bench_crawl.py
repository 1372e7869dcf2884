"""Crawl throughput: jobstream against a hand-tuned aiokafka pipeline and a naive loop, measured
in the same run on the same rows: prints numbers, asserts nothing but correctness.

    python -m benchmarks.bench_crawl [--rows 257449] [--page-size 100] [--latency-ms 0]
                                     [--rate-limit 0] [--runs 3] [--systems jobstream,hand,naive]
                                     [--dedupe on|off] [--trace on|off]

(from the repository root). Starts the API simulator (pages cached, so that its own CPU does not
compete with what is measured) and, for every system and run, a fresh Tansu broker. Each run:

1. the real worker (`faust -A jobstream worker`) starts on its broker; its ready time is taken;
2. the run's task gets `--rows` rows and is read once (filling the simulator's cache);
3. the systems crawl that task, one after the other in a rotating order: jobstream from
   `POST /crawl/start` until every row is accounted for (with dedupe on, until the dedupe
   agent has reported every kept row as published or duplicate); `hand` and `naive` (see
   `benchmarks/crawl_baselines.py`) from their first call to their last acknowledgement;
4. job_data of jobstream and of `hand` are read back and must hold the same jobs (ids, fields;
   crawl_time aside), each once, as many as /status counts as published.

The table gives, per system: source rows/s, wall seconds of the crawl, worker and broker CPU
seconds spent in it, peak RSS, ready time, API calls/s and 429 answers; then the median of each
over the runs and jobstream's ratios to `hand` (taken run by run, then the median), which hold on
a noisy machine where the absolute figures do not. `--profile FILE` samples the jobstream worker
with py-spy (`pip install py-spy`) during its crawls and prints where its time went.

Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import read_topic
from tests.harness import Broker, Simulator, Worker, http

SYSTEMS = ("jobstream", "hand", "naive")


@dataclass
class Result:
    system: str
    rows: int = 0
    wall: float = float("nan")
    worker_cpu: float = float("nan")
    broker_cpu: float = float("nan")
    peak_rss_mb: float = float("nan")
    ready: float = float("nan")
    calls: int = 0
    throttled: int = 0
    note: str = ""
    jobs: list[Any] = field(default_factory=list, repr=False)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall if self.wall > 0 else float("nan")

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall if self.wall > 0 else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (and its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / 100  # USER_HZ: 100 on Linux


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sim_counts(sim: Simulator, task: str) -> tuple[int, int]:
    """(data calls made for the task, 429 answers to data calls) so far."""
    stats = sim.stats()
    calls = stats["tasks"].get(task, {}).get("requests", 0)
    return int(calls), int(stats["statuses"].get("data", {}).get("429", 0))


def mirrored_rows(worker: Worker, task: str) -> int:
    """Source rows the mirror accounts for: published (reached job_data), duplicates,
    filtered, rejected and skipped. Equal to the applied offset without dedupe; with it, the
    offset is reached first and the dedupe agent's counts follow."""
    path = worker.config_path.parent / "data" / "crawl_progress.db"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute(
                "SELECT published + duplicates + filtered + rejected + skipped "
                "FROM crawl_progress WHERE task_id = ?",
                (task,),
            ).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def set_faults(sim: Simulator, latency_ms: float, rate_limit: float) -> None:
    body = {"latency_ms": latency_ms, "rate_limit": rate_limit or None}
    status, answer = http("POST", f"{sim.url}/_sim/faults", body)
    assert status == 200, answer


async def warm(sim: Simulator, task: str, rows: int, size: int) -> None:
    """Read the task once at `size` rows a page, so the simulator serves it from its cache."""
    async with aiohttp.ClientSession() as session:
        body = {"username": "demo", "password": "demo", "grant_type": "password"}
        async with session.post(f"{sim.url}/token", json=body) as response:
            token = (await response.json())["data"]["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        offsets = [*range(0, rows, size), rows]
        semaphore = asyncio.Semaphore(8)

        async def one(offset: int) -> None:
            params = {"taskId": task, "offset": str(offset), "size": str(size)}
            async with (
                semaphore,
                session.get(f"{sim.url}/data/all", params=params, headers=headers) as response,
            ):
                await response.read()

        await asyncio.gather(*(one(o) for o in offsets))


def jobs_of(bootstrap: str, expect: int) -> list[Any]:
    return asyncio.run(read_topic(bootstrap, "job_data", expect=expect, idle=5.0, deadline_s=600))


def comparable(jobs: list[Any]) -> Counter[str]:
    """The jobs as comparable text: every field but crawl_time (each system stamps its own)."""
    return Counter(
        json.dumps([key, {k: v for k, v in job.items() if k != "crawl_time"}], sort_keys=True)
        for key, job in jobs
    )


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.spy: subprocess.Popen[bytes] | None = None

    def run_jobstream(self, run: int, worker: Worker, broker: Broker, task: str) -> Result:
        args = self.args
        assert worker.process is not None
        pid = worker.process.pid
        result = Result("jobstream", ready=worker.ready_seconds)  # type: ignore[attr-defined]
        calls0, throttled0 = sim_counts(self.sim, task)
        cpu0, broker0 = cpu_seconds(pid), cpu_seconds(broker.process.pid)
        if args.profile:
            self.spy = subprocess.Popen(
                ["py-spy", "record", "-p", str(pid), "-f", "raw", "-r", "100",
                 "-o", f"{args.profile}.run{run}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)  # py-spy attaches
        started = time.monotonic()
        # JSON: a bare POST could come from any web page, and is refused (415).
        status, answer = http("POST", f"{worker.url}/crawl/start?task_id={task}", {})
        assert status in (200, 202), answer
        deadline = started + args.deadline
        # The SQLite mirror, read from here: it records each applied page once its messages
        # are acknowledged (and the dedupe agent's counts), and polling it costs the worker and
        # the broker nothing (/status would measure the consumer lag, reading job_data).
        while (applied := mirrored_rows(worker, task)) < args.rows:
            if time.monotonic() > deadline:
                result.note = f"deadline: at {applied}"
                break
            time.sleep(0.02)
        result.wall = time.monotonic() - started
        result.worker_cpu = cpu_seconds(pid) - cpu0
        result.broker_cpu = cpu_seconds(broker.process.pid) - broker0
        result.peak_rss_mb = peak_rss_mb(pid)
        calls, throttled = sim_counts(self.sim, task)
        result.calls, result.throttled = calls - calls0, throttled - throttled0
        state = worker.wait_status(lambda s: s["status"] != "running", task_id=task)
        result.rows = state["current_offset"]
        if self.spy is not None:
            self.spy.send_signal(2)  # SIGINT: py-spy writes what it has
            self.spy.wait(timeout=60)
            self.spy = None
        if not args.no_verify:
            published = state["rows"]["published"]
            result.jobs = jobs_of(broker.bootstrap, published)
            if len(result.jobs) != published:
                result.note += f" job_data holds {len(result.jobs)}, /status says {published}"
        return result

    def run_baseline(self, kind: str, task: str) -> Result:
        args = self.args
        broker = Broker.start()
        try:
            calls0, throttled0 = sim_counts(self.sim, task)
            broker0 = cpu_seconds(broker.process.pid)
            command = [
                sys.executable, "-m", "benchmarks.crawl_baselines", kind,
                "--url", self.sim.url, "--task", task, "--bootstrap", broker.bootstrap,
                "--page-size", str(args.page_size), "--rate", str(args.api_rate),
                "--max-seconds", str(args.naive_seconds),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=args.deadline)
            if done.returncode != 0:
                return Result(kind, note=f"failed: {done.stderr.strip()[-300:]}")
            out = json.loads(done.stdout.strip().splitlines()[-1])
            calls, throttled = sim_counts(self.sim, task)
            result = Result(
                kind,
                rows=out["rows"],
                wall=out["wall"],
                worker_cpu=out["cpu"],
                broker_cpu=cpu_seconds(broker.process.pid) - broker0,
                peak_rss_mb=out["peak_rss_mb"],
                ready=out["ready"],
                calls=calls - calls0,
                throttled=throttled - throttled0,
            )
            if kind == "hand" and not args.no_verify:
                result.jobs = jobs_of(broker.bootstrap, 0)
            if out["rows"] < args.rows:
                result.note = f"stopped after {args.naive_seconds:.0f}s"
            return result
        finally:
            broker.stop()

    def one_run(self, run: int) -> list[Result]:
        args = self.args
        task = self.tasks[run]
        broker = Broker.start()
        (self.tmp / f"run{run}").mkdir()
        worker = Worker.configure(
            self.tmp / f"run{run}",
            {
                "api": {
                    "base_url": self.sim.url,
                    "username": "demo",
                    "password": "demo",
                    "task_id": task,
                    "batch_size": args.page_size,
                    "min_interval": 0,
                    "max_requests_per_second": args.api_rate,
                    "max_pages_in_flight": args.pages_in_flight,
                },
                "kafka": {"bootstrap_servers": broker.bootstrap},
                "crawler": {"interval": 3600},
                "dedupe": {"enabled": args.dedupe == "on"},
                "trace": {"enabled": args.trace == "on"},
            },
        )
        results: dict[str, Result] = {}
        try:
            worker.start()
            worker.ready_seconds = worker.wait_ready(120)  # type: ignore[attr-defined]
            # The first run found the task empty: the worker is idle until /crawl/start.
            worker.wait_status(lambda s: s["status"] == "idle", task_id=task)
            set_faults(self.sim, 0, 0)
            http("POST", f"{self.sim.url}/_sim/grow", {"n": args.rows, "taskId": task})
            asyncio.run(warm(self.sim, task, args.rows, args.page_size))
            set_faults(self.sim, args.latency_ms, args.rate_limit)
            systems = list(args.systems)
            order = systems[run % len(systems) :] + systems[: run % len(systems)]
            for system in order:
                if args.rate_limit:
                    time.sleep(args.rate_burst)  # the simulator's bucket drains between systems
                if system == "jobstream":
                    results[system] = self.run_jobstream(run, worker, broker, task)
                else:
                    results[system] = self.run_baseline(system, task)
                print(f"  run {run + 1}: {line(results[system])}", flush=True)
        finally:
            worker.stop()
            broker.stop()
        self.verify(results)
        return [results[s] for s in args.systems]

    def verify(self, results: dict[str, Result]) -> None:
        ours, hand = results.get("jobstream"), results.get("hand")
        if ours is None or hand is None or self.args.no_verify:
            return
        if not ours.jobs or comparable(ours.jobs) != comparable(hand.jobs):
            ours.note += " JOBS DIFFER FROM hand"
        keys = Counter(key for key, _ in ours.jobs)
        if any(n > 1 for n in keys.values()):
            ours.note += " DUPLICATE JOBS"
        if not ours.note:
            ours.note = f"verified: {len(ours.jobs)} jobs = hand's"
        ours.jobs = hand.jobs = []

    def main(self) -> None:
        args = self.args
        self.tasks = [str(uuid.uuid4()) for _ in range(args.runs)]
        cache_mb = args.rows * 2 * 2048 / 2**20 + 64  # a run's rows, twice over
        sim_args = ["--total", "0", "--rate-limit", "0", "--page-cache-mb", f"{cache_mb:.0f}"]
        for task in self.tasks:
            sim_args += ["--task-id", task]
        self.sim = Simulator.start(*sim_args)
        print(
            f"{args.rows:,} source rows, {args.page_size}-row pages, API latency "
            f"{args.latency_ms:g} ms, API rate limit {args.rate_limit or 'none'}"
            f"{'/s' if args.rate_limit else ''}; jobstream: max_requests_per_second "
            f"{args.api_rate or 'none'}, max_pages_in_flight {args.pages_in_flight}, "
            f"dedupe {args.dedupe}, trace {args.trace}",
            flush=True,
        )
        runs: list[list[Result]] = []
        try:
            for run in range(args.runs):
                runs.append(self.one_run(run))
        finally:
            self.sim.stop()
        report(runs, args)
        if args.profile:
            summarize_profile(args.profile, args.runs)


HEADER = (
    f"{'system':<10} {'rows/s':>9} {'wall s':>7} {'worker cpu s':>12} {'broker cpu s':>12} "
    f"{'peak RSS MB':>11} {'ready s':>7} {'API calls/s':>11} {'429s':>5}"
)


def line(r: Result) -> str:
    return (
        f"{r.system:<10} {r.rows_per_s:>9,.0f} {r.wall:>7.1f} {r.worker_cpu:>12.1f} "
        f"{r.broker_cpu:>12.1f} {r.peak_rss_mb:>11.0f} {r.ready:>7.1f} {r.calls_per_s:>11.1f} "
        f"{r.throttled:>5}  {r.note}"
    )


def report(runs: list[list[Result]], args: argparse.Namespace) -> None:
    print()
    print(HEADER)
    for index, results in enumerate(runs):
        for r in results:
            print(line(r).replace(r.system, f"{r.system}#{index + 1}", 1))
    print(f"\nmedian of {len(runs)} runs:")
    print(HEADER)
    medians: dict[str, Result] = {}
    for column, system in enumerate(args.systems):
        rs = [results[column] for results in runs]
        m = Result(
            system,
            rows=args.rows,
            wall=statistics.median(r.wall for r in rs),
            worker_cpu=statistics.median(r.worker_cpu for r in rs),
            broker_cpu=statistics.median(r.broker_cpu for r in rs),
            peak_rss_mb=statistics.median(r.peak_rss_mb for r in rs),
            ready=statistics.median(r.ready for r in rs),
            calls=int(statistics.median(r.calls / r.wall * 1000 for r in rs)),
            throttled=int(statistics.median(r.throttled for r in rs)),
        )
        m.rows = int(statistics.median(r.rows_per_s for r in rs) * m.wall)
        m.calls = int(m.calls * m.wall / 1000)
        medians[system] = m
        print(line(m))
    if "jobstream" in args.systems and "hand" in args.systems:
        ours, hand = args.systems.index("jobstream"), args.systems.index("hand")

        def ratio(get: Any) -> float:
            return statistics.median(get(rs[ours]) / get(rs[hand]) for rs in runs)

        print("\njobstream / hand (median of the per-run ratios):")
        print(f"  source rows/s          {ratio(lambda r: r.rows_per_s):.2f}")
        print(f"  worker CPU per row     {ratio(lambda r: r.worker_cpu / r.rows):.2f}")
        print(f"  broker CPU per row     {ratio(lambda r: r.broker_cpu / r.rows):.2f}")
        print(f"  peak RSS               {ratio(lambda r: r.peak_rss_mb):.2f}")
    if "jobstream" in args.systems and "naive" in args.systems:
        ours, naive = args.systems.index("jobstream"), args.systems.index("naive")
        speedup = statistics.median(rs[ours].rows_per_s / rs[naive].rows_per_s for rs in runs)
        print(f"jobstream / naive source rows/s: {speedup:.1f}")


def summarize_profile(prefix: str, runs: int, top: int = 25) -> None:
    """Self and inclusive shares of py-spy's raw samples, over every run."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for run in range(runs):
        path = Path(f"{prefix}.run{run}")
        if not path.exists():
            continue
        for text in path.read_text().splitlines():
            stack, _, count = text.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    if not total:
        print("no profile samples (is py-spy installed, and may it attach?)")
        return
    print(f"\nprofile of the jobstream worker while crawling ({total} samples):")
    print("  self:")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {frame[:110]}")
    print("  inclusive:")
    for frame, n in inclusive.most_common(top + 15):
        print(f"  {100 * n / total:5.1f}%  {frame[:110]}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=257_449)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulator's API latency")
    parser.add_argument(
        "--rate-limit", type=float, default=0.0, help="simulator's calls/s, 429 above (0: off)"
    )
    parser.add_argument("--rate-burst", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--api-rate",
        type=float,
        default=None,
        help="calls/s jobstream and hand allow themselves (default: --rate-limit)",
    )
    parser.add_argument("--pages-in-flight", type=int, default=8)
    parser.add_argument(
        "--dedupe",
        choices=("on", "off"),
        default="on",
        help="jobstream's dedupe.enabled (on: the default config, one more hop per kept row)",
    )
    parser.add_argument(
        "--trace",
        choices=("on", "off"),
        default="on",
        help="jobstream's trace.enabled (on: the default config, each row's fate recorded)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--naive-seconds", type=float, default=60.0, help="naive stops after")
    parser.add_argument("--deadline", type=float, default=900.0, help="per system and run")
    parser.add_argument("--no-verify", action="store_true", help="skip reading job_data back")
    parser.add_argument("--profile", metavar="FILE", help="py-spy samples of the worker")
    args = parser.parse_args()
    args.systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    if set(args.systems) - set(SYSTEMS):
        parser.error(f"--systems: choose from {', '.join(SYSTEMS)}")
    if args.api_rate is None:
        args.api_rate = args.rate_limit
    if args.profile and shutil.which("py-spy") is None:
        parser.error("--profile needs py-spy (pip install py-spy)")
    return args


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_crawl-") as tmp:
        Bench(args, Path(tmp)).main()


if __name__ == "__main__":
    main()
