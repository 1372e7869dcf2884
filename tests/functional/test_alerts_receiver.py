"""Proof that the loopback robot receiver (tests/robots.py) refuses what the real robots
refuse: a test double that accepts anything proves nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import aiohttp

from tests.robots import SECRETS, RobotReceiver, receiver

__all__ = ["receiver"]  # the fixture, shared


# -- the receiver refuses what the robots refuse ---------------------------------------------


async def post(url: str, body: Any) -> Any:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return await response.json()


async def test_receiver_dingtalk_wrong_sign_is_refused_like_the_robot(
    receiver: RobotReceiver,
) -> None:
    now = int(time.time() * 1000)
    body = {"msgtype": "markdown", "markdown": {"title": "t", "text": "x"}}

    answer = await post(f"{receiver.url('dingtalk')}&timestamp={now}&sign=AAAA", body)

    assert answer == {"errcode": 310000, "errmsg": "sign not match"}


async def test_receiver_feishu_stale_timestamp_is_refused_like_the_robot(
    receiver: RobotReceiver,
) -> None:
    stale = int(time.time()) - 7200
    mac = hmac.new(f"{stale}\n{SECRETS['feishu']}".encode(), b"", hashlib.sha256)
    sign = base64.b64encode(mac.digest()).decode()
    body = {"msg_type": "text", "content": {"text": "x"}, "timestamp": str(stale), "sign": sign}

    answer = await post(receiver.url("feishu"), body)

    assert answer["code"] == 19021


async def test_receiver_wecom_text_instead_of_markdown_is_refused(receiver: RobotReceiver) -> None:
    answer = await post(receiver.url("wecom"), {"msgtype": "text", "text": {"content": "x"}})

    assert answer["errcode"] != 0
    assert receiver.accepted("wecom") == []
