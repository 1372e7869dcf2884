"""Stopping a Kafka consumer whose own fetch task was cancelled under it (aiokafka re-raises
that task's CancelledError from `stop()`) is a stop, not a cancellation of the caller; a
caller that is itself cancelled still sees its cancellation."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from jobstream.broker.clients import stop_consumer


class _FetcherCancelledOnClose:
    """What aiokafka 0.14's consumer does when a fetch was backing off: close() cancels the
    pending fetch task, then awaits it."""

    async def stop(self) -> None:
        pending = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        pending.cancel()
        await pending


async def test_a_cancelled_fetch_inside_stop_does_not_escape() -> None:
    consumer = _FetcherCancelledOnClose()
    with pytest.raises(asyncio.CancelledError):
        await consumer.stop()  # the library's behaviour this guards against
    await stop_consumer(cast(Any, _FetcherCancelledOnClose()))


async def test_the_callers_own_cancellation_still_propagates() -> None:
    started = asyncio.Event()

    class Slow:
        async def stop(self) -> None:
            started.set()
            await asyncio.sleep(10)

    task = asyncio.ensure_future(stop_consumer(cast(Any, Slow())))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
