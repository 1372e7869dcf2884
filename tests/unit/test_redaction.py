"""Secrets out of text and log records, in every form: whole, escaped, encoded, cut."""

from __future__ import annotations

import html
import json
import logging
import secrets
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstream.config import from_mapping
from jobstream.redaction import MASK, MIN_PIECE, ROTATING_KEPT, Redactor, keep_secret, secrets_in

PASSWORD = "Hunter2-密码 pa/ss&x'\""
FORMS = {
    "as written": PASSWORD,
    "json": json.dumps(PASSWORD),
    "json utf-8": json.dumps(PASSWORD, ensure_ascii=False),
    "repr": repr(PASSWORD),
    "ascii": ascii(PASSWORD),
    "percent": quote(PASSWORD, safe=""),
    "form": urlencode({"password": PASSWORD}),
    "lower hex": quote(PASSWORD, safe="").replace("%E5", "%e5"),
    "html": html.escape(PASSWORD),
}


@pytest.fixture
def redactor() -> Redactor:
    redactor = Redactor()
    redactor.add(PASSWORD)
    return redactor


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_redaction_every_form_of_the_secret_is_masked(redactor: Redactor, form: str) -> None:
    text = f"error: {form} (request 42)"
    clean = redactor.scrub(text)
    assert clean.startswith("error: ") and clean.endswith(" (request 42)")
    assert MASK in clean
    assert "Hunter2" not in clean and "pa/ss" not in clean and "%E5%AF" not in clean


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
@pytest.mark.parametrize("cut", [MIN_PIECE, 7, 12])
def test_redaction_a_cut_secret_is_masked(redactor: Redactor, form: str, cut: int) -> None:
    # An excerpt that ends inside the secret: body[:120], f"{value!r:.60}".
    text = "body: " + form[: form.index("H") + cut]
    assert redactor.scrub(text) in ("body: " + MASK, "body: " + form[: form.index("H")] + MASK)


def test_redaction_leaves_ordinary_text_alone(redactor: Redactor) -> None:
    text = "task_id=t offset=100 crawl run starts; https://openapi.bazhuayu.com/token 200"
    assert redactor.scrub(text) == text


def test_redaction_webhook_url_token_masked_but_not_every_url() -> None:
    redactor = Redactor()
    redactor.add(
        "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef",
        "https://open.feishu.cn/open-apis/bot/v2/hook/5b0e1c1e-3f5a-5d7e",
    )
    text = (
        "POST https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef failed; "
        "token 0123456789ab; hook 5b0e1c1e-3f5a; see https://example.com/robot/send"
    )
    clean = redactor.scrub(text)
    assert "0123456789" not in clean and "5b0e1c1e" not in clean
    assert "https://example.com/robot/send" in clean


@given(st.text(min_size=MIN_PIECE, max_size=40), st.text(max_size=20), st.text(max_size=20))
def test_redaction_any_secret_anywhere_never_survives(secret: str, before: str, after: str) -> None:
    redactor = Redactor()
    redactor.add(secret)
    assert secret not in redactor.scrub(before + secret + after)


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


def test_redaction_log_records_scrubbed_when_made(caplog: pytest.LogCaptureFixture) -> None:
    secret = "log-secret-b7f3e1"
    keep_secret(secret)
    log = logging.getLogger("jobstream.test_redaction")
    with caplog.at_level(logging.INFO):
        log.info("grant failed for %r: %s", {"password": secret}, json.dumps(secret)[:9])
        try:
            raise ValueError(f"refused {secret}")
        except ValueError:
            log.exception("while asking with %s", quote(secret))
    assert secret[:MIN_PIECE] not in caplog.text
    assert caplog.text.count(MASK) >= 4  # message twice, the encoded one, the traceback


def test_redaction_rotating_tokens_bounded_to_the_latest() -> None:
    redactor = Redactor()
    redactor.add("the-password-stays")
    tokens = [secrets.token_urlsafe(18) for _ in range(ROTATING_KEPT + 10)]
    for token in tokens:
        redactor.add(token, rotating=True)
    text = " ".join(["the-password-stays", *tokens])
    clean = redactor.scrub(text).split()
    assert clean[0] == MASK
    assert clean[1:11] == tokens[:10]  # expired long ago: no longer scrubbed
    assert set(clean[11:]) == {MASK}
