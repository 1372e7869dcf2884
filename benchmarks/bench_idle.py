"""What an idle worker costs: CPU of the worker and of its broker once a crawl is over and nobody
reads, as a share of one core. Prints numbers.

    python -m benchmarks.bench_idle [--seconds 60] [--rows 5000] [--profile FILE]

(from the repository root). Two set-ups, each with a worker that has crawled `--rows` rows of
the simulator and then waits for its next run:

- `embedded`: the defaults, the worker's own embedded broker, fetch wait 50 ms;
- `real-broker settings`: a Tansu broker started apart and named by its address, which the
  worker takes for a real Kafka: fetch wait 500 ms (Kafka's default) and the real broker's
  group timeouts. Tansu holds every fetch for the whole wait, the worst case of a real broker,
  which also answers an idle fetch only when the wait elapses.

`--profile FILE` samples the idle worker with py-spy and prints where its time went.
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_crawl import cpu_seconds, load_average, summarize_profile
from tests.harness import Broker, Simulator, Worker


def idle_cost(
    args: argparse.Namespace, sim: Simulator, home: Path, kafka: dict[str, Any], name: str
) -> tuple[float, float]:
    """(worker, broker) CPU as % of one core over `--seconds` of idleness."""
    worker = Worker.configure(
        home,
        {
            "api": sim.api(min_interval=0, max_requests_per_second=0),
            "kafka": kafka,
            "crawler": {"interval": 3600},
        },
    )
    worker.fast_group_joins = False
    external = None
    if kafka.get("bootstrap_servers") != "embedded":
        external = Broker.start()
        worker = Worker.configure(
            home,
            {
                "api": sim.api(min_interval=0, max_requests_per_second=0),
                "kafka": {"bootstrap_servers": external.bootstrap},
                "crawler": {"interval": 3600},
            },
        )
        worker.fast_group_joins = False
    try:
        worker.start()
        worker.wait_ready(120)
        worker.wait_status(
            lambda s: s["current_offset"] >= args.rows and s["status"] == "idle", timeout=300
        )
        time.sleep(5.0)  # the last commits, reports and the dedupe agent's settling
        assert worker.process is not None
        pid = worker.process.pid
        broker_pid = external.process.pid if external else worker.broker_pids()[-1]
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                ["py-spy", "record", "-p", str(pid), "-f", "raw", "-r", "100",
                 "-d", str(int(args.seconds)), "-o", f"{args.profile}.{name}.run0"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        cpu0, broker0 = cpu_seconds(pid), cpu_seconds(broker_pid)
        time.sleep(args.seconds)
        cpu, broker = cpu_seconds(pid) - cpu0, cpu_seconds(broker_pid) - broker0
        if spy is not None:
            spy.wait(timeout=60)
        return 100 * cpu / args.seconds, 100 * broker / args.seconds
    finally:
        worker.stop()
        if external is not None:
            external.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--profile", metavar="FILE")
    args = parser.parse_args()
    if args.profile and shutil.which("py-spy") is None:
        parser.error("--profile needs py-spy (pip install py-spy)")
    print(f"load average at start {load_average()}")
    sim = Simulator.start("--total", str(args.rows), "--rate-limit", "0")
    setups = {
        "embedded": {"bootstrap_servers": "embedded"},
        "real-broker settings": {"bootstrap_servers": "external"},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="bench_idle-") as tmp:
            print(f"{'set-up':<22} {'worker %core':>12} {'broker %core':>12} {'together':>9}")
            for index, (name, kafka) in enumerate(setups.items()):
                home = Path(tmp) / f"w{index}"
                home.mkdir()
                worker, broker = idle_cost(args, sim, home, kafka, name.split()[0])
                print(f"{name:<22} {worker:>12.2f} {broker:>12.2f} {worker + broker:>9.2f}")
                sim.reset(args.rows, seed=index + 1)
    finally:
        sim.stop()
    print(f"load average at the end {load_average()}")
    if args.profile:
        for name in setups:
            summarize_profile(f"{args.profile}.{name.split()[0]}", 1, f"idle {name}")


if __name__ == "__main__":
    main()
