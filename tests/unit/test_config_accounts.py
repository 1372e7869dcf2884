"""`api.accounts`: more Bazhuayu accounts, each with its own base URL, credentials and rate, a
task naming its own; the default account is api's own keys, and a config without accounts
means what it meant before."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from jobstream import config
from jobstream.errors import ConfigError
from jobstream.redaction import secrets_in

REAL = {"base_url": "https://openapi.bazhuayu.com", "username": "me", "password": "pw-default"}
TEAM_B = {"name": "team_b", "username": "b", "password": "pw-team-b", "max_requests_per_second": 8}


def api(**keys: object) -> config.Config:
    return config.from_mapping({"api": {**REAL, **keys}})


def test_config_accounts_none_is_the_default_account_as_before() -> None:
    loaded = config.from_mapping({})
    (default,) = loaded.accounts
    assert (default.name, default.base_url, default.is_demo) == ("default", "demo", True)
    assert default.per_second == 20.0  # max_requests_per_second and min_interval 0.05 agree
    assert loaded.task(config.DEFAULT_TASK_ID).account == "default"
    assert loaded.source_of(config.DEFAULT_TASK_ID) == "demo"


def test_config_accounts_each_task_names_its_own_and_unset_keys_are_apis() -> None:
    loaded = api(
        accounts=[TEAM_B, {"name": "intl", "base_url": "https://openapi.octoparse.com/",
                           "username": "i", "password": "pw-intl", "min_interval": 0.5}],
        tasks=[{"id": "a"}, {"id": "b", "account": "team_b"}, {"id": "c", "account": "intl"},
               {"id": "d", "account": "default"}],
        max_requests_per_second=0,
    )  # fmt: skip
    assert [a.name for a in loaded.accounts] == ["default", "team_b", "intl"]
    assert [loaded.task(t).account for t in "abcd"] == ["default", "team_b", "intl", "default"]
    default, team_b, intl = loaded.accounts
    assert default.per_second == 20.0  # max_requests_per_second 0 (no limit), min_interval 0.05
    assert (team_b.base_url, team_b.per_second) == (REAL["base_url"], 8.0)
    assert intl.per_second == 2.0 and loaded.source_of("c") == "https://openapi.octoparse.com"
    assert loaded.source_of("b") == REAL["base_url"]
    no_limit = api(min_interval=0, max_requests_per_second=0).accounts[0]
    assert math.isinf(no_limit.per_second)


def test_config_accounts_passwords_are_secrets_everywhere() -> None:
    loaded = api(accounts=[TEAM_B])
    assert "pw-team-b" in secrets_in(loaded)
    assert "pw-team-b" not in repr(loaded) and "pw-team-b" not in repr(loaded.accounts)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"accounts": [{**TEAM_B, "name": "Default"}]},
            r"^api\.accounts\[0\]\.name: 'Default' is the name of the account of api\.base_url",
        ),
        (
            {"accounts": [TEAM_B, {**TEAM_B, "name": "TEAM_B"}]},
            r"^api\.accounts\[1\]\.name: 'TEAM_B' is listed twice",
        ),
        ({"accounts": [{**TEAM_B, "name": "team-b"}]}, r"^api\.accounts\[0\]\.name: must be a"),
        (
            {"accounts": [{"name": "x", "password": "pw-x-1"}]},
            r"^api\.accounts\[0\]\.username: required for account 'x' "
            r"\(set API_ACCOUNT_X_USERNAME\)$",
        ),
        (
            {"accounts": [{**TEAM_B, "max_requests_per_second": -1}]},
            r"^api\.accounts\[0\]\.max_requests_per_second: must be between 0 and 10000",
        ),
        ({"accounts": [{**TEAM_B, "colour": 1}]}, r"^api\.accounts\[0\]\.colour: unknown key"),
        (
            {"tasks": [{"id": "a", "account": "team_c"}], "accounts": [TEAM_B]},
            r"^api\.tasks\[0\]\.account: no account named 'team_c' \(accounts: default, team_b\)$",
        ),
    ],
)
def test_config_accounts_wrong_value_names_the_key(keys: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        api(**keys)


def test_config_accounts_of_their_own_need_a_real_api() -> None:
    with pytest.raises(ConfigError, match=r"^api\.accounts\[0\]\.base_url: an account of its own"):
        config.from_mapping({"api": {"accounts": [TEAM_B]}})  # api.base_url is demo


def test_config_accounts_credentials_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"api": {**REAL, "accounts": [{"name": "team_b"}]}}))
    env = {"API_ACCOUNT_TEAM_B_USERNAME": "b", "API_ACCOUNT_TEAM_B_PASSWORD": "pw-env-b"}
    team_b = config.load(path, env=env).account("team_b")
    assert (team_b.username, team_b.password) == ("b", "pw-env-b")
    # A bad value set by a variable names it, and never shows the secret.
    env["API_ACCOUNT_TEAM_B_BASE_URL"] = "ftp://nope"
    with pytest.raises(ConfigError) as raised:
        config.load(path, env=env)
    assert str(raised.value).startswith(
        "api.accounts[0].base_url (from API_ACCOUNT_TEAM_B_BASE_URL): expected 'demo' or an"
    )
    assert "pw-env-b" not in str(raised.value)


def test_config_accounts_numeric_password_in_yaml_is_text() -> None:
    loaded = api(accounts=[{**TEAM_B, "password": 123456}])
    assert loaded.account("team_b").password == "123456"
