"""What a user feels of a crawl: from the process start to the last job readable in job_data,
jobstream against a hand-tuned aiokafka pipeline, in the same rounds on the same rows. Prints
numbers; asserts nothing but that both published the same jobs.

    python -m benchmarks.bench_crawl [--rows 257449] [--page-size 100] [--latency-ms 0]
                                     [--rate-limit 0] [--runs 3]
                                     [--systems jobstream,jobstream-nodedupe,hand] [--trace on|off]
                                     (also: jobstream-notrace)

(from the repository root). The API simulator runs with rows like the real API's: long Chinese
descriptions (`--description-chars`), every date format of bazhuayu-api.md, and a few per cent
of rows whose dates are junk (`--junk-ratio`), which both systems reject. It caches its pages so
that its own CPU competes as little as possible with what is measured. Each round gets its own
task, read once to fill the cache, and each system in the round crawls it, in an order that
rotates from round to round:

- `jobstream`: the real worker (`faust -A jobstream worker -l info`) on the defaults a user
  gets: its embedded broker, dedupe on, the real group-join settings. `jobstream-nodedupe`: the
  same with `dedupe.enabled: false`.
- `hand`: `benchmarks/crawl_baselines.py hand` on a fresh Tansu broker started by the bench.

The clock starts just before the system's process (and, for `hand`, its broker) is started. An
independent consumer (`benchmarks/job_data_reader.py`, its own process, 10 ms fetch wait) reads
job_data from the beginning and notes when the first and the last message became readable.
Reported per system and round: start-up (start to first message), the steady rate (source rows
over first to last message), the end-to-end rate (source rows over start to last message), the
worker's and the broker's CPU seconds from the start to the last message, peak RSS, and for
jobstream the CPU worker and broker spend in `--idle-seconds` once the crawl is over and nobody
reads. Then the medians over the rounds, and jobstream's ratios to `hand` taken round by round
(the median of those: on a machine shared with other work, ratios hold where absolute figures
do not). job_data of each system is read again after its clock stopped: the jobs (every field
but crawl_time) must be the same for every system, each once.

`--profile FILE` samples the jobstream worker with py-spy from start to the last message.
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

from tests.harness import ROOT, Broker, Simulator, Worker, free_port, http

SYSTEMS = ("jobstream", "jobstream-nodedupe", "hand")
# Not run unless asked for (`--systems jobstream,jobstream-notrace`): the trace's cost, round by
# round against the defaults.
EXTRA_SYSTEMS = ("jobstream-notrace",)


@dataclass
class Result:
    system: str
    rows: int = 0
    jobs: int = 0
    startup: float = float("nan")  # process start -> first message readable in job_data
    total: float = float("nan")  # process start -> last message readable in job_data
    worker_cpu: float = float("nan")
    broker_cpu: float = float("nan")
    peak_rss_mb: float = float("nan")
    idle_cpu_pct: float = float("nan")  # worker + broker, % of one core, crawl over
    calls: int = 0
    throttled: int = 0
    digest: str = ""
    note: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def steady(self) -> float:
        """Source rows per second between the first and the last message in job_data."""
        span = self.total - self.startup
        return self.rows / span if span > 0 else float("nan")

    @property
    def end_to_end(self) -> float:
        return self.rows / self.total if self.total > 0 else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (and its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
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


class Reader:
    """The independent job_data consumer process (benchmarks/job_data_reader.py)."""

    def __init__(self, bootstrap: str, verify: bool) -> None:
        command = [sys.executable, "-m", "benchmarks.job_data_reader", "--bootstrap", bootstrap]
        if not verify:
            command.append("--no-verify")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )

    def finish(self, expect: int, timeout: float) -> dict[str, Any]:
        """Tell it how many messages to expect; what it saw."""
        out, _ = self.process.communicate(f"{expect}\n", timeout=timeout)
        return dict(json.loads(out.strip().splitlines()[-1]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def settled_rows(worker: Worker, task: str) -> tuple[int, int] | None:
    """(source rows accounted for, jobs published) as the SQLite mirror has them: with dedupe
    on, the dedupe agent's counts follow the offset. Read from here, it costs the worker and the
    broker nothing (/status would measure the consumer lag, reading job_data)."""
    path = worker.config_path.parent / "data" / "crawl_progress.db"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute(
                "SELECT published + duplicates + filtered + rejected + skipped, published "
                "FROM crawl_progress WHERE task_id = ?",
                (task,),
            ).fetchone()
    except sqlite3.Error:
        return None
    return (int(row[0]), int(row[1])) if row else None


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp

    def run_jobstream(self, run: int, task: str, name: str) -> Result:
        args = self.args
        dedupe = name != "jobstream-nodedupe"
        trace = args.trace == "on" and name != "jobstream-notrace"
        result = Result(name)
        home = self.tmp / f"run{run}-{name}"
        home.mkdir()
        port = free_port()
        in_flight = {"max_pages_in_flight": args.pages_in_flight} if args.pages_in_flight else {}
        worker = Worker.configure(
            home,
            {
                "api": {
                    "base_url": self.sim.url,
                    "username": "demo",
                    "password": "demo",
                    "task_id": task,
                    "batch_size": args.page_size,
                    "min_interval": 0,
                    "max_requests_per_second": args.api_rate,
                    **in_flight,
                },
                "kafka": {"bootstrap_servers": "embedded", "embedded_port": port},
                "crawler": {"interval": 3600},
                "dedupe": {"enabled": dedupe},
                "trace": {"enabled": trace},
            },
        )
        worker.fast_group_joins = False  # start-up as a user gets it
        reader = Reader(f"127.0.0.1:{port}", not args.no_verify)
        calls0, throttled0 = sim_counts(self.sim, task)
        spy = None
        try:
            worker.start()
            assert worker.process is not None
            pid = worker.process.pid
            if args.profile:
                spy = subprocess.Popen(
                    ["py-spy", "record", "-p", str(pid), "-f", "raw", "-r", "100",
                     "-o", f"{args.profile}.{name}.run{run}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            deadline = time.monotonic() + args.deadline
            while (settled := settled_rows(worker, task)) is None or settled[0] < args.rows:
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    result.note = f"stopped: {worker.log()[-300:]!r}"
                    return result
                time.sleep(0.05)
            seen = reader.finish(settled[1], args.deadline)
            cpu = cpu_seconds(pid)
            brokers = worker.broker_pids()
            broker_pid = brokers[-1] if brokers else 0
            broker_cpu = cpu_seconds(broker_pid)
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes what it has
                spy.wait(timeout=60)
                spy = None
            result.rows, result.jobs = settled
            result.startup = seen["first"] - worker.started_at
            result.total = seen["last"] - worker.started_at
            # CPU to the last message: what was spent after it (reading status, the reader's
            # idle second) is not the crawl's, but a few ms; the idle cost is measured below.
            result.worker_cpu, result.broker_cpu = cpu, broker_cpu
            result.peak_rss_mb = peak_rss_mb(pid)
            result.digest = seen["digest"]
            result.counts = seen.get("counts", {})
            if seen["messages"] != result.jobs or seen["keys"] != result.jobs:
                result.note += f" job_data holds {seen['messages']} ({seen['keys']} ids)"
            calls, throttled = sim_counts(self.sim, task)
            result.calls, result.throttled = calls - calls0, throttled - throttled0
            if args.idle_seconds:
                time.sleep(2.0)  # the last commits and reports
                cpu0, broker0 = cpu_seconds(pid), cpu_seconds(broker_pid)
                time.sleep(args.idle_seconds)
                spent = cpu_seconds(pid) - cpu0 + cpu_seconds(broker_pid) - broker0
                result.idle_cpu_pct = 100 * spent / args.idle_seconds
            return result
        finally:
            if spy is not None:
                spy.kill()
            reader.stop()
            worker.stop()

    def run_hand(self, run: int, task: str) -> Result:
        args = self.args
        result = Result("hand")
        calls0, throttled0 = sim_counts(self.sim, task)
        started = time.monotonic()
        broker = Broker.start()
        reader = Reader(broker.bootstrap, not args.no_verify)
        try:
            command = [
                sys.executable, "-m", "benchmarks.crawl_baselines", "hand",
                "--url", self.sim.url, "--task", task, "--bootstrap", broker.bootstrap,
                "--page-size", str(args.page_size), "--rate", str(args.api_rate),
                "--progress-db", str(self.tmp / f"run{run}-hand.sqlite3"),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=args.deadline)
            if done.returncode != 0:
                result.note = f"failed: {done.stderr.strip()[-300:]}"
                return result
            out = json.loads(done.stdout.strip().splitlines()[-1])
            seen = reader.finish(out["jobs"], args.deadline)
            result.broker_cpu = cpu_seconds(broker.process.pid)
            result.rows, result.jobs = out["rows"], out["jobs"]
            result.startup = seen["first"] - started
            result.total = seen["last"] - started
            result.worker_cpu = out["cpu"]
            result.peak_rss_mb = out["peak_rss_mb"]
            result.digest = seen["digest"]
            if seen["messages"] != result.jobs or seen["keys"] != result.jobs:
                result.note += f" job_data holds {seen['messages']} ({seen['keys']} ids)"
            calls, throttled = sim_counts(self.sim, task)
            result.calls, result.throttled = calls - calls0, throttled - throttled0
            return result
        finally:
            reader.stop()
            broker.stop()

    def one_run(self, run: int) -> list[Result]:
        args = self.args
        task = self.tasks[run]
        set_faults(self.sim, 0, 0)
        http("POST", f"{self.sim.url}/_sim/grow", {"n": args.rows, "taskId": task})
        asyncio.run(warm(self.sim, task, args.rows, args.page_size))
        set_faults(self.sim, args.latency_ms, args.rate_limit)
        systems = list(args.systems)
        order = systems[run % len(systems) :] + systems[: run % len(systems)]
        results: dict[str, Result] = {}
        for system in order:
            if args.rate_limit:
                time.sleep(args.rate_burst)  # the simulator's bucket drains between systems
            if system == "hand":
                results[system] = self.run_hand(run, task)
            else:
                results[system] = self.run_jobstream(run, task, system)
            print(f"  run {run + 1}: {line(results[system])} load {load_average()}", flush=True)
            if results[system].counts:
                print(f"         messages: {results[system].counts}", flush=True)
        verify(results)
        return [results[s] for s in args.systems]

    def main(self) -> None:
        args = self.args
        self.tasks = [str(uuid.uuid4()) for _ in range(args.runs)]
        row_bytes = 600 + 3 * args.description_chars
        cache_mb = args.rows * row_bytes * 1.5 / 2**20 + 64
        sim_args = [
            "--total", "0", "--rate-limit", "0", "--page-cache-mb", f"{cache_mb:.0f}",
            "--description-chars", str(args.description_chars),
            "--junk-ratio", str(args.junk_ratio),
        ]  # fmt: skip
        for task in self.tasks:
            sim_args += ["--task-id", task]
        self.sim = Simulator.start(*sim_args)
        print(
            f"{args.rows:,} source rows, {args.page_size}-row pages, descriptions of about "
            f"{args.description_chars} characters, junk dates in {args.junk_ratio:.0%} of the "
            f"date fields, API latency {args.latency_ms:g} ms, API rate limit "
            f"{f'{args.rate_limit:g}/s' if args.rate_limit else 'none'} (jobstream and hand "
            f"allow themselves {f'{args.api_rate:g}/s' if args.api_rate else 'any rate'}); "
            f"trace {args.trace}; load average at start {load_average()}",
            flush=True,
        )
        runs: list[list[Result]] = []
        try:
            for run in range(args.runs):
                runs.append(self.one_run(run))
        finally:
            self.sim.stop()
        report(runs, args)
        print(f"load average at the end {load_average()}")
        if args.profile:
            for system in args.systems:
                if system != "hand":
                    summarize_profile(f"{args.profile}.{system}", args.runs, system)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def verify(results: dict[str, Result]) -> None:
    """Every system published the same jobs (crawl_time aside), each once."""
    digests = {r.digest for r in results.values() if r.digest}
    if len(digests) > 1:
        for r in results.values():
            r.note += " JOBS DIFFER"
    elif digests:
        for r in results.values():
            if not r.note:
                r.note = f"verified: {r.jobs} jobs, the same for {len(results)} systems"


HEADER = (
    f"{'system':<20} {'start-up s':>10} {'steady r/s':>10} {'end-to-end r/s':>14} "
    f"{'total s':>7} {'worker cpu s':>12} {'broker cpu s':>12} {'peak RSS MB':>11} "
    f"{'idle %core':>10} {'calls/s':>7} {'429s':>4}"
)


def line(r: Result) -> str:
    calls = r.calls / r.total if r.total > 0 else float("nan")
    return (
        f"{r.system:<20} {r.startup:>10.2f} {r.steady:>10,.0f} {r.end_to_end:>14,.0f} "
        f"{r.total:>7.1f} {r.worker_cpu:>12.1f} {r.broker_cpu:>12.1f} {r.peak_rss_mb:>11.0f} "
        f"{r.idle_cpu_pct:>10.2f} {calls:>7.1f} {r.throttled:>4}  {r.note}"
    )


def report(runs: list[list[Result]], args: argparse.Namespace) -> None:
    print()
    print(HEADER)
    for index, results in enumerate(runs):
        for r in results:
            print(line(r).replace(r.system, f"{r.system}#{index + 1}".ljust(len(r.system)), 1))
    print(f"\nmedian of {len(runs)} runs:")
    print(HEADER)
    for column, system in enumerate(args.systems):
        rs = [results[column] for results in runs]

        def median(get: Any, rs: list[Result] = rs) -> float:
            return statistics.median(get(r) for r in rs)

        m = Result(
            system,
            rows=args.rows,
            startup=median(lambda r: r.startup),
            total=median(lambda r: r.total),
            worker_cpu=median(lambda r: r.worker_cpu),
            broker_cpu=median(lambda r: r.broker_cpu),
            peak_rss_mb=median(lambda r: r.peak_rss_mb),
            idle_cpu_pct=median(lambda r: r.idle_cpu_pct),
            calls=int(median(lambda r: r.calls)),
            throttled=int(median(lambda r: r.throttled)),
        )
        steady, e2e = median(lambda r: r.steady), median(lambda r: r.end_to_end)
        print(line(m) + f"(median steady {steady:,.0f} r/s, median end-to-end {e2e:,.0f} r/s)")
    if "jobstream" in args.systems and "jobstream-notrace" in args.systems:
        on, off = args.systems.index("jobstream"), args.systems.index("jobstream-notrace")
        print("\nthe trace's cost: jobstream / jobstream-notrace, round by round (median):")
        for label, get in (
            ("steady rate", lambda r: r.steady),
            ("end-to-end rate", lambda r: r.end_to_end),
            ("worker CPU per row", lambda r: r.worker_cpu / r.rows),
            ("broker CPU per row", lambda r: r.broker_cpu / r.rows),
        ):
            each = [get(rs[on]) / get(rs[off]) for rs in runs]
            print(f"    {label:<20} {_ratios(each)}")
    if "hand" not in args.systems:
        return
    hand = args.systems.index("hand")
    print("\nratios to hand, round by round (and their median):")
    for column, system in enumerate(args.systems):
        if system == "hand":
            continue

        def ratios(get: Any, column: int = column) -> str:
            return _ratios([get(rs[column]) / get(rs[hand]) for rs in runs])

        print(f"  {system}:")
        print(f"    steady rate          {ratios(lambda r: r.steady)}")
        print(f"    end-to-end rate      {ratios(lambda r: r.end_to_end)}")
        print(f"    worker CPU per row   {ratios(lambda r: r.worker_cpu / r.rows)}")
        print(f"    broker CPU per row   {ratios(lambda r: r.broker_cpu / r.rows)}")
        print(f"    peak RSS             {ratios(lambda r: r.peak_rss_mb)}")


def _ratios(each: list[float]) -> str:
    return f"{statistics.median(each):.2f} ({' / '.join(f'{x:.2f}' for x in each)})"


def summarize_profile(prefix: str, runs: int, system: str, top: int = 30) -> None:
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
            # Threads waiting in select, or for a child process (the embedded broker) in
            # waitpid, are idle, not work.
            if frames[-1].startswith(
                ("EpollSelector.select", "select (selectors", "ThreadedChildWatcher._do_waitpid")
            ):
                continue
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    if not total:
        print("no profile samples (is py-spy installed, and may it attach?)")
        return
    print(f"\nprofile of the {system} worker, start to last message ({total} busy samples):")
    print("  self:")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {frame[:110]}")
    print("  inclusive:")
    for frame, n in inclusive.most_common(top + 20):
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
    parser.add_argument(
        "--pages-in-flight", type=int, default=0, help="jobstream's (0: its default)"
    )
    parser.add_argument(
        "--trace",
        choices=("on", "off"),
        default="on",
        help="jobstream's trace.enabled (on: the default config, each row's fate recorded)",
    )
    parser.add_argument("--description-chars", type=int, default=600)
    parser.add_argument("--junk-ratio", type=float, default=0.02)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="0: not measured")
    parser.add_argument("--deadline", type=float, default=900.0, help="per system and run")
    parser.add_argument("--no-verify", action="store_true", help="skip comparing job_data")
    parser.add_argument("--profile", metavar="FILE", help="py-spy samples of the worker")
    args = parser.parse_args()
    args.systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    if set(args.systems) - set(SYSTEMS + EXTRA_SYSTEMS):
        parser.error(f"--systems: choose from {', '.join(SYSTEMS + EXTRA_SYSTEMS)}")
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
