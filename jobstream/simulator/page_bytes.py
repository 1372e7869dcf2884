"""A data page as bytes: one json.dumps for plain rows, pre-encoded rows spliced in otherwise.

Some hostile rows (invalid UTF-8, lone surrogate escapes, NaN, a 5,000-digit integer, 5,000
levels of nesting, duplicate keys) are JSON texts no Python value dumps to. Such a row is a
`RawRow` and a page holding one is assembled from bytes; every other page is still the single
json.dumps it always was, so its bytes do not change.
"""

import json
from dataclasses import dataclass
from typing import Any

# A string no row can hold: where the rows go in the dumped envelope.
_ROWS_SLOT = "\x00rows\x00"


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row exactly as the API writes it: JSON text that need not be UTF-8, nor parseable."""

    json: bytes


def has_raw_rows(rows: list[Any]) -> bool:
    return any(type(row) is RawRow for row in rows)


def spliced(envelope: dict[str, Any], rows_key: str, rows: list[Any]) -> bytes:
    """`json.dumps(envelope)` with `envelope["data"][rows_key] = rows`, raw rows kept verbatim.

    Plain rows are dumped exactly as the fast path dumps them (ASCII escapes, ", " separators).
    """
    return splice(envelope, rows_key, rows_json(rows))


def rows_json(rows: list[Any]) -> bytes:
    """The rows as a JSON array, exactly as `json.dumps(rows)` writes plain rows."""
    if not has_raw_rows(rows):
        return json.dumps(rows).encode()
    parts = [row.json if type(row) is RawRow else json.dumps(row).encode() for row in rows]
    return b"".join((b"[", b", ".join(parts), b"]"))


def splice(envelope: dict[str, Any], rows_key: str, rows: bytes) -> bytes:
    """`json.dumps(envelope)` with the JSON array `rows` as `envelope["data"][rows_key]`."""
    slot = {**envelope, "data": {**envelope["data"], rows_key: _ROWS_SLOT}}  # same key order
    head, tail = json.dumps(slot).split(json.dumps(_ROWS_SLOT))
    return b"".join((head.encode(), rows, tail.encode()))
