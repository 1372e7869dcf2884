"""Delivering one message to one webhook: bounded attempts, and never an exception to the caller.

A network error, a timeout, HTTP 429 or 5xx is tried again after a backoff (1 s, 2 s, ... by
default) until `alerts.attempts` are spent. Any other answer is final: a 4xx, or a robot's own
refusal, which the robots send with HTTP 200 (`errcode` ≠ 0 from WeCom and DingTalk, `code` ≠ 0
from Feishu: a bad signature, a missing keyword, their rate limit) and which the same message
would get again. A message that cannot be delivered is logged at WARNING; the worker goes on.
Log lines name the webhook by its `name`, or by its host: the URL holds the robot's token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

import aiohttp
import msgspec
from yarl import URL

from jobstream.alerts import payloads
from jobstream.alerts.conditions import Notice
from jobstream.alerts.settings import Webhook
from jobstream.alerts.texts import SHANGHAI, Message
from jobstream.redaction import clip, hide_queries, without_url

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024
MAX_BACKOFF = 30.0


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    retry: bool = False  # worth another attempt
    reason: str = ""


class WebhookSender:
    """Sends messages over one aiohttp session (owned by the caller)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float,
        attempts: int,
        backoff: float = 1.0,
        tz: tzinfo = SHANGHAI,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.attempts = attempts
        self.backoff = backoff
        self.tz = tz
        self.clock = clock

    async def send(self, webhook: Webhook, notice: Notice, message: Message) -> bool:
        """True when the webhook accepted the message. Never raises (but lets cancellation by)."""
        for attempt in range(1, self.attempts + 1):
            try:
                outcome = await self._attempt(webhook, notice, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not stop the alerts, nor the worker
                logger.exception("alert to %s: unexpected error", webhook.label)
                outcome = Outcome(False, reason=type(exc).__name__)
            if outcome.delivered:
                logger.info("alert sent to %s: %s", webhook.label, message.title)
                return True
            left = self.attempts - attempt
            if not outcome.retry or left == 0:
                break
            delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
            logger.warning(
                "alert to %s failed: %s; %d attempt%s left, next in %.1fs",
                webhook.label,
                outcome.reason,
                left,
                "" if left == 1 else "s",
                delay,
            )
            await asyncio.sleep(delay)
        logger.warning(
            "alert to %s not delivered after %d attempt%s: %s (%s)",
            webhook.label,
            attempt,
            "" if attempt == 1 else "s",
            outcome.reason,
            message.title,
        )
        return False

    async def _attempt(self, webhook: Webhook, notice: Notice, message: Message) -> Outcome:
        # Built for each attempt: the robots refuse signatures more than an hour old.
        request = payloads.build(webhook, notice, message, self.clock(), self.tz)
        try:
            async with self.session.post(
                URL(request.url, encoded=True),
                data=request.body,
                headers=request.headers,
                timeout=self.timeout,
                allow_redirects=False,
            ) as response:
                answer = await response.content.read(MAX_ANSWER_BYTES)
                status = response.status
        except TimeoutError:
            return Outcome(False, retry=True, reason=f"no answer within {self.timeout.total}s")
        except (aiohttp.ClientError, OSError) as exc:
            detail = without_url(str(exc), request.url) or type(exc).__name__
            return Outcome(False, retry=True, reason=clip(detail, 200))
        return judge(webhook, status, answer)


def judge(webhook: Webhook, status: int, answer: bytes) -> Outcome:
    """Whether an answer means the message was taken."""
    if status == 429 or status >= 500:
        return Outcome(False, retry=True, reason=f"HTTP {status}")
    if not 200 <= status < 300:
        return Outcome(False, reason=f"HTTP {status}: {_excerpt(answer)}")
    if webhook.type == "json":
        return Outcome(True)
    try:
        body = msgspec.json.decode(answer)
    except msgspec.DecodeError:
        return Outcome(False, reason=f"HTTP {status} but not the robot's JSON: {_excerpt(answer)}")
    if not isinstance(body, dict):
        return Outcome(False, reason=f"HTTP {status} but not the robot's JSON: {_excerpt(answer)}")
    # Feishu answers {"code": 0, "msg": "success"}; its older answers had StatusCode.
    field = "code" if webhook.type == "feishu" and "code" in body else "errcode"
    if webhook.type == "feishu" and field not in body:
        field = "StatusCode"
    code = body.get(field)
    if code == 0:
        return Outcome(True)
    said = body.get("errmsg") or body.get("msg") or body.get("StatusMessage") or ""
    said = clip(hide_queries(str(said)), 200)
    return Outcome(False, reason=f"refused by the robot: {field}={code!r} {said}")


def _excerpt(answer: bytes) -> str:
    return clip(hide_queries(answer.decode(errors="replace")), 200) or "(empty)"
