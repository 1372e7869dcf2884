"""Secrets kept out of everything that leaves the process, and text from outside kept short.

One registry knows every secret: the config's fields declared secret (the API password, the
admin and read tokens, the alert webhooks' URLs and signing keys), registered when the config
is loaded, and each API access and refresh token, registered when the client receives it. Two
doors use it:

- every log record, whatever logger, handler or formatter it goes to: the record is formatted
  once, as it is made, then masked and bounded, and its arguments are dropped (a record whose
  arguments do not fit its message becomes one line that says so, never a logging error);
- `scrub`, for every text that is kept or sent: an error from the API (kept as a task's last
  error on job_commands, in the table, in SQLite, on /status), an alert message, an HTTP error
  message. It also clips the text (ERROR_CHARS) and puts it on one line.

What is masked: any slice of a secret at least MIN_SLICE characters long, anywhere in the
text (a cut excerpt, the end of an echo, a piece from the middle), in every form a secret takes
on its way out: as written; JSON-escaped (ASCII or not) and as a Python repr, once or twice
(JSON inside JSON); percent-encoded (`%2F` or `%2f`, `+` or `%20` for spaces); HTML-escaped;
and base64-encoded at any alignment, which covers `Basic base64(user:password)` and a token
encoded inside anything else. A shorter run is never masked: masking is what would tell a
reader which ordinary text a secret begins with. For the same reason a run that reads as an
ordinary word (a lowercase or capitalised word, or the head of a longer word, shorter than
ORDINARY_MAX) is left alone unless it is the whole secret: `Reader` in `ReaderPool` stays
`Reader` even when a token begins with it.

A webhook URL is masked whole, and its token pieces (the query's values, a long last path
segment) in slices like any secret; the rest of a URL (`https://`, the host) is public.
`mask_url` shows a webhook by its scheme and host only.

The registry is process-wide on purpose: so is logging.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import msgspec
import msgspec.inspect as mi

MASK = "***"
# Slices of a secret this long or longer are masked wherever they appear.
MIN_SLICE = 6
# Values this short are not secrets worth the name (masked only whole, as words).
MIN_SECRET = 4
# A run of letters shorter than this that reads as a word is a word, not a leak (see above).
ORDINARY_MAX = 10
# Words that are public on purpose and appear in logs as what they are: the demo mode's name
# (api.base_url: demo) is also its simulator's user name and password.
PUBLIC = frozenset({"demo"})
# API tokens rotate for as long as the worker runs: the most recent ones are kept (older ones
# have expired), so that scrubbing a line does not grow slower week after week.
ROTATING_KEPT = 32
# An error text from outside (the API's message, an exception's), as kept and shown.
ERROR_CHARS = 1000
# One log message (its traceback apart): a bound, not a format.
LOG_CHARS = 16_000
TRACEBACK_CHARS = 64_000

_WORD = re.compile(r"(?:[A-Z]?[a-z]+|[A-Z]+)(?:_[A-Za-z]+)*")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_SPACES = re.compile(r"[\s\x00-\x1f\x7f]+")


class Redactor:
    """The secrets of this process, each in every form it may take in text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Each secret: (forms whose slices are masked, forms masked only whole).
        self._secrets: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self._rotating: deque[str] = deque()
        self._grams: frozenset[str] = frozenset()
        self._wholes: tuple[str, ...] = ()
        self._longest = 0

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def add(self, *secrets: str | None, rotating: bool = False) -> None:
        """Register secrets; a URL also registers the parts that hold its token. Of the
        `rotating` ones (API tokens) only the latest ROTATING_KEPT are kept."""
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET or secret in PUBLIC:
                continue
            if secret in self._secrets:
                continue
            if "://" in secret:
                # The whole URL only whole: its start ("https://host") is in every URL of the host.
                sliced = frozenset().union(*(forms_of(piece) for piece in url_pieces(secret)))
                whole = frozenset(forms_of(secret, encoded=False))
            else:
                sliced, whole = frozenset(forms_of(secret)), frozenset({secret})
            with self._lock:
                self._secrets[secret] = (sliced, whole)
                if rotating:
                    self._rotating.append(secret)
                    while len(self._rotating) > ROTATING_KEPT:
                        self._secrets.pop(self._rotating.popleft(), None)
                self._rebuild()

    def _rebuild(self) -> None:
        grams: set[str] = set()
        wholes: set[str] = set()
        for sliced, whole in self._secrets.values():
            wholes |= whole
            for form in sliced:
                if len(form) < MIN_SLICE:
                    wholes.add(form)
                grams.update(form[i : i + MIN_SLICE] for i in range(len(form) - MIN_SLICE + 1))
        self._grams = frozenset(grams)
        self._wholes = tuple(sorted(wholes, key=len, reverse=True))
        self._longest = max((len(f) for f in wholes | grams), default=0)

    def mask(self, text: str) -> str:
        """`text` with every registered secret, whole or sliced, replaced by MASK."""
        if not self._secrets or not text:
            return text
        grams, wholes = self._grams, self._wholes
        spans = list(_runs(text, grams))
        for form in wholes:
            start = text.find(form)
            while start != -1:
                end = start + len(form)
                if len(form) >= MIN_SLICE or not _inside_word(text, start, end):
                    spans.append((start, end))
                start = text.find(form, start + 1)
        if not spans:
            return text
        whole = frozenset(wholes)
        out: list[str] = []
        done = 0
        for start, end in _merged(spans):
            if _ordinary(text, start, end, whole):
                continue
            out.append(text[done:start])
            out.append(MASK)
            done = end
        out.append(text[done:])
        return "".join(out)

    def bounded(self, text: str, limit: int) -> str:
        """`mask(text)` in at most `limit` characters (and a note of how many were cut). A
        secret across the cut is masked before the cut is made."""
        if len(text) <= limit:
            return self.mask(text)
        note = f"… ({len(text) - limit} more characters)"
        head = self.mask(text[: limit + self._longest])
        return head[: max(0, limit - len(note))] + note


