"""Run the simulator on loopback inside the current event loop (tests, demo mode, benchmarks)."""

import logging
from types import TracebackType

from aiohttp import web

from jobstream.simulator.options import SimulatorConfig
from jobstream.simulator.state import SimulatorState
from jobstream.simulator.web_app import make_app

logger = logging.getLogger(__name__)


class SimulatorServer:
    """`async with SimulatorServer(config) as sim:` serves on `sim.url` until the block ends.

    Port 0 asks the OS for a free port; `url` reports the one bound.
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SimulatorConfig()
        self.state = SimulatorState(self.config)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return self._url

    async def start(self) -> str:
        if self._runner is not None:
            return self.url
        runner = web.AppRunner(make_app(self.state), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.port = port
        self._url = f"http://{host}:{port}"
        logger.info("Bazhuayu API simulator listening on %s", self._url)
        return self._url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            logger.info("Bazhuayu API simulator on %s stopped", self._url)
        self._url = None

    async def __aenter__(self) -> "SimulatorServer":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
