"""What kind of error a failed run's reason is, for the people who read it: the dashboard says
each kind in Chinese (keeping the original message beside it), and /status gives the kind.

The reasons are the texts the crawl loop reports (`Crawler._report_failure`): the API client's
errors, whose wording it controls, with the API's own message inside. The kinds a user can
cause and fix come first: credentials, a task id, the network, the account's rate limit.
"""

from __future__ import annotations

import re
from typing import Literal

ErrorKind = Literal[
    "credentials",
    "task_not_found",
    "network",
    "timeout",
    "rate_limit",
    "api_server",
    "api_request",
    "kafka",
    "internal",
]

# In order: the first that matches is the kind.
_PATTERNS: tuple[tuple[ErrorKind, re.Pattern[str]], ...] = (
    (
        "credentials",
        re.compile(
            r"^authentication:|Invalid\.Grant|refused the credentials|rejected a freshly issued "
            r"token",
            re.I,
        ),
    ),
    (
        "task_not_found",
        re.compile(
            r"Task\.?NotFound|task\S* \S+ (does not|doesn't) exist|unknown task|"
            r"task\w* not found|任务不存在",
            re.I,
        ),
    ),
    ("rate_limit", re.compile(r"rate limited|HTTP 429|Throttl", re.I)),
    ("timeout", re.compile(r"TimeoutError|timed? ?out|HTTP 408", re.I)),
    (
        "network",
        re.compile(
            r"ClientConnectorError|ClientOSError|ServerDisconnected|Cannot connect|"
            r"Connection (refused|reset|closed)|Name or service not known|"
            r"nodename nor servname|Temporary failure in name resolution|ClientConnectionError|"
            r"SSLError|certificate verify failed",
            re.I,
        ),
    ),
    ("api_server", re.compile(r"HTTP 5\d\d|non-JSON body|unreadable|malformed", re.I)),
    ("api_request", re.compile(r"HTTP 4\d\d", re.I)),
    ("kafka", re.compile(r"not applied within|source reset was not applied|Kafka", re.I)),
)


def error_kind(reason: str | None) -> ErrorKind | None:
    """The kind of a failed run's `reason`; None for no reason."""
    if not reason:
        return None
    for kind, pattern in _PATTERNS:
        if pattern.search(reason):
            return kind
    return "internal"
