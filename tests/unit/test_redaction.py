"""Secrets out of text and log records, in every form: whole, escaped, encoded, sliced; and the
lines that held them still whole."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import secrets
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstream.config import from_mapping
from jobstream.redaction import (
    ERROR_CHARS,
    MASK,
    MIN_SLICE,
    ROTATING_KEPT,
    Redactor,
    keep_secret,
    scrub,
    secrets_in,
)
from tests.leaks import leaked_slices

PASSWORD = "Hunter2-密码 pa/ss&x'\""
FORMS = {
    "as written": PASSWORD,
    "json": json.dumps(PASSWORD),
    "json utf-8": json.dumps(PASSWORD, ensure_ascii=False),
    "json in json": json.dumps(json.dumps(PASSWORD)),
    "json escaping /": json.dumps(PASSWORD).replace("/", "\\/"),
    "repr": repr(PASSWORD),
    "ascii": ascii(PASSWORD),
    "percent": quote(PASSWORD, safe=""),
    "form": urlencode({"password": PASSWORD}),
    "lower hex": quote(PASSWORD, safe="").replace("%E5", "%e5"),
    "html": html.escape(PASSWORD),
    "basic auth": base64.b64encode(f"someone:{PASSWORD}".encode()).decode(),
    "base64 urlsafe": base64.urlsafe_b64encode(f"x{PASSWORD}".encode()).decode(),
}
# Secrets whose heads are ordinary words in this project's log lines.
WORDY = ("offs" + "Xq7#pw9Lk2/Mz", "Read" + "8Zt3QvKp1Wn", "task" + "4Hb9Ns7Ry2Ld")
ORDINARY_LINE = (
    "task_id=00f3b445 offset=0 page applied; [^ReaderPool]: Starting...; Reading job_data; "
    "offsets committed; tasks=2"
)


@pytest.fixture
def redactor() -> Redactor:
    redactor = Redactor()
    redactor.add(PASSWORD)
    return redactor


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_redaction_every_form_of_the_secret_is_masked(redactor: Redactor, form: str) -> None:
    text = f"error: {form} (request 42)"
    clean = redactor.mask(text)
    assert clean.startswith("error: ") and clean.endswith(" (request 42)")
    assert MASK in clean
    assert leaked_slices(clean, [PASSWORD], user="someone") == []


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
@pytest.mark.parametrize("where", ["head", "middle", "tail"])
def test_redaction_any_slice_of_any_form_is_masked(
    redactor: Redactor, form: str, where: str
) -> None:
    # An excerpt cut at a byte limit, the end of an echo, a piece from the middle.
    third = len(form) // 3
    piece = {"head": form[: 2 * third], "middle": form[third:-third], "tail": form[third:]}[where]
    if len(piece) < 8:
        pytest.skip("the form is too short to cut three ways")
    clean = redactor.mask(f"body:[{piece}]end")
    assert clean.startswith("body:[") and clean.endswith("]end")
    assert leaked_slices(clean, [PASSWORD], user="someone") == []


def test_redaction_leaves_ordinary_text_alone(redactor: Redactor) -> None:
    text = "task_id=t offset=100 crawl run starts; https://openapi.bazhuayu.com/token 200"
    assert redactor.mask(text) == text


def test_redaction_secrets_with_word_heads_leave_the_words_alone() -> None:
    redactor = Redactor()
    redactor.add(*WORDY)
    assert redactor.mask(ORDINARY_LINE) == ORDINARY_LINE
    # But every piece long enough to matter is masked, the words' heads included.
    for secret in WORDY:
        for piece in (secret, secret[:MIN_SLICE], secret[-MIN_SLICE:], secret[2:-2]):
            clean = redactor.mask(f"echo: {piece}!")
            assert clean == f"echo: {MASK}!", (piece, clean)


def test_redaction_a_word_inside_a_secret_is_not_masked_elsewhere() -> None:
    # The reader would learn that the secret holds the word from every line that has it.
    redactor = Redactor()
    redactor.add("ReaderXq9")
    assert redactor.mask("[^ReaderPool]: Starting...") == "[^ReaderPool]: Starting..."
    assert redactor.mask("the token ReaderXq9 was refused") == f"the token {MASK} was refused"


def test_redaction_webhook_url_token_masked_but_not_every_url() -> None:
    redactor = Redactor()
    redactor.add(
        "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef",
        "https://open.feishu.cn/open-apis/bot/v2/hook/5b0e1c1e-3f5a-5d7e",
    )
    text = (
        "POST https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef failed; "
        "token 0123456789ab; hook 5b0e1c1e-3f5a; see https://example.com/robot/send; "
        "access_token refreshed"
    )
    clean = redactor.mask(text)
    assert "012345" not in clean and "5b0e1c" not in clean
    assert "https://example.com/robot/send" in clean and "access_token refreshed" in clean


@given(
    st.text(min_size=MIN_SLICE, max_size=40),
    st.text(max_size=20),
    st.text(max_size=20),
    st.integers(0, 40),
    st.integers(0, 40),
)
def test_redaction_no_slice_of_any_secret_survives(
    secret: str, before: str, after: str, start: int, stop: int
) -> None:
    redactor = Redactor()
    redactor.add(secret)
    piece = secret[start : max(start + MIN_SLICE, stop)]
    clean = redactor.mask(before + piece + after)
    if len(piece) >= MIN_SLICE and piece != secret and not piece.isalpha():
        assert piece not in clean
    assert secret not in redactor.mask(before + secret + after)


def test_redaction_config_secrets_found_by_declaration() -> None:
    config = from_mapping(
        {
            "app": {"admin_token": "admin-123", "read_token": "read-456"},
            "api": {"base_url": "https://api.example", "username": "u", "password": "pw-789"},
            "alerts": {
                "webhooks": [
                    {
                        "type": "dingtalk",
                        "url": "https://x.example/send?access_token=t0k3n",
                        "secret": "SEC-1",
                    }
                ]
            },
        }
    )
    assert set(secrets_in(config)) == {
        "admin-123",
        "read-456",
        "pw-789",
        "https://x.example/send?access_token=t0k3n",
        "SEC-1",
    }


def test_redaction_rotating_tokens_bounded_to_the_latest() -> None:
    redactor = Redactor()
    redactor.add("the-password-stays")
    tokens = [secrets.token_hex(18) for _ in range(ROTATING_KEPT + 10)]
    for token in tokens:
        redactor.add(token, rotating=True)
    text = " ".join(["the-password-stays", *tokens])
    clean = redactor.mask(text).split()
    assert clean[0] == MASK
    assert clean[1:11] == tokens[:10]  # expired long ago: no longer scrubbed
    assert set(clean[11:]) == {MASK}


def test_scrub_makes_outside_text_one_bounded_encodable_line() -> None:
    keep_secret(WORDY[0])
    text = "first line\r\nsecond\x00line \udcff " + WORDY[0][2:] + " " + "x" * 300_000
    clean = scrub(text)
    assert len(clean) <= ERROR_CHARS and clean.endswith("more characters)")
    assert "\n" not in clean and "\x00" not in clean
    clean.encode("utf-8")  # the lone surrogate is written as an escape
    assert clean.startswith("first line second line \\udcff ***")


# -- log records ---------------------------------------------------------------------------


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What a handler with mode's formatter (the worker's) writes, and whether logging failed."""
    from mode.utils.logging import ExtensionFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(ExtensionFormatter(fmt="%(levelname)s %(message)s", stream=out))
    log = logging.getLogger("jobstream.test_redaction")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    failures: list[str] = []
    original = logging.Handler.handleError
    logging.Handler.handleError = lambda self, record: failures.append(record.msg)  # type: ignore[method-assign]
    try:
        yield out
    finally:
        logging.Handler.handleError = original  # type: ignore[method-assign]
        log.removeHandler(handler)
        log.propagate = True
    assert failures == [], f"a log line failed to format: {failures}"


