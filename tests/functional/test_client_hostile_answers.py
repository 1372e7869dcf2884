"""The API client against an API host that echoes the password and sends answers of any size
(tests/hostile_api.py, over real HTTP): what the client raises and logs holds no piece of a
secret, in any encoding, and no more than a bounded amount of what the host sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestServer

from jobstream.errors import AuthError
from jobstream.redaction import ERROR_CHARS, keep_secret
from jobstream.source import BazhuayuClient, UnreadableAnswer
from jobstream.source.client import EXCERPT_BYTES
from jobstream.source.transport import MAX_ANSWER_BYTES
from tests.harness import SECRETS
from tests.hostile_api import ECHO_HEAD, echo_of, hostile_app
from tests.leaks import leaked_slices

USER = "jobs-account"
# Its head is an ordinary word of the log lines; the rest has symbols each encoding changes.
PASSWORD = "offs" + "Xq7#pw9Lk2/Mz&<é>"


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[..., object]]:
    servers: list[TestServer] = []

    async def start(**options: int) -> str:
        server = TestServer(hostile_app(USER, PASSWORD, **options))
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


def client_of(url: str) -> BazhuayuClient:
    keep_secret(PASSWORD)  # as the worker does with the config's secrets
    SECRETS.watch(PASSWORD)
    return BazhuayuClient(url, USER, PASSWORD, request_timeout=20, max_retries=0)


def test_hostile_api_echo_holds_every_leak_the_issue_saw() -> None:
    # The host really does send the pieces: without it the tests below could not fail.
    echo = echo_of(USER, PASSWORD)
    assert len(leaked_slices(echo, [PASSWORD], user=USER)) >= 5


async def test_client_wrong_password_error_holds_no_piece_of_it(
    hostile: Callable[..., object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with client_of(await hostile()) as client:  # type: ignore[misc]
        with pytest.raises(AuthError) as raised:
            await client.fetch_page("t", 0, 10)
    message = str(raised.value)
    assert ECHO_HEAD in message and "check API_USERNAME and API_PASSWORD" in message
    assert leaked_slices(message, [PASSWORD], user=USER) == []
    assert leaked_slices(caplog.text, [PASSWORD], user=USER) == []


async def test_client_huge_error_message_is_clipped_where_it_enters(
    hostile: Callable[..., object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with client_of(await hostile(pad=300_000)) as client:  # type: ignore[misc]
        with pytest.raises(AuthError) as raised:
            await client.fetch_page("t", 0, 10)
    message = str(raised.value)
    # The API's message at most ERROR_CHARS, inside a sentence of the client's own.
    assert ECHO_HEAD in message and len(message) < ERROR_CHARS + 200
    assert "more characters)" in message
    assert all(len(record.getMessage()) < ERROR_CHARS + 400 for record in caplog.records)


async def test_client_answer_above_the_cap_is_unreadable_not_held(
    hostile: Callable[..., object],
) -> None:
    # Unreadable, not retried: the crawl then asks for fewer rows until it finds the row.
    url = await hostile(page_bytes=MAX_ANSWER_BYTES + (2 << 20))
    async with client_of(url) as client:  # type: ignore[misc]
        with pytest.raises(UnreadableAnswer) as raised:
            await client.fetch_page("t", 0, 1000)
    assert f"larger than {MAX_ANSWER_BYTES} bytes" in str(raised.value)
    assert len(raised.value.excerpt) <= EXCERPT_BYTES
