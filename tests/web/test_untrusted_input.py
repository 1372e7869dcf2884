"""Every byte a client can put in a header or a query parameter answered with a 4xx JSON error
that quotes it safely, with and without tokens: never a 500, never aiohttp's own error page,
never a traceback in the log.

Requests are written as raw bytes on a socket: an HTTP client library would refuse to send
most of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from jobstream import metrics
from tests.web.conftest import Dataset, Served, assert_json_error, config_for, serve

ADMIN = "admin-token-untrusted-input"
READ = "read-token-untrusted-input"
HIGH_BYTES = [bytes([b]) for b in range(0x80, 0x100)]


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: Any


async def raw_request(url: str, head: bytes) -> Answer:
    """`head` (a request line and headers, without the final blank line) sent as it is."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head + f"\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    header, _, body = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    content_type = fields.get("Content-Type", "")
    parsed = json.loads(body) if content_type.startswith("application/json") else body
    return Answer(status, content_type, parsed)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def locked(_apps_of_tests: list[Served], dataset: Dataset) -> Served:
    config = config_for(
        dataset.bootstrap, dataset.topic, app={"admin_token": ADMIN, "read_token": READ}
    )
    served = await serve(config)
    _apps_of_tests.append(served)
    await served.warm_groups(0)
    return served


def both(served: Served, locked: Served) -> list[tuple[Served, str]]:
    """The two configurations, each with what a caller who has the token sends."""
    return [(served, ""), (locked, f"Bearer {ADMIN}")]


# (header, how the byte is put in it, request line): each a place where the header is read.
HEADERS = [
    ("Authorization", b"Bearer %s", b"GET /consume?timeout_ms=0 HTTP/1.1"),
    ("Authorization", b"Bearer tok%sen", b"POST /crawl/stop HTTP/1.1"),
    ("Authorization", b"%s", b"GET /status HTTP/1.1"),
    ("Origin", b"http://evil%s.example", b"GET /consume?timeout_ms=0 HTTP/1.1"),
    ("Origin", b"%s", b"POST /crawl/start HTTP/1.1"),
    ("Sec-Fetch-Site", b"%s", b"GET /consume?timeout_ms=0 HTTP/1.1"),
    ("Sec-Fetch-Site", b"same-origin%s", b"POST /crawl/stop HTTP/1.1"),
    ("Last-Event-ID", b"0:%s", b"GET /consume/stream HTTP/1.1"),
    ("Last-Event-ID", b"%s", b"GET /consume/stream HTTP/1.1"),
]


@pytest.mark.parametrize(
    ("header", "shape", "line"),
    HEADERS,
    ids=[f"{h}-{line.split()[1].decode()}" for h, _, line in HEADERS],
)
async def test_every_high_byte_in_a_header_is_a_4xx_json_error(
    served: Served,
    locked: Served,
    header: str,
    shape: bytes,
    line: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    for app, authorization in both(served, locked):
        for byte in HIGH_BYTES:
            head = line + f"\r\n{header}: ".encode() + shape.replace(b"%s", byte)
            if authorization and header != "Authorization":
                head += f"\r\nAuthorization: {authorization}".encode()
            if line.startswith(b"POST"):
                head += b"\r\nContent-Type: application/json"
            answer = await raw_request(app.url, head)
            assert answer.content_type.startswith("application/json"), (byte, answer)
            assert_json_error(answer.status, answer.body, (400, 401, 403, 404, 415))
    assert "Traceback" not in caplog.text and "Logging error" not in caplog.text
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("jobstream.web", "aiohttp"))
    ]


QUERIES = [
    "/consume?group={}",
    "/consume?batch_size={}",
    "/consume?timeout_ms=0&{}=1",
    "/status?task_id={}",
    "/consume/stream?from={}",
    "/crawl/stop?task_id={}",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_every_high_byte_in_a_query_parameter_is_a_4xx_json_error(
    served: Served, locked: Served, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    method = "POST" if query.startswith("/crawl") else "GET"
    for app, authorization in both(served, locked):
        for byte in HIGH_BYTES:
            target = query.replace("{}", f"x%{byte[0]:02X}").encode()
            head = f"{method} ".encode() + target + b" HTTP/1.1"
            if authorization:
                head += f"\r\nAuthorization: {authorization}".encode()
            if method == "POST":
                head += b"\r\nContent-Type: application/json"
            answer = await raw_request(app.url, head)
            assert answer.content_type.startswith("application/json"), (target, answer)
            assert_json_error(answer.status, answer.body, (400, 401, 403, 404, 415))
    assert "Traceback" not in caplog.text and "Logging error" not in caplog.text


async def test_raw_bytes_in_the_url_refused_in_one_counted_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are not percent-encoded make the request line unparsable: aiohttp answers
    400 before any handler runs (its own plain text). What matters here: not a 500, and not a
    traceback in the log for each such request."""
    caplog.set_level(logging.INFO)
    counter = metrics.HTTP_REQUESTS.labels("unparsed", "other", "400")
    before = counter._value.get()
    for byte in HIGH_BYTES:
        answer = await raw_request(served.url, b"GET /consume?group=x" + byte + b" HTTP/1.1")
        assert answer.status == 400
    assert counter._value.get() - before == len(HIGH_BYTES)
    loud = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("aiohttp", "jobstream"))
    ]
    assert not loud, [r.getMessage() for r in loud[:3]]


# Methods HTTP parsers accept (WebDAV and others) that no endpoint serves.
ODD_METHODS = ["PROPFIND", "MKCOL", "LOCK", "UNLOCK", "SEARCH", "REPORT", "PURGE", "LINK", "BIND"]


async def test_odd_methods_add_no_metric_labels(served: Served) -> None:
    for method in ODD_METHODS:
        answer = await raw_request(served.url, f"{method} /consume HTTP/1.1".encode())
        assert_json_error(answer.status, answer.body, 405)
    methods = {
        sample.labels["method"]
        for metric in metrics.HTTP_REQUESTS.collect()
        for sample in metric.samples
    }
    assert methods <= metrics.KNOWN_METHODS | {"other"}, methods
