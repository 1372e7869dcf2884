"""The rows of API pages as job_raw carries them, and job_raw's events as bytes.

A row travels as the bytes the API sent when the answer was strict JSON in valid UTF-8
(`jobstream.source.body.decode_page_body`): it is parsed once, by the page agent. Otherwise
(the answer held NaN, control characters, lone surrogates, invalid UTF-8) the answer was decoded
leniently and each row is encoded as compact UTF-8 JSON. Scraped text that cannot be encoded
in UTF-8 (lone surrogates) is repaired first, with U+FFFD in their place. A row that cannot be
encoded even then travels as a short excerpt with a note saying why (as does one too large for a
message, see `jobstream.pipeline.outbox`), and the page agent rejects it: no row can hold a page
back.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from jobstream.frames import frame, unframe
from jobstream.limits import EXCERPT_BYTES
from jobstream.records import RawPage
from jobstream.source.body import NOT_JSON, decode_body

_ENCODER = msgspec.json.Encoder()
_SURROGATE = re.compile("[\ud800-\udfff]")


def repair(value: Any) -> Any:
    """`value` with what JSON cannot carry in UTF-8 replaced; the rest untouched."""
    if type(value) is str:
        return _SURROGATE.sub("\ufffd", value)
    if type(value) is dict:
        return {repair(k): repair(v) for k, v in value.items()}
    if type(value) is list:
        return [repair(v) for v in value]
    return value


def encode_row(row: Any) -> tuple[bytes, str | None]:
    """The row as job_raw carries it, and None; or an excerpt and why the row is unusable."""
    try:
        return _ENCODER.encode(row), None
    except (UnicodeEncodeError, OverflowError, TypeError, ValueError):
        pass
    except RecursionError:
        return _excerpt_of(row), "the row is nested too deeply to encode"
    try:
        return _ENCODER.encode(repair(row)), None
    except RecursionError:
        return _excerpt_of(row), "the row is nested too deeply to encode"
    except (UnicodeEncodeError, OverflowError, TypeError, ValueError) as exc:
        return _excerpt_of(row), f"the row cannot be encoded as JSON: {type(exc).__name__}"


def excerpt(text: bytes | str) -> bytes:
    """At most EXCERPT_BYTES of `text` as a JSON string (cut on a character boundary)."""
    if isinstance(text, bytes):
        text = text[:EXCERPT_BYTES].decode("utf-8", errors="ignore")
    return _ENCODER.encode(_SURROGATE.sub("\ufffd", text[:EXCERPT_BYTES]))


def _excerpt_of(row: Any) -> bytes:
    try:
        return excerpt(repr(row)[:EXCERPT_BYTES])
    except RecursionError:
        return excerpt(f"<{type(row).__name__} nested too deeply to show>")


_ROW_DECODER = msgspec.json.Decoder()


def read_row(raw: msgspec.Raw | bytes) -> tuple[Any, str | None]:
    """A row of job_raw as a value, and None; or None and why it cannot be read. The row is
    read strictly; one that is not strict JSON (a number too large for msgspec, as the API's
    own bytes may hold) is read as the crawl reads an answer that is not, leniently, and then
    travels the way a leniently read row does: repaired, encoded, decoded."""
    try:
        return _ROW_DECODER.decode(raw), None
    except (msgspec.DecodeError, RecursionError):
        pass
    value, why = decode_body(bytes(raw))
    if value is NOT_JSON:
        return None, f"the row cannot be parsed as JSON{': ' + why if why else ''}"
    encoded, problem = encode_row(value)
    if problem is not None:
        return None, problem
    return _ROW_DECODER.decode(encoded), None


_DECODER = msgspec.json.Decoder(RawPage)


def encode_event(event: RawPage) -> bytes:
    """The event as job_raw carries it: its JSON in a zstd frame (`jobstream.frames`)."""
    return frame(_ENCODER.encode(event))


def decode_event(value: bytes) -> RawPage:
    """An event from job_raw, framed or not. Raises msgspec.DecodeError (or, for a broken
    frame, BrokenFrame) for anything that is not one."""
    return _DECODER.decode(unframe(value))
