"""Secrets kept out of every log line and every error message, in whatever form they appear.

A secret is registered once: the config's fields declared secret (the API password, the admin
and read tokens, the alert webhooks' URLs and signing keys) when the config is loaded, and each
API access and refresh token when the client receives it. From then on every log record of the
process is scrubbed as it is made (`logging.setLogRecordFactory`: whatever logger, handler or
formatter it goes to, tracebacks included), and `scrub` cleans text kept elsewhere (a task's
last error, which /status shows).

The registry is process-wide on purpose: so is logging.

Forms found: as written; JSON-escaped; escaped as in a Python repr; percent-encoded (either
case of hex, `+` or `%20` for spaces); HTML-escaped. And cut: text that ends, or stops
matching, in the middle of a secret has the part it holds replaced, once that part is
MIN_PIECE characters long (an excerpt cut at 120 bytes, a value shown with `{!r:.60}`).
"""

from __future__ import annotations

import html
import json
import logging
import threading
from collections import deque
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import msgspec
import msgspec.inspect as mi

MASK = "***"
# API tokens rotate for as long as the worker runs: the most recent ones are kept (older ones
# have expired), so that scrubbing a line does not grow slower week after week.
ROTATING_KEPT = 32
# Values this short are not secrets worth the name, and would mask ordinary words.
MIN_SECRET = 4
# Words that are public on purpose and appear in logs as what they are: the demo mode's name
# (api.base_url: demo) is also its simulator's user name and password.
PUBLIC = frozenset({"demo"})
# A cut secret is replaced from this many of its characters on.
MIN_PIECE = 4


class Redactor:
    """The secrets of this process, each in every form it may take in text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Each secret and its forms: (form, whether a cut of it is replaced too).
        self._secrets: dict[str, set[tuple[str, bool]]] = {}
        self._rotating: deque[str] = deque()
        # Every form of every secret, longest first.
        self._forms: list[tuple[str, bool]] = []

    def __bool__(self) -> bool:
        return bool(self._forms)

    def add(self, *secrets: str | None, rotating: bool = False) -> None:
        """Register secrets; a URL also registers the parts that hold its token. Of the
        `rotating` ones (API tokens) only the latest ROTATING_KEPT are kept."""
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET or secret in PUBLIC | self._secrets.keys():
                continue
            forms = {(form, True) for form in _forms(secret)}
            if "://" in secret:
                # The whole URL only as written: its start ("https://") is in every URL.
                forms = {(form, False) for form, _ in forms}
                for piece in url_pieces(secret):
                    forms.update((form, True) for form in _forms(piece))
            with self._lock:
                self._secrets[secret] = forms
                if rotating:
                    self._rotating.append(secret)
                    while len(self._rotating) > ROTATING_KEPT:
                        self._secrets.pop(self._rotating.popleft(), None)
                merged = set().union(*self._secrets.values())
                self._forms = sorted(merged, key=lambda item: len(item[0]), reverse=True)

    def scrub(self, text: str) -> str:
        """`text` with every registered secret, whole or cut, replaced by MASK."""
        spans: list[tuple[int, int]] = []
        for form, cuts in self._forms:
            head = form[:MIN_PIECE] if cuts else form
            start = text.find(head)
            while start != -1:
                length = _common_prefix(text, start, form) if cuts else len(form)
                spans.append((start, start + length))
                start = text.find(head, start + 1)
        if not spans:
            return text
        # Every form's longest match at each place, overlapping ones joined.
        out: list[str] = []
        end = 0
        for start, stop in sorted(spans):
            if start > end or not out:
                out.append(text[end:start])
                out.append(MASK)
            end = max(end, stop)
        out.append(text[end:])
        return "".join(out)


def _common_prefix(text: str, start: int, form: str) -> int:
    length = 0
    for a, b in zip(text[start : start + len(form)], form, strict=False):
        if a != b:
            break
        length += 1
    return length


def _forms(secret: str) -> set[str]:
    percent = {quote(secret, safe=""), quote(secret), quote_plus(secret, safe="")}
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        html.escape(secret),
        *percent,
        *(_lower_hex(p) for p in percent),
    }
    return {form for form in forms if len(form) >= MIN_PIECE}


def _lower_hex(encoded: str) -> str:
    parts = encoded.split("%")
    return parts[0] + "".join("%" + p[:2].lower() + p[2:] for p in parts[1:])


def url_pieces(url: str) -> list[str]:
    """What in a webhook URL is its token: the query's values, the path's last segment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    pieces = [value for _, value in parse_qsl(parts.query)]
    if parts.query:
        pieces.append(parts.query)
    last = parts.path.rstrip("/").rpartition("/")[2]
    if len(last) >= 8:  # a token, not a word such as "send" or "hook"
        pieces.append(last)
    return pieces


REDACTOR = Redactor()


def keep_secret(*secrets: str | None, rotating: bool = False) -> None:
    """Never show these in a log line or an error (see the module); `rotating`: API tokens,
    of which the latest ROTATING_KEPT are kept."""
    REDACTOR.add(*secrets, rotating=rotating)
    if REDACTOR:
        _scrub_log_records()


def scrub(text: str) -> str:
    return REDACTOR.scrub(text) if REDACTOR else text


def secrets_in(value: Any) -> list[str]:
    """The values of every field declared secret (`Meta(extra={"secret": True})`) in a config
    Struct and the Structs it holds."""
    found: list[str] = []
    if isinstance(value, msgspec.Struct):
        info = mi.type_info(type(value))
        assert isinstance(info, mi.StructType)
        for field in info.fields:
            item = getattr(value, field.name)
            meta = field.type
            if isinstance(meta, mi.Metadata) and (meta.extra or {}).get("secret"):
                if isinstance(item, str):
                    found.append(item)
            found.extend(secrets_in(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(secrets_in(item))
    return found


# -- every log record ----------------------------------------------------------------------


def _scrub_log_records() -> None:
    """Install, once, a record factory that scrubs each record as it is made."""
    current = logging.getLogRecordFactory()
    if getattr(current, "scrubs_secrets", False):
        return
    make = current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            _scrub_record(record)
        except Exception:  # logging must never fail because of this
            record.msg, record.args = "(a log line that could not be checked for secrets)", None
        return record

    factory.scrubs_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_EXCEPTIONS = logging.Formatter()


def _scrub_record(record: logging.LogRecord) -> None:
    message = record.getMessage()
    clean = REDACTOR.scrub(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        # Formatted now, scrubbed; formatters use exc_text when it is set.
        record.exc_text = REDACTOR.scrub(_EXCEPTIONS.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = REDACTOR.scrub(record.stack_info)