def _runs(text: str, grams: frozenset[str]) -> Iterable[tuple[int, int]]:
    """The stretches of `text` covered by MIN_SLICE-long slices of a secret."""
    if not grams:
        return
    start = end = -1
    for i in range(len(text) - MIN_SLICE + 1):
        if text[i : i + MIN_SLICE] in grams:
            if i > end:
                if end > start:
                    yield start, end
                start = i
            end = i + MIN_SLICE
    if end > start:
        yield start, end


def _merged(spans: list[tuple[int, int]]) -> Iterable[tuple[int, int]]:
    spans.sort()
    start, end = spans[0]
    for s, e in spans[1:]:
        if s > end:
            yield start, end
            start = s
        end = max(end, e)
    yield start, end


def _inside_word(text: str, start: int, end: int) -> bool:
    return (start > 0 and text[start - 1] in _WORD_CHARS) or (
        end < len(text) and text[end] in _WORD_CHARS
    )


def _ordinary(text: str, start: int, end: int, wholes: frozenset[str]) -> bool:
    """A run that reads as an ordinary word (or the head or tail of a longer word in `text`)
    and is not a whole secret: masking it would only tell which word a secret holds."""
    piece = text[start:end]
    if len(piece) >= ORDINARY_MAX or piece in wholes:
        return False
    if not (piece.isascii() and piece.replace("_", "").isalpha()):
        return False
    return _WORD.fullmatch(piece) is not None or _inside_word(text, start, end)


# -- the forms a secret takes ---------------------------------------------------------------


def _lower_hex(encoded: str) -> str:
    parts = encoded.split("%")
    return parts[0] + "".join("%" + p[:2].lower() + p[2:] for p in parts[1:])


_ESCAPES = (
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),  # encoders that escape "/" too
    lambda s: repr(s)[1:-1],
    lambda s: ascii(s)[1:-1],
    html.escape,
    lambda s: html.escape(s, quote=False),
    lambda s: quote(s, safe=""),
    quote,
    lambda s: quote_plus(s, safe=""),
    lambda s: _lower_hex(quote(s, safe="")),
    lambda s: _lower_hex(quote_plus(s, safe="")),
)


def forms_of(secret: str, *, encoded: bool = True) -> set[str]:
    """Every form of `secret` worth looking for: escaped once and twice, and base64-encoded."""
    forms = {secret}
    for _ in range(2):  # twice: a JSON text inside a JSON string, the repr of an escaped value
        forms |= {escape(form) for form in forms for escape in _ESCAPES}
    if encoded:
        forms |= _base64_cores(secret)
    return {form for form in forms if len(form) >= MIN_SECRET}


