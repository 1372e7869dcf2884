"""A loopback HTTP server that answers like the robots, for the alert tests (functional and
integration): a test double that accepts anything proves nothing, so it refuses what the real
robots refuse (tests/functional/test_alerts_receiver.py proves it does).

Each robot's documented body is declared below as a strict msgspec Struct (no unknown field),
and signatures are checked the way the vendors describe: DingTalk's `timestamp`/`sign` query
(milliseconds, HMAC keyed by the secret), Feishu's `timestamp`/`sign` body fields (seconds, HMAC
keyed by "timestamp\\nsecret" over nothing), both refused more than an hour off. Refusals are
HTTP 200 with the vendors' own codes.

`ThreadedReceiver` runs one on its own event loop in a thread, for tests that block (the
integration tests, which poll real subprocesses).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import msgspec
import pytest
from aiohttp import web

from jobstream.alerts.settings import Webhook

TOKENS = {"wecom": "WECOM-KEY-7f3a", "dingtalk": "DING-TOKEN-91c2", "feishu": "FEISHU-HOOK-5e3d"}
SECRETS = {"dingtalk": "SECding-9b1e", "feishu": "feishu-sec-44ab", "json": "json-sec-0c7d"}
HIDDEN = (*TOKENS.values(), *SECRETS.values())  # must never reach a log line or a message
T = TypeVar("T")


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class WecomMarkdown(_Strict):
    content: str


class WecomBody(_Strict):
    msgtype: Literal["markdown"]
    markdown: WecomMarkdown


class DingtalkMarkdown(_Strict):
    title: str
    text: str


class DingtalkBody(_Strict):
    msgtype: Literal["markdown"]
    markdown: DingtalkMarkdown


class FeishuText(_Strict):
    text: str


class FeishuBody(_Strict):
    msg_type: Literal["text"]
    content: FeishuText
    timestamp: str | None = None
    sign: str | None = None


class JsonDetails(_Strict):
    status: str | None
    last_error: str | None
    consecutive_failures: int | None
    current_offset: int | None
    total: int | None
    stalled_since: str | None
    lag: int | None
    threshold: int | None
    cleared_by: str | None


class JsonEvent(_Strict):
    """jobstream's documented JSON shape (docs/alerts.zh.md)."""

    source: Literal["jobstream"]
    kind: Literal["alert", "repeat", "recovery"]
    condition: Literal["task_error", "task_stalled", "consumer_lag", "broker_down"]
    task_id: str | None
    title: str
    text: str
    started_at: str
    at: str
    details: JsonDetails


BODIES: dict[str, type[_Strict]] = {
    "wecom": WecomBody,
    "dingtalk": DingtalkBody,
    "feishu": FeishuBody,
    "json": JsonEvent,
}


@dataclass
class Reply:
    """A scripted answer instead of the robot's own: a status and body, or no answer at all."""

    status: int = 200
    body: Any = None
    hang: bool = False


@dataclass
class Received:
    kind: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    accepted: bool = False
    answer: Any = None

    @property
    def body(self) -> Any:
        return msgspec.json.decode(self.raw)

    @property
    def text(self) -> str:
        """The message's text, whatever the robot."""
        body = self.body
        return {
            "wecom": lambda: body["markdown"]["content"],
            "dingtalk": lambda: body["markdown"]["text"],
            "feishu": lambda: body["content"]["text"],
            "json": lambda: body["text"],
        }[self.kind]()


