"""The robots' signatures against known answers.

Neither vendor publishes a fixed (timestamp, secret) -> sign pair: their documents show the
algorithm with a placeholder secret ("this is secret" in DingTalk's Python sample). The expected
values below were computed once with OpenSSL, independently of this code:

    printf '%s\\n%s' 1577262236757 'this is secret' \\
        | openssl dgst -sha256 -hmac 'this is secret' -binary | base64
    printf '' | openssl dgst -sha256 -mac HMAC \\
        -macopt key:"$(printf '%s\\n%s' 1599360473 demo-secret)" -binary | base64

(1599360473 is the example timestamp in Feishu's guide.)
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from jobstream.alerts import payloads, signing
from jobstream.alerts.conditions import Facts, Notice
from jobstream.alerts.settings import Webhook
from jobstream.alerts.texts import Message

DINGTALK_SIGN = "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="
FEISHU_SIGN = "3/MaVZ8JLIy4TUG+7KSFJqvUkTKd+HWY8g+56DZWq8s="
NOTICE = Notice("alert", "broker_down", "", 1_599_360_000.0, 1_599_360_000.0, Facts())
MESSAGE = Message("【jobstream 告警】Kafka 无法连接", ("worker 连不上 Kafka broker",))


def test_signing_dingtalk_fixed_timestamp_matches_openssl() -> None:
    assert signing.dingtalk_sign("this is secret", 1577262236757) == DINGTALK_SIGN


def test_signing_feishu_fixed_timestamp_matches_openssl() -> None:
    assert signing.feishu_sign("demo-secret", 1599360473) == FEISHU_SIGN


def test_signing_feishu_key_is_timestamp_and_secret_not_the_secret() -> None:
    # The trap the two vendors set: DingTalk keys by the secret, Feishu by "ts\nsecret".
    assert signing.feishu_sign("demo-secret", 1599360473) != signing.dingtalk_sign(
        "demo-secret", 1599360473
    )


def test_payloads_dingtalk_secret_puts_millisecond_timestamp_and_urlencoded_sign_in_query() -> None:
    webhook = Webhook(
        type="dingtalk",
        url="https://oapi.dingtalk.com/robot/send?access_token=abc",
        secret="this is secret",
    )

    request = payloads.build(webhook, NOTICE, MESSAGE, now=1577262236.757)

    query = urlsplit(request.url).query
    assert query == (
        "access_token=abc&timestamp=1577262236757"
        "&sign=hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"
    )
    assert parse_qs(query)["sign"] == [DINGTALK_SIGN]


def test_payloads_feishu_secret_puts_second_timestamp_and_sign_in_body() -> None:
    import msgspec

    webhook = Webhook(type="feishu", url="https://open.feishu.cn/x", secret="demo-secret")

    request = payloads.build(webhook, NOTICE, MESSAGE, now=1599360473.9)

    body = msgspec.json.decode(request.body)
    assert body["timestamp"] == "1599360473" and body["sign"] == FEISHU_SIGN
    assert request.url == "https://open.feishu.cn/x"


def test_payloads_json_secret_signs_timestamp_and_raw_body() -> None:
    webhook = Webhook(type="json", url="http://127.0.0.1:1/a", secret="k")

    request = payloads.build(webhook, NOTICE, MESSAGE, now=1599360473.2)

    timestamp = request.headers["X-Jobstream-Timestamp"]
    expected = hmac.new(b"k", b"1599360473." + request.body, hashlib.sha256).hexdigest()
    assert timestamp == "1599360473"
    assert request.headers["X-Jobstream-Signature"] == "sha256=" + expected


def test_payloads_without_secret_carry_no_signature() -> None:
    for kind, url in [
        ("dingtalk", "https://d/robot/send?access_token=a"),
        ("feishu", "https://f/h"),
    ]:
        request = payloads.build(Webhook(type=kind, url=url), NOTICE, MESSAGE, now=1.0)  # type: ignore[arg-type]
        assert b'"sign"' not in request.body and "sign=" not in request.url
