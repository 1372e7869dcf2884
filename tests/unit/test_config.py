"""Configuration: every mistake stops the worker with one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jobstream import config
from jobstream.errors import ConfigError
from tests.harness import ROOT

SHIPPED = ROOT / "config" / "config.yml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


def load_with(tmp_path: Path, change: dict, env: dict | None = None) -> config.Config:
    values = yaml.safe_load(SHIPPED.read_text())
    for section, keys in change.items():
        values.setdefault(section, {}).update(keys)
    return config.load(write(tmp_path, yaml.safe_dump(values)), env=env or {})


def test_config_shipped_file_loads_demo_and_embedded_defaults() -> None:
    loaded = config.load(SHIPPED, env={})
    assert loaded.api.is_demo and loaded.kafka.is_embedded
    assert loaded.api.batch_size == 100 and loaded.crawler.filter_days == 7
    assert loaded.crawler.timezone == "Asia/Shanghai" and loaded.app.web_port == 8000
    assert loaded.kafka.topic == "job_data" and loaded.kafka.partitions == 3


def test_config_dedupe_on_by_default_window_the_filter_window(tmp_path: Path) -> None:
    loaded = config.load(SHIPPED, env={})
    assert loaded.dedupe.enabled and loaded.dedupe_window == 7 * 86400
    assert loaded.kafka.candidates_topic == "job_candidates"
    changed = load_with(tmp_path, {"crawler": {"filter_days": 3}, "dedupe": {"enabled": False}})
    assert not changed.dedupe.enabled and changed.dedupe_window == 3 * 86400
    assert load_with(tmp_path, {"dedupe": {"window": 2.5}}).dedupe_window == 2.5


def test_config_missing_file_names_config_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^CONFIG_PATH: cannot read .*nope\.yml"):
        config.load(tmp_path / "nope.yml", env={})


def test_config_config_path_env_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "crawler:\n  interval: 60\n")
    assert config.load(env={"CONFIG_PATH": str(path)}).crawler.interval == 60


def test_config_bad_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.yml: not valid YAML at line \d"):
        config.load(write(tmp_path, "api:\n  batch_size: [1\n"), env={})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api": {"bogus": 1}}, r"^api\.bogus: unknown key"),
        ({"nonsense": {"a": 1}}, r"^nonsense: unknown section"),
        ({"api": {"batch_size": "many"}}, r"^api\.batch_size: expected an integer, got 'many'$"),
        ({"api": {"batch_size": 0}}, r"^api\.batch_size: must be between 1 and 1000, got 0"),
        ({"api": {"batch_size": 1001}}, r"^api\.batch_size: must be between 1 and 1000"),
        ({"api": {"batch_size": True}}, r"^api\.batch_size: expected an integer, got True$"),
        ({"crawler": {"interval": 0}}, r"^crawler\.interval:"),
        ({"crawler": {"filter_days": -1}}, r"^crawler\.filter_days:"),
        ({"crawler": {"timezone": "Mars/Olympus"}}, r"^crawler\.timezone: unknown time zone"),
        ({"kafka": {"partitions": "x"}}, r"^kafka\.partitions: expected an integer"),
        ({"app": {"debug": "maybe"}}, r"^app\.debug: expected true or false, got 'maybe'$"),
        ({"api": {"task_id": []}}, r"^api\.task_id: expected text or a non-empty list, got \[\]$"),
        ({"api": {"base_url": "ftp://x"}}, r"^api\.base_url: expected 'demo' or an http"),
        ({"api": {"task_id": ["a", " "]}}, r"^api\.task_id\[1\]: must not be empty, got ' '$"),
        ({"api": {"request_timeout": 0}}, r"^api\.request_timeout: must be above 0, got 0$"),
        ({"kafka": {"bootstrap_servers": " "}}, r"^kafka\.bootstrap_servers: must not be empty"),
        ({"kafka": {"http_timeout": 200}}, r"^kafka\.http_timeout: must be between 0\.5 and 120"),
        ({"app": {"web_port": 70000}}, r"^app\.web_port: must be between 1 and 65535, got 70000$"),
        ({"database": {"path": ""}}, r"^database\.path: must not be empty, got ''$"),
        ({"dedupe": {"enabled": "maybe"}}, r"^dedupe\.enabled: expected true or false"),
        ({"dedupe": {"window": 0}}, r"^dedupe\.window: must be above 0, got 0$"),
        ({"dedupe": {"bogus": 1}}, r"^dedupe\.bogus: unknown key"),
        ({"app": {"admin_token": ["x"]}}, r"^app\.admin_token: expected text, got \*\*\*$"),
        (
            {"alerts": {"webhooks": [{"type": "slack", "url": "https://h/x"}]}},
            r"^alerts\.webhooks\[0\]\.type: expected one of wecom, dingtalk, feishu, json, got",
        ),
        ({"alerts": {"webhooks": [{"type": "json"}]}}, r"^alerts\.webhooks\[0\]\.url: required$"),
        ({"alerts": {"check_interval": 0}}, r"^alerts\.check_interval: must be between 1 and"),
    ],
)
def test_config_wrong_value_names_the_key(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_with(tmp_path, change)


def test_config_real_api_without_credentials_refuses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="API_USERNAME and API_PASSWORD"):
        load_with(tmp_path, {"api": {"base_url": "https://openapi.bazhuayu.com"}})
    with pytest.raises(ConfigError, match="API_USERNAME"):
        load_with(
            tmp_path,
            {
                "api": {
                    "base_url": "https://openapi.bazhuayu.com",
                    "username": "your_username",
                    "password": "your_password",
                }
            },
        )


def test_config_environment_overrides_file(tmp_path: Path) -> None:
    loaded = load_with(
        tmp_path,
        {"api": {"base_url": "https://openapi.bazhuayu.com"}},
        env={
            "API_USERNAME": "alice",
            "API_PASSWORD": "s3cret-pw",
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "ADMIN_TOKEN": "tok",
        },
    )
    assert loaded.api.username == "alice" and loaded.api.password == "s3cret-pw"
    assert loaded.kafka.bootstrap_servers == "k1:9092,k2:9092" and not loaded.kafka.is_embedded
    assert loaded.app.admin_token == "tok"


def test_config_secrets_never_in_repr(tmp_path: Path) -> None:
    loaded = load_with(
        tmp_path, {"api": {"password": "s3cret-pw"}, "app": {"admin_token": "adm1n-tok"}}
    )
    for text in (repr(loaded), repr(loaded.api), repr(loaded.app), str(loaded)):
        assert "s3cret-pw" not in text and "adm1n-tok" not in text
    assert "password=***" in repr(loaded.api) and "username=''" in repr(loaded.api)


def test_config_environment_strings_become_numbers_and_numbers_text(tmp_path: Path) -> None:
    """The environment gives strings; YAML reads an unquoted password 123456 as a number."""
    loaded = config.from_mapping(
        {"app": {"web_port": "8080", "debug": "true", "admin_token": 123456, "version": 1.5}}
    )
    assert (loaded.app.web_port, loaded.app.debug) == (8080, True)
    assert (loaded.app.admin_token, loaded.app.version) == ("123456", "1.5")
    assert config.from_mapping({"crawler": None}).crawler == config.CrawlerSection()
    # A section holds secrets: what stands where it belongs is named by its kind, not shown.
    with pytest.raises(ConfigError, match=r"^api: expected a mapping, got text$"):
        config.from_mapping({"api": "x"})


def test_config_alerts_section_loads_with_the_others(tmp_path: Path) -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef"
    loaded = load_with(
        tmp_path, {"alerts": {"webhooks": [{"type": "dingtalk", "url": url, "secret": "SECx"}]}}
    )
    assert loaded.alerts.enabled and loaded.alerts.webhooks[0].secret == "SECx"
    assert "0123456789abcdef" not in repr(loaded) and "SECx" not in repr(loaded)
    assert not config.load(SHIPPED, env={}).alerts.enabled


def test_config_task_id_list_gives_several_tasks(tmp_path: Path) -> None:
    loaded = load_with(tmp_path, {"api": {"task_id": ["a", "b"]}})
    assert loaded.api.task_ids == ("a", "b")


def test_worker_bad_config_exits_with_one_line_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  batch_size: 5000\n")
    result = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "jobstream", "worker"],
        cwd=tmp_path,
        env={"CONFIG_PATH": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "jobstream: configuration error: api.batch_size: must be between 1 and 1000, got 5000"
    )
    assert "Traceback" not in result.stderr