@dataclass
class RobotReceiver:
    """WeCom, DingTalk, Feishu and a JSON endpoint on one loopback port."""

    secrets: dict[str, str] = field(default_factory=lambda: dict(SECRETS))
    received: dict[str, list[Received]] = field(
        default_factory=lambda: {kind: [] for kind in BODIES}
    )
    replies: dict[str, list[Reply]] = field(default_factory=lambda: {kind: [] for kind in BODIES})
    base: str = ""
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self._handler("wecom"))
        app.router.add_post("/robot/send", self._handler("dingtalk"))
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self._handler("feishu"))
        app.router.add_post("/alerts", self._handler("json"))
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, kind: str) -> str:
        return {
            "wecom": f"{self.base}/cgi-bin/webhook/send?key={TOKENS['wecom']}",
            "dingtalk": f"{self.base}/robot/send?access_token={TOKENS['dingtalk']}",
            "feishu": f"{self.base}/open-apis/bot/v2/hook/{TOKENS['feishu']}",
            "json": f"{self.base}/alerts",
        }[kind]

    def webhook(self, kind: str, *, secret: str | None = None) -> Webhook:
        """A webhook pointing here, signed with the receiver's secret unless told otherwise."""
        if secret is None:
            secret = self.secrets.get(kind, "")
        return Webhook(type=kind, url=self.url(kind), secret=secret)  # type: ignore[arg-type]

    def webhooks(self) -> tuple[Webhook, ...]:
        return tuple(self.webhook(kind) for kind in BODIES)

    def script(self, kind: str, *replies: Reply) -> None:
        self.replies[kind].extend(replies)

    def accepted(self, kind: str) -> list[Received]:
        return [r for r in self.received[kind] if r.accepted]

    def _handler(self, kind: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            got = Received(kind, dict(request.query), dict(request.headers), await request.read())
            self.received[kind].append(got)
            reply = self.replies[kind].pop(0) if self.replies[kind] else None
            if reply is not None and reply.hang:
                await self._release.wait()
            if reply is not None and (reply.body is not None or reply.status != 200):
                got.answer = reply.body
                return web.json_response(reply.body or {}, status=reply.status)
            if kind == "feishu" and request.match_info["token"] != TOKENS["feishu"]:
                got.answer = {
                    "code": 19001,
                    "msg": "param invalid: incoming webhook access token invalid",
                }
            else:
                got.answer = self._judge(kind, got)
            got.accepted = got.answer.get("errcode", got.answer.get("code", 0)) == 0
            # The robots refuse with HTTP 200 and a code; a plain JSON endpoint with a status.
            status = 200 if kind != "json" or got.accepted else got.answer["code"]
            return web.json_response(got.answer, status=status)

        return handle

    def _judge(self, kind: str, got: Received) -> dict[str, Any]:
        """What the robot would answer."""
        try:
            body = msgspec.json.decode(got.raw, type=BODIES[kind])
        except msgspec.ValidationError as exc:
            return _refusal(kind, f"bad body: {exc}")
        secret = self.secrets.get(kind, "")
        if kind == "wecom":
            if got.query.get("key") != TOKENS["wecom"]:
                return {"errcode": 93000, "errmsg": "invalid webhook url"}
            if len(body.markdown.content.encode()) > 4096:  # type: ignore[attr-defined]
                return {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
            return {"errcode": 0, "errmsg": "ok"}
        if kind == "dingtalk":
            if got.query.get("access_token") != TOKENS["dingtalk"]:
                return {"errcode": 300001, "errmsg": "token is not exist"}
            if secret and not _dingtalk_signed(secret, got.query):
                return {"errcode": 310000, "errmsg": "sign not match"}
            return {"errcode": 0, "errmsg": "ok"}
        if kind == "feishu":
            if secret and not _feishu_signed(secret, body.timestamp, body.sign):  # type: ignore[attr-defined]
                return {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
            return {"code": 0, "msg": "success", "data": {}}
        if secret and not _json_signed(secret, got):
            return {"code": 401, "message": "bad signature"}
        return {}


def _refusal(kind: str, why: str) -> dict[str, Any]:
    if kind == "feishu":
        return {"code": 9499, "msg": f"Bad Request: {why}"}
    if kind == "json":
        return {"code": 400, "message": why}
    return {"errcode": 40035, "errmsg": f"invalid parameter: {why}"}


def _dingtalk_signed(secret: str, query: dict[str, str]) -> bool:
    timestamp = query.get("timestamp", "")
    if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return hmac.compare_digest(query.get("sign", ""), base64.b64encode(mac.digest()).decode())


def _feishu_signed(secret: str, timestamp: str | None, sign: str | None) -> bool:
    if not timestamp or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 3600:
        return False
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return hmac.compare_digest(sign or "", base64.b64encode(mac.digest()).decode())


def _json_signed(secret: str, got: Received) -> bool:
    timestamp = got.headers.get("X-Jobstream-Timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + got.raw, hashlib.sha256)
    return hmac.compare_digest(
        got.headers.get("X-Jobstream-Signature", ""), "sha256=" + mac.hexdigest()
    )


@pytest.fixture
async def receiver() -> AsyncIterator[RobotReceiver]:
    started = RobotReceiver()
    await started.start()
    yield started
    await started.stop()


def assert_nothing_hidden_in(text: str) -> None:
    leaked = [secret for secret in HIDDEN if secret in text]
    assert not leaked, f"{leaked} in {text!r}"


class ThreadedReceiver:
    """A `RobotReceiver` serving from a thread of its own, for tests that block while they wait.

    `received` is appended to on the receiver's thread and only read here (a list's append and
    copy are atomic under the GIL)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.robots = self._call(self._make())

    @staticmethod
    async def _make() -> RobotReceiver:
        robots = RobotReceiver()  # its asyncio.Event belongs to this loop
        await robots.start()
        return robots

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self._call(self.robots.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def received(self, kind: str) -> list[Received]:
        return list(self.robots.received[kind])
