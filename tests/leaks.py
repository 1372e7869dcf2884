"""The tests' own look for a secret in text: every slice of it six characters long, as written
and in the encodings a secret takes on its way out (JSON, URL and HTML escapes, base64 of
`user:password`, of the secret alone and inside anything else).

Written apart from `jobstream.redaction` on purpose: a test that asked the redactor whether
the redactor missed something could not fail.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

SLICE = 6


def _encodings(secret: str) -> set[str]:
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(json.dumps(secret))[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
        html.escape(secret),
    }


def _base64_parts(secret: str, user: str | None) -> set[str]:
    """The characters of each base64 text that only the secret's bytes decide."""
    raw = secret.encode()
    parts = set()
    for before in {b"", b"x", b"xy", f"{user}:".encode() if user else b""}:
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(before + raw).decode()
            first = (len(before) * 8 + 5) // 6
            last = (len(before) + len(raw)) * 8 // 6
            parts.add(text[first:last])
    return parts


def leaked_slices(text: str, secrets: Iterable[str], user: str | None = None) -> list[str]:
    """Each slice of a secret's forms, SLICE characters long, found in `text` (with where)."""
    found = []
    for secret in secrets:
        for form in _encodings(secret) | _base64_parts(secret, user):
            for i in range(len(form) - SLICE + 1):
                piece = form[i : i + SLICE]
                at = text.find(piece)
                if at != -1:
                    found.append(
                        f"{piece!r} of {secret[:2]}… in …{text[max(0, at - 40) : at + 40]}…"
                    )
                    break
    return found
