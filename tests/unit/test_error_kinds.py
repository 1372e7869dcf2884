"""The kind of a failed run's reason, as the crawl loop words them (jobstream.source.client and
jobstream.pipeline.crawl), the API's own message inside."""

from __future__ import annotations

import pytest

from jobstream.web.error_kinds import error_kind

TASK = "task_id=00f3b445-d8ec-44e8-88b2-4b971a228b1e offset=200"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (
            "authentication: the Bazhuayu API refused the credentials of user 'demo' "
            "(Invalid.Grant: The user name or password is incorrect.); check API_USERNAME and "
            "API_PASSWORD",
            "credentials",
        ),
        (f"{TASK}: the API rejected a freshly issued token", "credentials"),
        ("HTTP 400 Task.NotFound: task bad-<script> does not exist", "task_not_found"),
        ("HTTP 400 InvalidTask: 任务不存在", "task_not_found"),
        (
            f"{TASK}: ClientConnectorError: Cannot connect to host openapi.bazhuayu.com:443 "
            "ssl:default [Connection refused]; gave up after 4 attempts",
            "network",
        ),
        (f"{TASK}: ServerDisconnectedError; gave up after 4 attempts", "network"),
        (f"{TASK}: TimeoutError; gave up after 4 attempts", "timeout"),
        (f"{TASK}: still rate limited (HTTP 429) after 10 waits", "rate_limit"),
        (
            f"{TASK}: HTTP 503 with a non-JSON body '<html>Service Unavailable</html>'; gave up "
            "after 4 attempts",
            "api_server",
        ),
        (f"{TASK}: HTTP 500 Internal.Error: boom; gave up after 4 attempts", "api_server"),
        ("HTTP 400 Invalid.Parameter: size must be between 1 and 1000, got 5000", "api_request"),
        (
            "pages up to offset 3000 were sent but not applied within 60s (applied up to 2000); "
            "see the worker log for why",
            "kafka",
        ),
        ("KeyError: 'total'", "internal"),
    ],
)
def test_error_kind_of_each_reason_the_crawl_reports(reason: str, kind: str) -> None:
    assert error_kind(reason) == kind


@pytest.mark.parametrize("reason", [None, ""])
def test_error_kind_of_no_reason_is_none(reason: str | None) -> None:
    assert error_kind(reason) is None
