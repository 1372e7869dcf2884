"""The robots' signatures (HMAC-SHA256, base64), and jobstream's own for plain JSON targets.

DingTalk 自定义机器人「加签」(open.dingtalk.com, custom robot access; the vendor's Python sample):
string_to_sign = f"{timestamp}\\n{secret}" with `timestamp` in milliseconds, HMAC-SHA256 keyed
by the secret, base64, then URL-encoded into the `sign` query parameter next to `timestamp`.
A wrong one is answered HTTP 200 `{"errcode": 310000, "errmsg": "sign not match"}`.

Feishu 自定义机器人「签名校验」(open.feishu.cn 自定义机器人使用指南): the *key* is
f"{timestamp}\\n{secret}" with `timestamp` in seconds, the message is empty, base64; sent as
`timestamp` (string) and `sign` fields of the JSON body. A wrong one: `{"code": 19021, ...}`.
Both reject timestamps more than an hour from their clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

JSON_TIMESTAMP_HEADER = "X-Jobstream-Timestamp"
JSON_SIGNATURE_HEADER = "X-Jobstream-Signature"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The base64 signature; the caller URL-encodes it into the query."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    digest = hmac.new(key, b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def json_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `"{timestamp}." + body`, keyed by the secret: a receiver
    recomputes it from the two headers and the raw body, and refuses old timestamps."""
    digest = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()
