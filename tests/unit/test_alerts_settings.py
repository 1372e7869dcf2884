"""The `alerts` config section: defaults, one example per webhook type, errors that name the key
and never repeat a token or a secret."""

from __future__ import annotations

import pytest

from jobstream.alerts.settings import AlertSettings, Webhook
from jobstream.config import from_mapping
from jobstream.errors import ConfigError

WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DINGTALK = "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef"
FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/5e3d587e-d78e-4a07-bd07-265f269f86fd"
TOKENS = ("693a91f6", "0123456789abcdef", "5e3d587e", "SECabc", "s3cret")


def load_alerts(raw: dict | None) -> AlertSettings:
    """The section as `config.load` reads it."""
    return from_mapping({"alerts": raw}).alerts


def problem(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        load_alerts(raw)
    message = str(caught.value)
    assert not any(token in message for token in TOKENS), message
    return message


def test_load_alerts_missing_section_gives_defaults_and_no_webhooks() -> None:
    settings = load_alerts(None)

    assert settings == AlertSettings()
    assert not settings.enabled
    assert (settings.no_progress_minutes, settings.lag_threshold) == (30, 100_000)
    assert (settings.check_interval, settings.repeat_after, settings.max_per_minute) == (
        15,
        4 * 3600,
        10,
    )


def test_load_alerts_one_webhook_of_each_type_is_accepted() -> None:
    settings = load_alerts(
        {
            "webhooks": [
                {"type": "wecom", "url": WECOM, "name": "运维群"},
                {"type": "dingtalk", "url": DINGTALK, "secret": "SECabc"},
                {"type": "feishu", "url": FEISHU, "secret": "s3cret"},
                {"type": "json", "url": "http://127.0.0.1:9000/alerts"},
            ],
            "no_progress_minutes": 45,
            "lag_threshold": 0,
            "repeat_after": 0,
        }
    )

    assert [w.type for w in settings.webhooks] == ["wecom", "dingtalk", "feishu", "json"]
    assert settings.webhooks[1].secret == "SECabc"
    assert settings.webhooks[0].label == "运维群"
    assert settings.no_progress_minutes == 45 and settings.lag_threshold == 0


def test_load_alerts_numbers_as_text_from_the_environment_are_converted() -> None:
    settings = load_alerts({"check_interval": "30", "lag_threshold": "5000"})

    assert settings.check_interval == 30.0 and settings.lag_threshold == 5000


def test_load_alerts_unknown_webhook_type_names_the_key_and_the_choices() -> None:
    raw = {"webhooks": [{"type": "wecom", "url": WECOM}, {"type": "slack", "url": WECOM}]}

    assert problem(raw) == (
        "alerts.webhooks[1].type: expected one of wecom, dingtalk, feishu, json, got 'slack'"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"webhooks": [{"url": WECOM}]}, "alerts.webhooks[0].type: required"),
        ({"webhooks": [{"type": "wecom"}]}, "alerts.webhooks[0].url: required"),
        ({"webhok": []}, "alerts.webhok: unknown key, did you mean `webhooks`?"),
        (
            {"webhooks": [{"type": "json", "url": WECOM, "token": "x"}]},
            "alerts.webhooks[0].token: unknown key",
        ),
        # Where a webhook (its URL, its secret) belongs, a value is named by its kind only.
        ({"webhooks": {"type": "wecom"}}, "alerts.webhooks: expected a list, got a mapping"),
        ({"webhooks": ["x"]}, "alerts.webhooks[0]: expected a mapping, got text"),
        ({"lag_threshold": -1}, "alerts.lag_threshold: must be at least 0, got -1"),
        ({"lag_threshold": "many"}, "alerts.lag_threshold: expected an integer, got 'many'"),
        (
            {"no_progress_minutes": 0},
            "alerts.no_progress_minutes: must be between 0.05 and 10080, got 0",
        ),
        ({"check_interval": 0.5}, "alerts.check_interval: must be between 1 and 3600, got 0.5"),
        ({"repeat_after": -1}, "alerts.repeat_after: must be at least 0, got -1"),
        ({"max_per_minute": 100}, "alerts.max_per_minute: must be between 1 and 60, got 100"),
        ({"timeout": 0}, "alerts.timeout: must be above 0 and at most 60, got 0"),
        ({"attempts": 0}, "alerts.attempts: must be between 1 and 10, got 0"),
    ],
)
def test_load_alerts_bad_value_names_the_key(raw: dict, expected: str) -> None:
    assert problem(raw) == expected


def test_load_alerts_bad_url_is_named_with_its_token_masked() -> None:
    raw = {
        "webhooks": [
            {
                "type": "dingtalk",
                "url": "oapi.dingtalk.com/robot/send?access_token=0123456789abcdef",
            }
        ]
    }

    assert problem(raw) == "alerts.webhooks[0].url: expected an http(s) URL with a host, got ***"


def test_load_alerts_url_without_scheme_host_is_refused() -> None:
    raw = {"webhooks": [{"type": "feishu", "url": "https:///open-apis/bot/v2/hook/5e3d587e"}]}

    assert problem(raw).startswith("alerts.webhooks[0].url: expected an http(s) URL with a host")


def test_load_alerts_wecom_with_a_secret_is_refused() -> None:
    raw = {"webhooks": [{"type": "wecom", "url": WECOM, "secret": "s3cret"}]}

    assert problem(raw) == (
        "alerts.webhooks[0].secret: WeCom group robots have no signing secret; remove it"
    )


def test_load_alerts_secret_of_the_wrong_type_is_not_repeated() -> None:
    raw = {"webhooks": [{"type": "feishu", "url": FEISHU, "secret": 123456}]}

    assert problem(raw) == "alerts.webhooks[0].secret: expected text, got ***"


@pytest.mark.parametrize(
    ("webhooks", "expected"),
    [
        # The URL pasted where the list belongs: its token was shown, cut at 60 characters.
        (DINGTALK, "alerts.webhooks: expected a list, got text"),
        # One webhook without the list around it: its signing secret was shown whole.
        (
            {"secret": "SECabc", "type": "dingtalk"},
            "alerts.webhooks: expected a list, got a mapping",
        ),
    ],
)
def test_load_alerts_misplaced_webhook_is_named_by_kind_not_shown(
    webhooks: object, expected: str
) -> None:
    assert problem({"webhooks": webhooks}) == expected


def test_load_alerts_not_a_mapping_is_refused() -> None:
    assert problem(["x"]) == "alerts: expected a mapping, got a list"  # type: ignore[arg-type]


def test_webhook_repr_hides_the_token_and_the_secret() -> None:
    settings = load_alerts(
        {
            "webhooks": [
                {"type": "dingtalk", "url": DINGTALK, "secret": "SECabc"},
                {"type": "feishu", "url": FEISHU, "secret": "s3cret"},
                {"type": "wecom", "url": WECOM},
            ]
        }
    )

    shown = repr(settings) + str(settings) + "".join(w.label for w in settings.webhooks)

    assert not any(token in shown for token in TOKENS), shown
    assert "oapi.dingtalk.com" in shown and "secret='***'" in shown


def test_webhook_label_prefers_the_name() -> None:
    assert Webhook(type="json", url="http://h:1/x?k=v", name="值班").label == "值班"
    assert Webhook(type="json", url="http://h:1/x?k=v").label == "json http://h:1/…?…"
