"""A wrong `api.accounts` entry (or a task naming no account) stops the real worker at start:
one line naming the key (and the variable, when one set it), exit code not 0, no traceback, and
no password of any account in what the worker wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REAL = {
    "base_url": "https://openapi.bazhuayu.com",
    "username": "me",
    "password": "pw-default-5e3c",
}
TEAM_B = {"name": "team_b", "username": "b", "password": "pw-team-b-91f0"}
ENV_PASSWORD = "pw-env-b-77aa"
PASSWORDS = (REAL["password"], TEAM_B["password"], ENV_PASSWORD)


def start_worker(tmp_path: Path, api: dict[str, Any], env: dict[str, str]) -> tuple[int, str]:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"api": {**REAL, **api}}))
    result = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "jobstream", "worker"],
        cwd=tmp_path,
        env={"CONFIG_PATH": str(path), "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("api", "env", "line"),
    [
        (
            {"accounts": [TEAM_B], "tasks": [{"id": "a", "account": "team_c"}]},
            {},
            "api.tasks[0].account: no account named 'team_c' (accounts: default, team_b)",
        ),
        (
            {"accounts": [{"name": "team_b", "username": "b"}]},
            {},
            "api.accounts[0].password: required for account 'team_b' "
            "(set API_ACCOUNT_TEAM_B_PASSWORD)",
        ),
        (
            {"accounts": [{**TEAM_B, "max_requests_per_second": "fast"}]},
            {},
            "api.accounts[0].max_requests_per_second: expected a number, got 'fast'",
        ),
        (
            {"accounts": [{"name": "team_b"}]},
            {
                "API_ACCOUNT_TEAM_B_USERNAME": "b",
                "API_ACCOUNT_TEAM_B_PASSWORD": ENV_PASSWORD,
                "API_ACCOUNT_TEAM_B_BASE_URL": "ftp://nope",
            },
            "api.accounts[0].base_url (from API_ACCOUNT_TEAM_B_BASE_URL): expected 'demo' or an",
        ),
        (
            {"accounts": [TEAM_B, {**TEAM_B, "name": "Team_B"}]},
            {},
            "api.accounts[1].name: 'Team_B' is listed twice in api.accounts",
        ),
    ],
    ids=["unknown-account", "missing-password", "bad-rate", "bad-url-from-env", "name-twice"],
)
def test_worker_bad_account_config_exits_with_one_line_naming_the_key(
    tmp_path: Path, api: dict[str, Any], env: dict[str, str], line: str
) -> None:
    code, output = start_worker(tmp_path, api, env)
    lines = [text for text in output.splitlines() if text.strip()]

    assert code != 0, output
    assert "Traceback" not in output
    assert lines[-1].startswith(f"jobstream: configuration error: {line}"), output
    # Nothing started: one ERROR line in the log and the line above, nothing else.
    assert len(lines) <= 2, output
    for password in PASSWORDS:
        assert password not in output
