"""The Bazhuayu OpenAPI client: token, paging and retries. Knows nothing of Kafka or Faust."""

from jobstream.source.client import ApiRequestError, BazhuayuClient
from jobstream.source.envelope import MalformedResponse, UnreadableAnswer
from jobstream.source.limiter import RateLimiter
from jobstream.source.paging import Page, parse_page
from jobstream.source.token import Token, parse_token
from jobstream.source.transport import OnRequest

__all__ = [
    "ApiRequestError",
    "BazhuayuClient",
    "MalformedResponse",
    "OnRequest",
    "Page",
    "RateLimiter",
    "Token",
    "UnreadableAnswer",
    "parse_page",
    "parse_token",
]
