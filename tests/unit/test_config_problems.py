"""How a config problem is found and worded: from the declaration, whatever msgspec's message
says, with the key's full path, the nearest valid key, and never a secret."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import pytest

from jobstream import config
from jobstream.config_problems import InvalidSetting, first_problem
from jobstream.errors import ConfigError

# One of each kind of problem, as the user sees it.
PROBLEMS = [
    ({"api": {"batch_size": 5000}}, "api.batch_size: must be between 1 and 1000, got 5000"),
    ({"api": {"batch_size": "many"}}, "api.batch_size: expected an integer, got 'many'"),
    ({"api": {"request_timeout": 0}}, "api.request_timeout: must be above 0, got 0"),
    ({"api": {"task_id": ["a", " "]}}, "api.task_id[1]: must not be empty, got ' '"),
    ({"api": {"task_id": []}}, "api.task_id: expected text or a non-empty list, got []"),
    (
        {"api": {"tasks": [{"id": "a"}, {"id": "a"}]}},
        "api.tasks[1].id: 'a' is listed twice in api.tasks",
    ),
    ({"api": {"tasks": [{"name": "x"}]}}, "api.tasks[0].id: required"),
    (
        {"api": {"base_url": "ftp://x"}},
        "api.base_url: expected 'demo' or an http(s) URL, got 'ftp://x'",
    ),
    ({"api": {"batchsize": 5}}, "api.batchsize: unknown key, did you mean `batch_size`?"),
    (
        {"app": {"name": "a b"}},
        "app.name: must be 1 to 100 letters, digits, '.', '_' or '-' "
        "(it names Kafka groups and topics), got 'a b'",
    ),
    ({"app": {"admin_token": ["x"]}}, "app.admin_token: expected text, got ***"),
    (
        {"crawler": {"timezone": "Mars/Olympus"}},
        "crawler.timezone: unknown time zone 'Mars/Olympus'",
    ),
    (
        {"alerts": {"webhooks": [{"type": "slack", "url": "https://h/x"}]}},
        "alerts.webhooks[0].type: expected one of wecom, dingtalk, feishu, json, got 'slack'",
    ),
    ({"kafak": {}}, "kafak: unknown section, did you mean `kafka`?"),
]


@pytest.mark.parametrize(("raw", "expected"), PROBLEMS)
def test_config_problem_names_the_key_and_the_declared_rule(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(raw)
    assert str(caught.value) == expected


@pytest.mark.parametrize(("raw", "expected"), PROBLEMS)
def test_config_problem_does_not_depend_on_msgspecs_wording(
    monkeypatch: pytest.MonkeyPatch, raw: dict, expected: str
) -> None:
    """A msgspec release that words its errors differently (or not at all) changes nothing."""
    real = msgspec.convert

    def reworded(*args: Any, **kwargs: Any) -> Any:
        try:
            return real(*args, **kwargs)
        except msgspec.ValidationError:
            raise msgspec.ValidationError("Wert ungültig") from None

    monkeypatch.setattr(msgspec, "convert", reworded)
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(raw)
    assert str(caught.value) == expected


def test_config_unknown_section_without_a_near_one_lists_the_sections() -> None:
    with pytest.raises(ConfigError) as caught:
        config.from_mapping({"nonsense": {}})
    assert str(caught.value) == (
        "nonsense: unknown section (expected one of app, api, kafka, crawler, dedupe, database, "
        "spool, alerts)"
    )


def test_config_misspelled_key_in_another_case_gets_the_declared_spelling() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^kafka\.Embedded_Port: unknown key, did you mean "
        r"`embedded_port`\?$",
    ):
        config.from_mapping({"kafka": {"Embedded_Port": 9093}})


def test_config_real_api_names_only_the_missing_credential() -> None:
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(
            {"api": {"base_url": "https://openapi.bazhuayu.com", "username": "alice"}}
        )
    assert str(caught.value) == (
        "api.password: required for the real API (set API_PASSWORD, or use api.base_url: demo)"
    )
    with pytest.raises(ConfigError) as caught:
        config.from_mapping({"api": {"base_url": "https://openapi.bazhuayu.com"}})
    assert str(caught.value) == (
        "api.username and api.password: required for the real API "
        "(set API_USERNAME and API_PASSWORD, or use api.base_url: demo)"
    )


# -- the walk itself, on declarations made up for it -------------------------------------------


class Leaf(msgspec.Struct, forbid_unknown_fields=True):
    colour: Literal["red", "green", "blue"]
    token: Annotated[str, msgspec.Meta(extra={"secret": True})] = ""
    size: Annotated[int, msgspec.Meta(ge=1)] | None = None

    def __post_init__(self) -> None:
        if self.colour == "red" and self.size == 2:
            raise InvalidSetting("red comes in size 1 only", "colour", "size")


class Tree(msgspec.Struct, forbid_unknown_fields=True):
    leaves: dict[str, list[Leaf]] = {}
    tags: Annotated[list[str], msgspec.Meta(max_length=2)] = []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"leaves": {"a": [{"colour": "red"}], "b": [{"colour": "pink"}]}},
            "tree.leaves.b[0].colour: expected one of red, green, blue, got 'pink'",
        ),
        ({"leaves": {"a": "red"}}, "tree.leaves.a: expected a list, got text"),
        ({"tags": ["a", "b", "c"]}, "tree.tags: must be at most 2 long, got ['a', 'b', 'c']"),
        ({"tags": "a"}, "tree.tags: expected a list, got 'a'"),
    ],
)
def test_first_problem_in_a_made_up_tree(raw: dict, expected: str) -> None:
    assert str(first_problem(raw, Tree, "tree")) == expected


def test_first_problem_with_the_whole_value_names_the_config() -> None:
    # Tree holds a secret (a leaf's token): what stands in its place is named by its kind.
    assert str(first_problem("x", Tree)) == "config: expected a mapping, got text"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Literal values in their declared order (msgspec.inspect sorts them).
        ({"colour": "pink"}, "leaf.colour: expected one of red, green, blue, got 'pink'"),
        ({"colour": "red", "size": 0}, "leaf.size: must be at least 1, got 0"),
        ({"colour": "red", "size": 2}, "leaf.colour and leaf.size: red comes in size 1 only"),
        ({"colour": "red", "token": 5}, "leaf.token: expected text, got ***"),
        ({"colour": "red", "tokn": "x"}, "leaf.tokn: unknown key, did you mean `token`?"),
        ({}, "leaf.colour: required"),
    ],
)
def test_first_problem_in_a_made_up_leaf(raw: dict, expected: str) -> None:
    assert str(first_problem(raw, Leaf, "leaf")) == expected
