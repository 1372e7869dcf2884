"""An API answer's bytes as JSON values, whatever they hold.

Scraped text is hostile: invalid UTF-8, lone surrogates, control characters, numbers with
thousands of digits, NaN. None of it may cost the other rows of a page, so a body that the fast
strict decoder refuses is decoded again leniently: invalid bytes become U+FFFD, control
characters and lone surrogates are kept (the row encoder repairs the surrogates), an integer too
long for Python's int stays its digit string. What even that cannot read is either a broken
answer (truncated, HTML: worth asking again) or content no JSON parser takes (nesting too deep,
invalid escapes: asking again returns the same bytes), and the two are told apart.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

NOT_JSON: Any = object()

_FAST = msgspec.json.Decoder()
# Python's json refuses integer literals longer than this (sys.get_int_max_str_digits()).
_INT_DIGITS_LIMIT = 4300
# JSONDecodeError messages that name the content, not a cut-off or foreign body.
_CONTENT_ERRORS = ("Invalid \\escape", "Invalid \\uXXXX escape")


def _lenient_int(digits: str) -> int | str:
    return int(digits) if len(digits.lstrip("-")) <= _INT_DIGITS_LIMIT else digits


def decode_body(raw: bytes) -> tuple[Any, str | None]:
    """(value, None) for a JSON body; (NOT_JSON, None) for a body that is not JSON at all or
    was cut off; (NOT_JSON, why) for JSON whose content no parser can take."""
    try:
        return _FAST.decode(raw), None
    except (msgspec.DecodeError, RecursionError):
        pass
    text = raw.decode("utf-8", errors="replace")
    try:
        return _lenient(text), None
    except RecursionError:
        return NOT_JSON, "the answer is nested too deeply to parse"
    except json.JSONDecodeError as exc:
        if exc.msg.startswith(_CONTENT_ERRORS):
            return NOT_JSON, f"the answer holds {exc.msg} at character {exc.pos}"
        return NOT_JSON, None


def _lenient(text: str) -> Any:
    """json.loads that keeps an integer literal longer than Python's limit as its digits. Every
    failure of the second parse is judged like the first's: a page may hold a 5,000-digit number
    and, further on, a row nested too deeply."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        raise
    except ValueError:
        return json.loads(text, strict=False, parse_int=_lenient_int)
