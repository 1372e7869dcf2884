"""Reads the `kafka-topics --create` calls out of a shell script (compose kafka-init, k8s Job)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class TopicCreate:
    topic: str
    partitions: int
    replication_factor: int
    if_not_exists: bool
    bootstrap_server: str


def created_topics(script: str) -> dict[str, TopicCreate]:
    """Every topic the script creates, by name; a topic created twice is an error."""
    created: dict[str, TopicCreate] = {}
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] != "kafka-topics" or "--create" not in words:
            continue
        options = _options(words[1:])
        call = TopicCreate(
            topic=options["--topic"],
            partitions=int(options["--partitions"]),
            replication_factor=int(options["--replication-factor"]),
            if_not_exists="--if-not-exists" in words,
            bootstrap_server=options["--bootstrap-server"],
        )
        if call.topic in created:
            raise ValueError(f"topic {call.topic} created twice")
        created[call.topic] = call
    return created


def _options(words: list[str]) -> dict[str, str]:
    values = {}
    for name, value in zip(words, [*words[1:], ""], strict=True):
        if name.startswith("--") and not value.startswith("--"):
            values[name] = value
    return values
