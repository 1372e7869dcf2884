"""config/config.yml.docker, the Kubernetes ConfigMap and .env.example, read by jobstream.config."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest
import yaml

from jobstream import config as jobstream_config
from jobstream.errors import ConfigError

CREDENTIALS = {"API_USERNAME": "someone", "API_PASSWORD": "secret"}
# Read by Faust or Compose rather than jobstream.config, and documented in .env.example.
OTHER_VARIABLES = {"CONFIG_PATH", "WEB_PORT", "APP_DATADIR", "COMPOSE_PROJECT_NAME"}


def _docker_config(repo: Path) -> Path:
    return repo / "config" / "config.yml.docker"


def test_config_docker_with_credentials_loads_for_containers(repo: Path) -> None:
    config = jobstream_config.load(_docker_config(repo), env=CREDENTIALS)
    assert config.api.base_url == "https://openapi.bazhuayu.com"
    assert not config.api.is_demo
    assert (config.api.username, config.api.password) == ("someone", "secret")
    assert config.kafka.bootstrap_servers == "kafka:29092"
    assert not config.kafka.is_embedded
    assert config.kafka.topic == "job_data"
    assert config.kafka.partitions == 3
    assert Path(config.database.path).parent == Path("/app/data")
    assert config.app.web_port == 8000


def test_config_docker_without_credentials_raises_naming_api_username(repo: Path) -> None:
    with pytest.raises(ConfigError, match="API_USERNAME"):
        jobstream_config.load(_docker_config(repo), env={})


def test_config_docker_env_example_as_copied_still_refuses_to_start(repo: Path) -> None:
    # `cp .env.example .env` without filling it in must not start a crawl of the real API.
    with pytest.raises(ConfigError, match="API_USERNAME"):
        jobstream_config.load(_docker_config(repo), env=_env_file(repo / ".env.example"))


def test_config_docker_file_holds_no_credentials(repo: Path) -> None:
    raw = yaml.safe_load(_docker_config(repo).read_text(encoding="utf-8"))
    assert raw["api"]["username"] == raw["api"]["password"] == raw["app"]["admin_token"] == ""


def test_config_k8s_configmap_matches_docker_config_but_bootstrap(
    repo: Path, tmp_path: Path
) -> None:
    configmap = yaml.safe_load((repo / "deploy" / "k8s" / "configmap.yaml").read_text("utf-8"))
    path = tmp_path / "config.yml"
    path.write_text(configmap["data"]["config.yml"], encoding="utf-8")
    in_pod = msgspec.to_builtins(jobstream_config.load(path, env=CREDENTIALS))
    in_compose = msgspec.to_builtins(jobstream_config.load(_docker_config(repo), env=CREDENTIALS))
    assert in_pod["kafka"].pop("bootstrap_servers") == "kafka:9092"
    in_compose["kafka"].pop("bootstrap_servers")
    assert in_pod == in_compose


def test_env_example_names_every_variable_the_app_reads(repo: Path) -> None:
    text = (repo / ".env.example").read_text(encoding="utf-8")
    # Active or commented out (`# NAME=value`), each variable has its line.
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    assert set(jobstream_config.ENV_OVERRIDES) | OTHER_VARIABLES <= named
    active = set(_env_file(repo / ".env.example"))
    assert active <= set(jobstream_config.ENV_OVERRIDES) | OTHER_VARIABLES
    assert {"API_USERNAME", "API_PASSWORD"} <= active


def _env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as Compose's env_file reads them (no quotes or comments used here)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value
    return env
