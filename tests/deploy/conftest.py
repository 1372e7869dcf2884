"""Fixtures for the deployment files: the repository root and the normalized compose file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.compose_cli import run_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def compose_cli() -> str:
    cli = shutil.which("docker-compose")
    if cli is None:
        pytest.fail("docker-compose is not installed: apt-get install docker-compose")
    return cli


@pytest.fixture(scope="session")
def compose_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the compose project with `.env` made from `.env.example`, as a user does."""
    project = tmp_path_factory.mktemp("compose")
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(REPO / name, project / name)
    shutil.copy(REPO / ".env.example", project / ".env")
    shutil.copytree(REPO / "config", project / "config")
    return project


@pytest.fixture(scope="session")
def compose(compose_cli: str, compose_project: Path) -> dict[str, Any]:
    """`docker-compose config` of the real file, every profile enabled, parsed."""
    result = run_config(compose_cli, compose_project, "--profile", "scale", "--profile", "ui")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config
