"""How Kafka clients reach the broker: addresses, timeouts, group sessions,
and starting a client without leaving a half-started one behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.types.settings import Settings

from jobstream.config import Config


def broker_urls(config: Config) -> list[str]:
    """The brokers Faust connects to, as `kafka://host:port` URLs."""
    kafka = config.kafka
    if kafka.is_embedded:
        return [f"kafka://127.0.0.1:{kafka.embedded_port}"]
    hosts = [h.strip() for h in kafka.bootstrap_servers.split(",") if h.strip()]
    return [h if "://" in h else f"kafka://{h}" for h in hosts]


def client_options(config: Config) -> dict[str, Any]:
    return {
        "bootstrap_servers": [url.split("://", 1)[-1] for url in broker_urls(config)],
        "request_timeout_ms": int(config.kafka.http_timeout * 1000),
    }


def group_options(conf: Settings) -> dict[str, Any]:
    """The Faust worker's own group session settings (see `jobstream.app` for why)."""
    return {
        "session_timeout_ms": int(conf.broker_session_timeout * 1000),
        "heartbeat_interval_ms": int(conf.broker_heartbeat_interval * 1000),
    }


def stream_reader(
    options: dict[str, Any], client_id: str, fetch_wait_ms: int, fetch_bytes: int
) -> AIOKafkaConsumer:
    """A consumer for SSE: no group, nothing committed, partitions assigned by the caller."""
    return AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        # Only used when a position no longer exists (a wiped broker).
        auto_offset_reset="earliest",
        client_id=client_id,
        fetch_max_wait_ms=fetch_wait_ms,
        max_partition_fetch_bytes=fetch_bytes,
        fetch_max_bytes=fetch_bytes * 2,
        **options,
    )


async def start_or_close(start: Awaitable[object], close: Callable[[], Awaitable[object]]) -> None:
    """Await `start`; if it fails (a timeout or a cancellation too), await `close` and re-raise."""
    try:
        await start
    except BaseException:
        await close()
        raise


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop `consumer`, even when a fetch of its own was waiting out a retry.

    aiokafka's fetcher cancels its pending fetch tasks on close and then awaits them without
    catching their CancelledError, which escapes `stop()` although nobody cancelled the caller
    (seen with a fetch backing off after RequestTimedOutError). That error is swallowed here;
    a cancellation of the caller itself still propagates."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
