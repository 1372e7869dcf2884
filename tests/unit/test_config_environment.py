"""Environment overrides: what each variable sets, and a bad value named by its variable and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobstream import config
from jobstream.errors import ConfigError
from tests.harness import ROOT

SHIPPED = ROOT / "config" / "config.yml"


def load_env(**env: str) -> config.Config:
    return config.load(SHIPPED, env=env)


def refusal(**env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_env(**env)
    return str(caught.value)


def test_env_task_id_with_commas_is_a_list_of_tasks() -> None:
    assert load_env(API_TASK_ID="a,b").api.task_ids == ("a", "b")
    assert load_env(API_TASK_ID=" a , b ").api.task_ids == ("a", "b")
    assert load_env(API_TASK_ID="a").api.task_ids == ("a",)


def test_env_task_id_with_an_empty_item_names_the_variable() -> None:
    assert refusal(API_TASK_ID="a,,b") == (
        "api.task_id[1] (from API_TASK_ID): must not be empty, got ''"
    )


def test_env_task_id_commas_do_not_split_other_keys() -> None:
    loaded = load_env(KAFKA_BOOTSTRAP_SERVERS="k1:9092,k2:9092")
    assert loaded.kafka.bootstrap_servers == "k1:9092,k2:9092"


def test_env_kafka_embedded_port_sets_the_embedded_brokers_port() -> None:
    assert load_env(KAFKA_EMBEDDED_PORT="19092").kafka.embedded_port == 19092
    assert refusal(KAFKA_EMBEDDED_PORT="x") == (
        "kafka.embedded_port (from KAFKA_EMBEDDED_PORT): expected an integer, got 'x'"
    )
    assert refusal(KAFKA_EMBEDDED_PORT="0") == (
        "kafka.embedded_port (from KAFKA_EMBEDDED_PORT): must be between 1 and 65535, got '0'"
    )


def test_env_web_port_sets_app_web_port_and_a_bad_one_names_both() -> None:
    assert load_env(WEB_PORT="8123").app.web_port == 8123
    assert load_env(WEB_PORT="").app.web_port == 8000  # empty: not set, as for every variable
    assert refusal(WEB_PORT="abc") == (
        "app.web_port (from WEB_PORT): expected an integer, got 'abc'"
    )


def test_env_secret_from_the_environment_is_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("api:\n  base_url: https://openapi.bazhuayu.com\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(path, env={"API_PASSWORD": "s3cret-pw"})
    assert str(caught.value) == (
        "api.username: required for the real API (set API_USERNAME, or use api.base_url: demo)"
    )


def test_env_override_of_an_empty_section_fills_it(tmp_path: Path) -> None:
    """`database:` with every key commented out is an empty section, not a broken one."""
    path = tmp_path / "config.yml"
    path.write_text("database:\n  # path: data/x.db\n", encoding="utf-8")
    loaded = config.load(path, env={"DATABASE_PATH": str(tmp_path / "p.db")})
    assert loaded.database.path == str(tmp_path / "p.db")


def test_env_key_in_the_file_is_named_without_a_variable(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("app:\n  web_port: abc\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(path, env={"API_TASK_ID": "a"})
    assert str(caught.value) == "app.web_port: expected an integer, got 'abc'"
