"""The API's JSON envelope: where the payload sits, what an error object says, and the error
raised for a body of the wrong shape (retried like a gateway error: it is usually one)."""

from typing import Any

from jobstream.errors import JobstreamError, SourceError


class MalformedResponse(JobstreamError, ValueError):
    """A body that parsed as JSON but is not the shape bazhuayu-api.md describes."""


class UnreadableAnswer(SourceError):
    """A successful answer whose JSON content no parser can take (nesting too deep, invalid
    escapes): asking again returns the same bytes, so it is not retried. `excerpt` is the start
    of the body, kept for job_rejects when the answer held a single row."""

    def __init__(self, message: str, excerpt: str) -> None:
        super().__init__(message)
        self.excerpt = excerpt


def error_of(body: Any) -> tuple[str, str] | None:
    """The (code, message) of an `{"error": {...}}` body, or None when there is no error object."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")
    if isinstance(error, str):
        # OAuth-style servers answer {"error": "invalid_grant", "error_description": "..."}.
        return error, str(body.get("error_description") or "")
    return None


def payload(body: Any, *, allow_top_level: bool = False) -> dict[str, Any]:
    """The object under `data`; with allow_top_level, the body itself when it has no `data`."""
    if not isinstance(body, dict):
        raise MalformedResponse(f"expected a JSON object, got {type(body).__name__}")
    data = body.get("data")
    if isinstance(data, dict):
        return data
    if allow_top_level and data is None:
        return body
    raise MalformedResponse("the body has no `data` object")


def as_int(data: dict[str, Any], key: str) -> int:
    """An integer field that may arrive as a number or a numeric string."""
    value = data.get(key)
    if isinstance(value, bool):
        raise MalformedResponse(f"`{key}` must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise MalformedResponse(f"`{key}` must be an integer, got {value!r}")
