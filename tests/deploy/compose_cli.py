"""Runs `docker-compose config` and reads its output the same way whichever Compose wrote it.

Compose v1 (Debian's docker-compose 1.29) prints short syntax for some ports and volumes
("127.0.0.1:2181:2181/tcp", "app_data:/app/data:rw"); Compose v2 prints long syntax (mappings).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def run_config(cli: str, project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose [options] config` in `project`, free of COMPOSE_*/DOCKER_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [cli, *options, "config"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class Port:
    host_ip: str
    published: int | None
    target: int


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


def ports(service: dict[str, Any]) -> list[Port]:
    return [_port(entry) for entry in service.get("ports", [])]


def _port(entry: str | dict[str, Any]) -> Port:
    if isinstance(entry, dict):
        published = entry.get("published")
        return Port(
            host_ip=entry.get("host_ip", ""),
            published=int(published) if published not in (None, "") else None,
            target=int(entry["target"]),
        )
    parts = str(entry).split("/")[0].split(":")
    if len(parts) == 3:
        return Port(parts[0], int(parts[1]), int(parts[2]))
    if len(parts) == 2:
        return Port("", int(parts[0]), int(parts[1]))
    return Port("", None, int(parts[0]))


def mounts(service: dict[str, Any]) -> list[Mount]:
    return [_mount(entry) for entry in service.get("volumes", [])]


def _mount(entry: str | dict[str, Any]) -> Mount:
    if isinstance(entry, dict):
        return Mount(entry["source"], entry["target"], bool(entry.get("read_only", False)))
    source, target, *mode = str(entry).split(":")
    return Mount(source, target, "ro" in (mode[0].split(",") if mode else []))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def healthcheck_command(service: dict[str, Any]) -> list[str]:
    test = service.get("healthcheck", {}).get("test", [])
    return [test] if isinstance(test, str) else list(test)
