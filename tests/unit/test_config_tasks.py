"""The task list: `api.task_id` (one or a list) and `api.tasks` with per-task settings."""

from __future__ import annotations

import pytest

from jobstream import config
from jobstream.errors import ConfigError


def tasks(*entries: dict, **api: object) -> config.Config:
    return config.from_mapping({"api": {"tasks": list(entries), **api}})


def test_config_tasks_add_to_task_id_and_take_the_defaults() -> None:
    loaded = tasks(
        {"id": "b", "name": "北京", "batch_size": 50, "enabled": False},
        {"id": "c", "interval": 60},
        task_id=["a", "b"],
        batch_size=200,
    )
    assert loaded.api.task_ids == ("a", "b", "c")
    assert loaded.api.enabled_task_ids == ("a", "c")
    assert loaded.task("a") == config.Task(
        id="a", name="a", batch_size=200, interval=300.0, enabled=True
    )
    assert loaded.task("b") == config.Task(
        id="b", name="北京", batch_size=50, interval=300.0, enabled=False
    )
    assert (loaded.task("c").batch_size, loaded.task("c").interval) == (200, 60.0)
    with pytest.raises(KeyError):
        loaded.task("nope")


def test_config_tasks_alone_replace_the_seed_example_task() -> None:
    assert config.from_mapping({}).api.task_ids == (config.DEFAULT_TASK_ID,)
    assert tasks({"id": "z"}).api.task_ids == ("z",)
    assert config.from_mapping({"api": {"task_id": "a"}}).api.task_ids == ("a",)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"id": "a"}, {"id": "b", "batch_size": 5000}],
            r"^api\.tasks\[1\]\.batch_size: must be between 1 and 1000, got 5000",
        ),
        (
            [{"id": "a", "batch_size": "x"}],
            r"^api\.tasks\[0\]\.batch_size: expected an integer, got 'x'",
        ),
        (
            [{"id": "a", "interval": 0.5}],
            r"^api\.tasks\[0\]\.interval: must be at least 1, got 0\.5$",
        ),
        ([{"id": "a"}, {"id": "a"}], r"^api\.tasks\[1\]\.id: 'a' is listed twice in api\.tasks$"),
        ([{"name": "x"}], r"^api\.tasks\[0\]\.id: required$"),
        ([{"id": " "}], r"^api\.tasks\[0\]\.id: must not be empty, got ' '$"),
        ([{"id": "a", "colour": "red"}], r"^api\.tasks\[0\]\.colour: unknown key$"),
        ([{"id": "a", "enabled": "maybe"}], r"^api\.tasks\[0\]\.enabled: expected true or false"),
    ],
)
def test_config_tasks_wrong_value_names_the_key(entries: list[dict], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tasks(*entries)


def test_config_tasks_must_be_a_list() -> None:
    with pytest.raises(ConfigError, match=r"^api\.tasks: expected a list, got 'a'$"):
        config.from_mapping({"api": {"tasks": "a"}})