def _base64_cores(secret: str) -> set[str]:
    """The base64 characters that depend on `secret` alone, at each of the three alignments it
    can have inside a longer text (`user:password` is one of them)."""
    raw = secret.encode("utf-8", "surrogatepass")
    cores = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode()
        first = -(-8 * pad // 6)  # the characters holding bits of the padding are not its own
        last = 8 * (pad + len(raw)) // 6
        core = encoded[first:last]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def url_pieces(url: str) -> list[str]:
    """What in a webhook URL is its token: the query's values, the path's last segment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    pieces = [value for _, value in parse_qsl(parts.query) if len(value) >= MIN_SECRET]
    last = parts.path.rstrip("/").rpartition("/")[2]
    if len(last) >= 8:  # a token, not a word such as "send" or "hook"
        pieces.append(last)
    return pieces


# -- the registry and the one road out ------------------------------------------------------

REDACTOR = Redactor()


def keep_secret(*secrets: str | None, rotating: bool = False) -> None:
    """Never show these in a log line or any text that leaves the process (see the module);
    `rotating`: API tokens, of which the latest ROTATING_KEPT are kept."""
    REDACTOR.add(*secrets, rotating=rotating)
    _scrub_log_records()


def scrub(text: str, limit: int = ERROR_CHARS) -> str:
    """Text from outside (an error message, an answer), as it may be kept, shown, logged or
    sent: no secret, one line, at most `limit` characters, encodable as UTF-8."""
    return REDACTOR.bounded(_SPACES.sub(" ", encodable(text)).strip(), limit)


def encodable(text: str) -> str:
    """`text` with what UTF-8 cannot encode (the lone surrogates aiohttp makes of a header's
    undecodable bytes) written as escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


# -- webhook URLs ---------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """`https://oapi.dingtalk.com/robot/send?access_token=abc` -> `https://oapi.dingtalk.com/…?…`

    Robot URLs carry their access token in the query (WeCom `?key=`, DingTalk
    `?access_token=`) or in the path (Feishu `/open-apis/bot/v2/hook/<token>`), so only the
    scheme and the host are kept."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    masked = f"{parts.scheme}://{host}{port}"
    if parts.path.strip("/"):
        masked += "/…"
    if parts.query:
        masked += "?…"
    return masked


def without_url(text: str, url: str) -> str:
    """`text` (an exception's message) with every piece of `url` that could hold a token
    replaced by `mask_url(url)`, then scrubbed."""
    parts = urlsplit(url)
    masked = mask_url(url)
    for piece in sorted({url, url.split("#")[0], parts.path, parts.query}, key=len, reverse=True):
        if len(piece) > 1:
            text = text.replace(piece, masked)
    return scrub(text)


_URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>]+)\?[^\s\"'<>]*")


def hide_queries(text: str) -> str:
    """Free text from elsewhere (a task's last error) with the query of any URL in it masked."""
    return _URL_QUERY.sub(r"\1?…", text)


# -- every log record -----------------------------------------------------------------------


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
        except Exception as exc:  # logging must never fail because of this
            record.msg = f"(a log line that could not be checked for secrets: {type(exc).__name__})"
            record.args = ()
            record.exc_info = record.exc_text = record.stack_info = None
        return record

    factory.scrubs_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_EXCEPTIONS = logging.Formatter()


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception as exc:
        # A call whose arguments do not fit its message: one line that says so, not the
        # logging module's dump (and the arguments are masked like any text).
        return f"{record.msg!r} % {record.args!r} (not logged as meant: {exc})"


def _scrub_record(record: logging.LogRecord) -> None:
    # Formatted once, here: what the handlers write is exactly what was checked. An empty
    # tuple, not None: a formatter that wraps a lone argument would make None a `(None,)`.
    record.msg = REDACTOR.bounded(encodable(_message(record)), LOG_CHARS)
    record.args = ()
    if record.exc_info and not record.exc_text:
        # Formatted now, scrubbed; formatters use exc_text when it is set.
        text = encodable(_EXCEPTIONS.formatException(record.exc_info))
        record.exc_text = REDACTOR.bounded(text, TRACEBACK_CHARS)
    if record.stack_info:
        record.stack_info = REDACTOR.bounded(encodable(record.stack_info), TRACEBACK_CHARS)
