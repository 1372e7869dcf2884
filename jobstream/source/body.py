"""An API answer's bytes as JSON values, whatever they hold.

Scraped text is hostile: invalid UTF-8, lone surrogates, control characters, numbers with
thousands of digits, NaN. None of it may cost the other rows of a page, so a body that the fast
strict decoder refuses is decoded again leniently: invalid bytes become U+FFFD, control
characters and lone surrogates are kept (the row encoder repairs the surrogates), an integer too
long for Python's int stays its digit string. What even that cannot read is either a broken
answer (truncated, HTML: worth asking again) or content no JSON parser takes (nesting too deep,
invalid escapes: asking again returns the same bytes), and the two are told apart.

A data page is decoded differently when it can be (`decode_page_body`): its rows stay the
API's own bytes (`msgspec.Raw`), checked but not parsed, so that each row is parsed once, by the
page agent, and never encoded again on the way to job_raw. An API that escapes every non-ASCII
character (`\\u4e2d`, as the simulator and many JSON libraries write) sends rows almost twice
as long, and msgspec reads such text three to five times slower than UTF-8 (measured: 17.5 µs
a row against orjson's 6.2, and 4.9 µs only to find the rows' ends): such a page is read with
orjson and its rows written as compact UTF-8 once, so that job_raw, the broker and the page
agent all handle the shorter UTF-8 text.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson

NOT_JSON: Any = object()

_FAST = msgspec.json.Decoder()
# Python's json refuses integer literals longer than this (sys.get_int_max_str_digits()).
_INT_DIGITS_LIMIT = 4300
# JSONDecodeError messages that name the content, not a cut-off or foreign body.
_CONTENT_ERRORS = ("Invalid \\escape", "Invalid \\uXXXX escape")


class _PageData(msgspec.Struct):
    total: Any = None
    offset: Any = None
    restTotal: Any = None  # (the API's names)
    data: list[msgspec.Raw] | None = None
    dataList: list[msgspec.Raw] | None = None


class _PageBody(msgspec.Struct):
    data: _PageData | None = None
    error: Any = None
    error_description: Any = None


_PAGE = msgspec.json.Decoder(_PageBody)
_ROWS = msgspec.json.Decoder(list[msgspec.Raw])
_ESCAPE = b"\\u"
# Read whole by orjson up to this size: the process's peak memory grows by about the page's
# size (measured with ru_maxrss: +5 MB for a 1000-row page of 3.7 MB, +17 MB for 16 MB, over
# reading it in pieces), and a 1000-row page is read in 11.7 µs a row instead of 16.4. A larger
# page (the transport accepts 32 MiB) is read the msgspec way first and its rows rewritten
# ROWS_AT_ONCE at a time.
WHOLE_PAGE_BYTES = 16 << 20
ROWS_AT_ONCE = 100
# orjson reads an integer beyond 64 bits as a float: a page with a float this large may have
# held one, and is read the other way, which keeps it an integer.
_INT64_AS_FLOAT = 2.0**63


def decode_page_body(raw: bytes) -> tuple[Any, str | None]:
    """`decode_body` for an answer to `GET /data/all`, with each row kept as the bytes the API
    sent (`msgspec.Raw`) when that is safe: the answer is strict JSON (no NaN, no control
    characters, no lone surrogate escapes, not nested too deeply) in valid UTF-8, and it holds
    a row list and no error. A row's bytes are then valid JSON text in UTF-8; numbers too large
    to decode stay as they came, and the page agent reads such a row as `decode_body` would
    (`jobstream.pipeline.pages.read_row`). Any other answer is decoded as before, its rows
    as values."""
    escaped = _ESCAPE in raw
    if escaped and len(raw) <= WHOLE_PAGE_BYTES:
        page = _unescaped_page(raw)
        if page is not None:
            return page, None
    try:
        body = _PAGE.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return decode_body(raw)
    data = body.data
    if data is None or body.error is not None or body.error_description is not None:
        return decode_body(raw)
    rows_key = "data" if data.data is not None else "dataList"
    rows = data.data if data.data is not None else data.dataList
    if rows is None:
        return decode_body(raw)
    try:
        # msgspec checks a row's syntax, not the UTF-8 inside its strings.
        raw.decode()
    except UnicodeDecodeError:
        return decode_body(raw)
    if escaped:  # a large page: its rows rewritten a few at a time
        rows = _unescaped_rows(rows) or rows
    page = {"total": data.total, "offset": data.offset, "restTotal": data.restTotal}
    page[rows_key] = rows
    return {"data": page}, None


def _unescaped_page(raw: bytes) -> dict[str, Any] | None:
    """A page of escaped text read with orjson, its rows written as compact UTF-8 JSON; None
    when orjson refuses it (NaN, control characters, lone surrogates, nesting deeper than 1024)
    or it is not a page with rows and no error, which the other paths judge."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    data = body.get("data") if type(body) is dict else None
    if type(data) is not dict or "error" in body or "error_description" in body:
        return None
    rows_key = "data" if data.get("data") is not None else "dataList"
    rows = data.get(rows_key)
    if type(rows) is not list:
        return None
    if _holds_large_float(rows):
        return None
    try:
        # One buffer for the page: orjson gives each call's output a buffer of its own, over
        # 16 KB (measured 17.9 MB held for a 1000-row page's 2.1 MB of rows, written one by one).
        encoded = _ROWS.decode(orjson.dumps(rows))
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return None
    page = {"total": data.get("total"), "offset": data.get("offset")}
    page["restTotal"] = data.get("restTotal")
    page[rows_key] = encoded
    return {"data": page}


def _unescaped_rows(rows: list[msgspec.Raw]) -> list[msgspec.Raw] | None:
    """Rows of escaped text written as compact UTF-8 JSON, ROWS_AT_ONCE rows a time; None when
    orjson refuses some (they stay as the API sent them)."""
    out: list[msgspec.Raw] = []
    for start in range(0, len(rows), ROWS_AT_ONCE):
        try:
            values = orjson.loads(b"[" + b",".join(rows[start : start + ROWS_AT_ONCE]) + b"]")
            if _holds_large_float(values):
                return None
            out += _ROWS.decode(orjson.dumps(values))
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            return None
    return out


def _holds_large_float(rows: list[Any]) -> bool:
    """Whether a float of 2**63 or more is anywhere in the rows (see _INT64_AS_FLOAT)."""
    pending: list[Any] = [rows]
    while pending:
        value = pending.pop()
        values = value.values() if type(value) is dict else value
        for item in values:
            kind = type(item)
            if kind is float:
                if not -_INT64_AS_FLOAT < item < _INT64_AS_FLOAT:
                    return True
            elif kind is dict or kind is list:
                pending.append(item)
    return False


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
