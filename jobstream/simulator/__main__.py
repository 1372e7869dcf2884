"""`python -m jobstream.simulator`: serve the simulated Bazhuayu API until Ctrl-C."""

import argparse
import asyncio
import logging
import sys

from jobstream.simulator.options import DEFAULT_TASK_ID, SimulatorConfig
from jobstream.simulator.rows import RowOptions
from jobstream.simulator.server import SimulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m jobstream.simulator", description="Simulated Bazhuayu OpenAPI."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument(
        "--task-id",
        action="append",
        dest="task_ids",
        metavar="ID",
        help=f"a task to serve (repeatable; default {DEFAULT_TASK_ID})",
    )
    p.add_argument("--total", type=int, default=5000, help="rows per task at start")
    p.add_argument("--grow-per-minute", type=float, default=0.0)
    p.add_argument("--username", default="demo")
    p.add_argument("--password", default="demo")
    p.add_argument("--token-ttl", type=float, default=86400.0, help="seconds a token lives")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--latency-jitter-ms", type=float, default=0.0)
    p.add_argument("--rate-limit", type=float, default=20.0, help="requests/s; 0 turns it off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--page-cache-mb",
        type=float,
        default=0.0,
        metavar="MB",
        help="keep served pages' rows to serve them again without generating them (0: off)",
    )
    p.add_argument("--junk-ratio", type=float, default=0.01)
    p.add_argument("--missing-url-ratio", type=float, default=0.0)
    p.add_argument("--duplicate-url-ratio", type=float, default=0.0)
    p.add_argument(
        "--repeat-ratio",
        type=float,
        default=0.0,
        metavar="R",
        help="share of rows that repeat an earlier posting, collected again later "
        "(/_sim/truth: repeat_of, posting)",
    )
    p.add_argument(
        "--shared-postings",
        action="store_true",
        help="repeats may copy other tasks' rows too (those that existed when the rows appeared)",
    )
    p.add_argument(
        "--hostile-ratio",
        type=float,
        default=0.0,
        metavar="R",
        help="share of rows replaced by hostile kinds (see /_sim/truth for what each expects)",
    )
    p.add_argument(
        "--description-chars",
        type=int,
        default=0,
        metavar="N",
        help="long Chinese descriptions of about N characters (0: short ones)",
    )
    p.add_argument("--rows-key", choices=("data", "dataList"), default="data")
    p.add_argument("--no-offset", action="store_true", help="leave `offset` out of data pages")
    p.add_argument(
        "--legacy-token",
        action="store_true",
        help="token fields at the top level, expires_in a number",
    )
    p.add_argument(
        "--echo-secrets",
        action="store_true",
        help="error messages repeat the credentials or token sent, escaped and cut",
    )
    p.add_argument(
        "--state-file",
        metavar="FILE",
        help="keep the rows in FILE: started again, the simulator serves the same rows and "
        "grows from there (the --total applies to tasks the file does not know)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        task_ids=tuple(args.task_ids or (DEFAULT_TASK_ID,)),
        total=args.total,
        grow_per_minute=args.grow_per_minute,
        username=args.username,
        password=args.password,
        token_ttl=args.token_ttl,
        legacy_token_shape=args.legacy_token,
        echo_secrets=args.echo_secrets,
        rows_key=args.rows_key,
        include_offset=not args.no_offset,
        rows=RowOptions(
            seed=args.seed,
            junk_ratio=args.junk_ratio,
            missing_url_ratio=args.missing_url_ratio,
            duplicate_url_ratio=args.duplicate_url_ratio,
            repeat_ratio=args.repeat_ratio,
            shared_postings=args.shared_postings,
            hostile_ratio=args.hostile_ratio,
            description_chars=args.description_chars,
        ),
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        rate_limit=args.rate_limit or None,
        page_cache_bytes=int(args.page_cache_mb * 2**20),
        state_file=args.state_file,
    )


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    async with SimulatorServer(config, host=host, port=port) as sim:
        # The URL on stdout is this command's output: scripts read it to find the server.
        print(sim.url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        asyncio.run(serve(config_from_args(args), args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
