"""A job_raw row read for judging with its description left as the bytes the API sent.

A posting's description is most of a row (hundreds to thousands of Chinese characters), and the
job publishes it stripped and otherwise unchanged. Decoding it into a str and encoding it back
into the job's JSON was most of the cost of a row. When the description's JSON text is already
what encoding its stripped value gives (a plain string: no whitespace at either end, no escapes
but \\" \\\\ \\n \\r \\t, which are the encoder's own), the row is read without it and the
job's JSON takes those bytes as they came: the same bytes as decoding and encoding would give.
The job's id must then come from its URL (a URL-less job's id hashes the description). Other
descriptions (escaped text, as an API that writes \\uXXXX sends it; whitespace to strip) are
decoded alone; a row that is not an object, or holds what msgspec cannot read (a number too
large), is read whole (`jobstream.pipeline.pages.read_row`).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from jobstream.transform.mapping import DESCRIPTION_SOURCE, FIELD_MAP

_URL_SOURCE = next(src for src, out in FIELD_MAP.items() if out == "url")
_NAMES = tuple(FIELD_MAP)
# The source fields the job is made of; the description as its JSON text. Other keys are left
# out: nothing of them reaches a job (a rejected row is read again whole, for job_rejects).
_TEXT: Any = msgspec.Raw | msgspec.UnsetType
_SourceRow = msgspec.defstruct(
    "SourceRow",
    [(name, _TEXT if name == DESCRIPTION_SOURCE else Any, msgspec.UNSET) for name in _NAMES],
)
_READER = msgspec.json.Decoder(_SourceRow)
_ENCODER = msgspec.json.Encoder()
_VALUE = msgspec.json.Decoder()

# What stands for the description while the row is judged: unchanged by strip(), and encoded
# as `"description":"\u0000"`, which no other part of a job's JSON can hold (a quote inside a
# value is escaped).
PLACEHOLDER = "\x00"
_PLACED = _ENCODER.encode({FIELD_MAP[DESCRIPTION_SOURCE]: PLACEHOLDER})[1:-1]
_KEY = _PLACED[: _PLACED.index(b":") + 1]
# An escape the encoder would not write for the character it stands for.
_OTHER_ESCAPE = re.compile(rb'\\[^"\\nrt]')


def read_for_judging(raw: msgspec.Raw | bytes) -> tuple[dict[str, Any], bytes | None] | None:
    """The row's source fields and, when the job can take it as it came, the description's JSON
    text (the description in the fields is then PLACEHOLDER); None when the row must be read
    whole (`read_row`)."""
    try:
        row = _READER.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None  # not an object, a number too large, nesting too deep: read it whole
    fields = {
        name: value
        for name, value in zip(_NAMES, msgspec.structs.astuple(row), strict=True)
        if value is not msgspec.UNSET
    }
    description = fields.get(DESCRIPTION_SOURCE)
    if description is None:
        return fields, None
    text = bytes(description)
    url = fields.get(_URL_SOURCE)
    if type(url) is str and url.strip() and plain_string(text):
        fields[DESCRIPTION_SOURCE] = PLACEHOLDER
        return fields, text
    # Escaped text (an API that writes \uXXXX), whitespace to strip, or no URL: the value.
    try:
        fields[DESCRIPTION_SOURCE] = _VALUE.decode(text)
    except msgspec.DecodeError:
        return None
    return fields, None


def plain_string(text: bytes) -> bool:
    """Whether JSON `text` is a string that encoding its stripped value writes unchanged."""
    end = len(text) - 1  # the closing quote
    if end < 1 or text[0] != 0x22:  # '"'
        return False
    if end == 1:
        return True  # ""
    # No escape at either end (it may stand for whitespace), none but the encoder's own.
    if b"\\" in text and (
        text[1] == 0x5C or text.find(b"\\", end - 2) != -1 or _OTHER_ESCAPE.search(text, 1, end)
    ):
        return False
    first, last = text[1], text[end - 1]
    if first == 0x20 or last == 0x20:
        return False
    if first >= 0x80 and text[1:5].decode("utf-8", "ignore")[:1].isspace():
        return False
    return not (last >= 0x80 and text[end - 4 : end].decode("utf-8", "ignore")[-1:].isspace())


def with_description(job: bytes, description: bytes) -> bytes:
    """The job's JSON with the description's text in place of PLACEHOLDER."""
    return job.replace(_PLACED, _KEY + description, 1)
