"""What a worker checks and waits for at start: a free web port, and Kafka answering.

A setup mistake is one clear line, in English and Chinese, naming the setting and the
environment variable that change it (`SetupError`; the app logs it and exits with code 1). An
unreachable Kafka at start is not a mistake to exit on: `KafkaAtStart` retries until it
answers, saying so every few seconds, while the web server already answers /health.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from mode import Service

from jobstream.broker.clients import client_options, start_or_close
from jobstream.config import Config
from jobstream.errors import JobstreamError
from jobstream.logs import KafkaStory, error_text

logger = logging.getLogger(__name__)

# Seconds between two attempts to reach Kafka at start, each said in the log.
RETRY_EVERY = 5.0


class SetupError(JobstreamError):
    """The worker cannot start as configured; the message (one line, English and Chinese)
    names the setting to change."""


def port_in_use(host: str, port: int) -> bool:
    """Whether binding host:port fails the way a server's bind would (SO_REUSEADDR, as asyncio
    and the embedded broker bind): something listens there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def check_web_port(host: str, port: int) -> None:
    """SetupError when the web server could not bind host:port."""
    if port_in_use(host or "0.0.0.0", port):
        raise SetupError(
            f"jobstream: the web port {port} is already in use (another worker or program "
            "listens there); set app.web_port or the environment variable WEB_PORT (or "
            f"`--web-port`) to a free port / HTTP 端口 {port} 已被占用（另一个 worker 或程序"
            "在监听）：请用 app.web_port 或环境变量 WEB_PORT（或 `--web-port`）换一个空闲端口"
        )


class KafkaAtStart(Service):
    """Started before the producer and the consumers: returns once Kafka answers a metadata
    request, trying again every RETRY_EVERY seconds and saying so each time. The worker's web
    server is already up: /health answers, /ready says it is not ready."""

    def __init__(self, config: Config, story: KafkaStory, **kwargs: object) -> None:
        self.config = config
        self.story = story
        self._options = client_options(config)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def bootstrap(self) -> str:
        return ",".join(self._options["bootstrap_servers"])

    async def on_start(self) -> None:
        began = time.monotonic()
        attempts = 0
        while not self.should_stop:
            attempts += 1
            problem = await self._try()
            if problem is None:
                break
            self.story.found_down(problem, quiet=True)
            self._say_unreachable(problem, time.monotonic() - began, first=attempts == 1)
            await self.sleep(RETRY_EVERY)
        else:
            return
        if attempts > 1:
            logger.info(
                "Kafka at %s answers after %.0fs (%d attempts); the worker starts / Kafka 已连接，"
                "worker 继续启动",
                self.bootstrap,
                time.monotonic() - began,
                attempts,
            )
            self.story.found_up(quiet=True)

    async def _try(self) -> str | None:
        """None once Kafka answered; else why not."""
        client = AIOKafkaClient(client_id="jobstream-start", **self._options)
        try:
            async with asyncio.timeout(RETRY_EVERY):
                await start_or_close(client.bootstrap(), client.close)
        except (KafkaError, OSError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                return f"no answer within {RETRY_EVERY:.0f}s"
            # ("Unable to bootstrap from [('host', port, <AddressFamily.AF_INET: 2>)]")
            text = error_text(exc)
            return "no broker answered" if "Unable to bootstrap" in text else text
        await client.close()
        return None

    def _say_unreachable(self, problem: str, waited: float, first: bool) -> None:
        where = (
            "the embedded broker (kafka.bootstrap_servers: embedded)"
            if self.config.kafka.is_embedded
            else "kafka.bootstrap_servers (environment variable KAFKA_BOOTSTRAP_SERVERS)"
        )
        logger.log(
            logging.ERROR if first else logging.WARNING,
            "jobstream: cannot reach Kafka at %s, set by %s: %s; %s, trying again every %.0fs "
            "(/health answers meanwhile) / 无法连接 Kafka（%s，由 kafka.bootstrap_servers "
            "或环境变量 KAFKA_BOOTSTRAP_SERVERS 设置），每 %.0f 秒重试一次",
            self.bootstrap,
            where,
            problem,
            "waiting" if first else f"still waiting after {waited:.0f}s",
            RETRY_EVERY,
            self.bootstrap,
            RETRY_EVERY,
        )
