"""Delivering alerts over real HTTP to robots emulated on loopback: each type's documented body
and signature, retries that end, refusals and silence that are logged and never raised."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import pytest

from jobstream.alerts.conditions import Facts, Notice
from jobstream.alerts.sender import WebhookSender
from jobstream.alerts.settings import Webhook
from jobstream.alerts.texts import render
from tests.robots import (
    TOKENS,
    Reply,
    RobotReceiver,
    assert_nothing_hidden_in,
    receiver,
)

__all__ = ["receiver"]  # the fixture, shared

TASK = "00f3b445-d8ec-44e8-88b2-4b971a228b1e"
FAILED = Notice(
    "alert",
    "task_error",
    TASK,
    1_768_444_200.0,
    1_768_444_200.0,
    Facts(
        status="error",
        last_error="API 503 after 3 attempts",
        consecutive_failures=2,
        current_offset=300,
        total=1000,
    ),
)
TITLE = f"【jobstream 告警】任务 {TASK} 采集失败"
MakeSender = Callable[..., WebhookSender]


@pytest.fixture
async def make_sender() -> AsyncIterator[MakeSender]:
    """`make_sender(attempts=2, timeout=0.2)`: test-sized backoff."""
    session = aiohttp.ClientSession()

    def make(*, attempts: int = 3, timeout: float = 5.0) -> WebhookSender:
        return WebhookSender(session, timeout=timeout, attempts=attempts, backoff=0.01)

    yield make
    await session.close()


async def send(sender: WebhookSender, webhook: Webhook, notice: Notice = FAILED) -> bool:
    return await sender.send(webhook, notice, render(notice))


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO, logger="jobstream.alerts")
    yield
    assert_nothing_hidden_in(caplog.text)


# -- each robot gets its documented body, signed ---------------------------------------------


async def test_sender_wecom_robot_receives_a_markdown_message(
    receiver: RobotReceiver, make_sender: MakeSender
) -> None:
    assert await send(make_sender(), receiver.webhook("wecom"))

    [got] = receiver.accepted("wecom")
    assert got.body["msgtype"] == "markdown"
    assert got.body["markdown"]["content"].startswith(f'<font color="warning">**{TITLE}**</font>')
    assert "> 错误：API 503 after 3 attempts" in got.text
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_sender_dingtalk_robot_receives_signed_markdown(
    receiver: RobotReceiver, make_sender: MakeSender
) -> None:
    assert await send(make_sender(), receiver.webhook("dingtalk"))

    [got] = receiver.accepted("dingtalk")  # the receiver checked timestamp and sign
    assert set(got.query) == {"access_token", "timestamp", "sign"}
    assert got.body["markdown"]["title"] == TITLE
    assert got.text.startswith(f"#### {TITLE}\n\n- 错误：")


async def test_sender_feishu_robot_receives_signed_text(
    receiver: RobotReceiver, make_sender: MakeSender
) -> None:
    assert await send(make_sender(), receiver.webhook("feishu"))

    [got] = receiver.accepted("feishu")
    assert got.body["msg_type"] == "text" and {"timestamp", "sign"} <= set(got.body)
    assert got.text == render(FAILED).text


async def test_sender_json_endpoint_receives_the_event_with_its_signature(
    receiver: RobotReceiver, make_sender: MakeSender
) -> None:
    assert await send(make_sender(), receiver.webhook("json"))

    [got] = receiver.accepted("json")
    assert got.body["condition"] == "task_error" and got.body["task_id"] == TASK
    assert got.body["details"]["current_offset"] == 300
    assert got.headers["X-Jobstream-Signature"].startswith("sha256=")


async def test_sender_robots_without_secret_are_not_signed(make_sender: MakeSender) -> None:
    unsigned = RobotReceiver(secrets={})
    await unsigned.start()
    try:
        for kind in ("dingtalk", "feishu", "json"):
            assert await send(make_sender(), unsigned.webhook(kind))
    finally:
        await unsigned.stop()

    assert "sign" not in unsigned.accepted("dingtalk")[0].query
    assert "sign" not in unsigned.accepted("feishu")[0].body
    assert "X-Jobstream-Signature" not in unsigned.accepted("json")[0].headers


# -- failures: retried when it may help, logged, never raised --------------------------------


async def test_sender_server_error_then_ok_is_retried_and_delivered(
    receiver: RobotReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script("dingtalk", Reply(status=500, body={"error": "busy"}))

    assert await send(make_sender(attempts=3), receiver.webhook("dingtalk"))

    assert len(receiver.received["dingtalk"]) == 2
    assert len(receiver.accepted("dingtalk")) == 1
    assert "failed: HTTP 500; 2 attempts left" in caplog.text


async def test_sender_rate_limited_by_http_429_is_retried(
    receiver: RobotReceiver, make_sender: MakeSender
) -> None:
    receiver.script("json", Reply(status=429, body={}), Reply(status=503, body={}))

    assert await send(make_sender(attempts=3), receiver.webhook("json"))

    assert len(receiver.received["json"]) == 3


async def test_sender_server_errors_until_the_attempts_run_out_give_up(
    receiver: RobotReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script("wecom", *[Reply(status=502, body={})] * 5)

    assert not await send(make_sender(attempts=3), receiver.webhook("wecom"))

    assert len(receiver.received["wecom"]) == 3
    assert "1 attempt left" in caplog.text
    assert "not delivered after 3 attempts: HTTP 502" in caplog.text


@pytest.mark.parametrize(
    ("kind", "answer", "logged"),
    [
        ("feishu", {"code": 19024, "msg": "Key Words Not Found"}, "code=19024 Key Words Not Found"),
        (
            "dingtalk",
            {"errcode": 130101, "errmsg": "send too fast"},
            "errcode=130101 send too fast",
        ),
        ("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"}, "errcode=45009"),
    ],
)
async def test_sender_robot_errcode_counts_as_failure_logged_not_retried(
    receiver: RobotReceiver,
    make_sender: MakeSender,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    answer: dict,
    logged: str,
) -> None:
    receiver.script(kind, Reply(status=200, body=answer))

    assert not await send(make_sender(attempts=3), receiver.webhook(kind))

    assert len(receiver.received[kind]) == 1
    failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 1 and logged in failures[0].getMessage()
    assert "not delivered after 1 attempt: refused by the robot" in failures[0].getMessage()


async def test_sender_wrong_signing_secret_is_the_robots_refusal(
    receiver: RobotReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    assert not await send(make_sender(), receiver.webhook("dingtalk", secret="SECwrong"))
    assert not await send(make_sender(), receiver.webhook("feishu", secret="wrong"))

    assert "errcode=310000 sign not match" in caplog.text
    assert "code=19021" in caplog.text


async def test_sender_http_4xx_is_final(
    receiver: RobotReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script("json", Reply(status=404, body={"message": "no such hook"}))

    assert not await send(make_sender(attempts=3), receiver.webhook("json"))

    assert len(receiver.received["json"]) == 1
    assert 'HTTP 404: {"message": "no such hook"}' in caplog.text


async def test_sender_receiver_that_never_answers_gives_up_after_the_attempts(
    receiver: RobotReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script("feishu", Reply(hang=True), Reply(hang=True))

    assert not await send(make_sender(attempts=2, timeout=0.2), receiver.webhook("feishu"))

    assert len(receiver.received["feishu"]) == 2
    assert "not delivered after 2 attempts: no answer within 0.2s" in caplog.text


async def test_sender_unreachable_webhook_is_logged_without_its_token(
    make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    webhook = Webhook(
        type="feishu", url=f"http://127.0.0.1:{port}/open-apis/bot/v2/hook/{TOKENS['feishu']}"
    )

    assert not await send(make_sender(attempts=2), webhook)

    assert f"alert to feishu http://127.0.0.1:{port}/… not delivered after 2 attempts" in (
        caplog.text
    )


async def test_sender_answer_that_is_not_the_robots_json_is_a_failure(
    receiver: RobotReceiver, make_sender: MakeSender, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script("wecom", Reply(status=200, body=["not", "an", "object"]))

    assert not await send(make_sender(), receiver.webhook("wecom"))

    assert "HTTP 200 but not the robot's JSON" in caplog.text
