"""The alert loop: every `alerts.check_interval` seconds, look at the worker and send what is due.

It knows the worker only through the snapshot callable it is given, so it imports nothing of the
web layer or the agents. Nothing in it can stop the worker: a snapshot that fails or hangs skips
one check, a webhook that fails is logged by the sender, and any other error is logged and the
loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

import aiohttp
from mode import Service

from jobstream.alerts.conditions import AlertState, Notice, evaluate
from jobstream.alerts.sender import WebhookSender
from jobstream.alerts.settings import AlertSettings, Webhook
from jobstream.alerts.snapshot import SnapshotSource
from jobstream.alerts.texts import SHANGHAI, render

logger = logging.getLogger(__name__)

# A snapshot taking longer than this (or one check interval, if longer) is abandoned.
SNAPSHOT_TIMEOUT = 10.0


class AlertService(Service):
    """`AlertService(settings.alerts, snapshot=...)`, added to the app's services.

    The first check runs one interval after start, when the probes behind the snapshot have had
    time to report. `alert_state` (what has been sent) lives as long as the service.
    """

    def __init__(
        self,
        settings: AlertSettings,
        snapshot: SnapshotSource,
        *,
        tz: tzinfo = SHANGHAI,
        clock: Callable[[], float] = time.time,
        backoff: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.tz = tz
        self.clock = clock
        self.backoff = backoff
        self.alert_state = AlertState()
        self.checks = 0  # completed checks, for whoever watches the service
        self._session: aiohttp.ClientSession | None = None
        self._sender: WebhookSender | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        if not self.settings.enabled:
            logger.info("alerts: no webhooks configured (alerts.webhooks); nothing is sent")
            return
        self._session = aiohttp.ClientSession()
        self._sender = WebhookSender(
            self._session,
            timeout=self.settings.timeout,
            attempts=self.settings.attempts,
            backoff=self.backoff,
            tz=self.tz,
            clock=self.clock,
        )
        logger.info(
            "alerts: checking every %gs, sending to %s",
            self.settings.check_interval,
            ", ".join(w.label for w in self.settings.webhooks),
        )

    async def on_stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @Service.task
    async def _check_forever(self) -> None:
        if not self.settings.enabled:
            return
        while not self.should_stop:
            await self.sleep(self.settings.check_interval)
            if self.should_stop:
                break
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alerts: check failed; trying again next interval")

    async def check(self) -> list[Notice]:
        """One look at the worker: decide, then send. Returns what was sent (or tried)."""
        try:
            async with asyncio.timeout(max(SNAPSHOT_TIMEOUT, self.settings.check_interval)):
                snapshot = await self.snapshot()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("alerts: could not look at the worker (%r); check skipped", exc)
            return []
        decision = evaluate(snapshot, self.alert_state, self.settings, self.clock())
        self.alert_state = decision.state
        if decision.deferred:
            logger.warning(
                "alerts: %d message%s held back by alerts.max_per_minute=%d; sent later",
                decision.deferred,
                "" if decision.deferred == 1 else "s",
                self.settings.max_per_minute,
            )
        if decision.notices and self._sender is not None:
            await asyncio.gather(
                *(self._deliver(webhook, decision.notices) for webhook in self.settings.webhooks)
            )
        self.checks += 1
        return decision.notices

    async def _deliver(self, webhook: Webhook, notices: list[Notice]) -> None:
        """In order to one webhook (an alert before its recovery); webhooks in parallel."""
        assert self._sender is not None
        for notice in notices:
            await self._sender.send(webhook, notice, render(notice, self.tz))