def test_redaction_log_lines_with_secrets_stay_whole_lines(log_output: io.StringIO) -> None:
    keep_secret(*WORDY)
    log = logging.getLogger("jobstream.test_redaction")
    password, read, admin = WORDY
    log.info("task_id=%s offset=%d token %s refused", "t1", 0, read)
    log.warning("[^ReaderPool]: grant failed for %r", {"password": password})
    log.info("echo %s and %s", json.dumps(password)[5:], quote(admin, safe=""))
    log.info("%s", base64.b64encode(f"user:{password}".encode()).decode())
    log.info("a call whose arguments do not fit %d", "the message", admin)
    try:
        raise ValueError(f"refused {admin[3:]}")
    except ValueError:
        log.exception("while asking with %s", password[-11:])
    lines = log_output.getvalue().splitlines()
    assert lines[0] == f"INFO task_id=t1 offset=0 token {MASK} refused"
    assert lines[1] == f"WARNING [^ReaderPool]: grant failed for {{'password': '{MASK}'}}"
    assert lines[2] == f'INFO echo {MASK}" and {MASK}'
    assert lines[3].startswith("INFO dXNlcj") and MASK in lines[3]
    assert lines[4].startswith("INFO 'a call whose arguments do not fit %d' % (")
    assert lines[5] == f"ERROR while asking with {MASK}"
    assert lines[-1] == f"ValueError: refused {MASK}"
    assert "Logging error" not in log_output.getvalue()
    assert leaked_slices(log_output.getvalue(), WORDY, user="user") == []


def test_redaction_log_message_bounded(log_output: io.StringIO) -> None:
    keep_secret(WORDY[1])
    logging.getLogger("jobstream.test_redaction").info("answer: %s", "y" * 300_000)
    (line,) = log_output.getvalue().splitlines()
    assert len(line) < 20_000 and line.endswith("more characters)")
