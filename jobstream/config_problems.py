"""What is wrong with a config value, in one line that names its key.

msgspec decides whether a value fits its declared type; its message is English text whose
wording is no API. This module finds *where* a value does not fit by walking the value and the
declared type together (so it knows the key of every piece), converting piece by piece until it
reaches the first piece that does not convert. It words the problem from the declaration of that
piece: its type, its `msgspec.Meta` constraints and description (read with `msgspec.inspect`),
its Literal values. It never reads msgspec's message.

A value is shown only when its declaration holds no secret (`Meta(extra={"secret": True})`).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import msgspec.inspect as mi

HIDDEN = "***"
# A value's repr is cut here: the line stays one line.
SHOWN_CHARS = 60


class InvalidSetting(Exception):
    """Raised by a settings Struct's own check (`__post_init__`) for a value its fields accept
    but the struct does not: `keys` are the fields at fault, relative to the struct, each a name
    or a path (`("tasks", 1, "id")`); `reason` says what is wrong and must not hold a secret.

    Not a ValueError on purpose: msgspec turns a ValueError raised there into a ValidationError
    that holds nothing but text, and lets any other exception through as it is.
    """

    def __init__(self, reason: str, *keys: str | tuple[str | int, ...]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keys = keys


class Problem(NamedTuple):
    """The first problem found: the keys at fault (`api.tasks[1].id`) and what is wrong."""

    keys: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        return f"{' and '.join(self.keys)}: {self.reason}"


def first_problem(raw: Any, declared: Any, key: str = "") -> Problem:
    """The first thing in `raw` that does not fit `declared` (a type as annotated: a Struct,
    `Annotated[int, Meta(ge=1)]`, a union...); `key` is where `raw` sits in the file.

    For a value that `msgspec.convert(raw, declared, strict=False)` refused; the top level's
    unknown keys are called sections."""
    problem = _problem(raw, declared, key) or Problem((key,), "not accepted")
    # A problem with the whole of what was given (no key above it) is the config's.
    return problem._replace(keys=tuple(k or "config" for k in problem.keys))


# -- the walk: one level of the declaration at a time ----------------------------------------


def _problem(raw: Any, declared: Any, key: str) -> Problem | None:
    failure = _failure(raw, declared)
    if failure is None:
        return None
    bare = _bare(declared)
    if _is_union(bare):
        return _union_problem(raw, declared, key)
    if _is_struct(bare):
        return _struct_problem(raw, declared, key, failure)
    if _is_sequence(bare):
        return _sequence_problem(raw, declared, key)
    if _is_dict(bare):
        return _dict_problem(raw, declared, key)
    return _value_problem(raw, declared, key)


def _failure(raw: Any, declared: Any) -> Exception | None:
    """Why `raw` does not convert to `declared`, or None when it does. Lax, as `load` reads:
    the environment gives every value as text ("8000", "true")."""
    try:
        msgspec.convert(raw, declared, strict=False)
    except (msgspec.ValidationError, InvalidSetting) as exc:
        return exc
    return None


def _struct_problem(raw: Any, declared: Any, key: str, failure: Exception) -> Problem:
    if not isinstance(raw, Mapping):
        return _expected(raw, declared, key)
    fields = _fields(_bare(declared))
    for name, value in raw.items():
        if name not in fields:
            return _unknown(str(name), fields, key)
        if problem := _problem(value, fields[name].hint, _join(key, str(name))):
            return problem
    missing = [name for name, field in fields.items() if field.required and name not in raw]
    if missing:
        return Problem((_join(key, missing[0]),), "required")
    # Every field converts on its own: what refused the value is the struct's own check.
    if isinstance(failure, InvalidSetting):
        return Problem(tuple(_join(key, *_steps(k)) for k in failure.keys), failure.reason)
    return Problem((key,), "not accepted by its check")


def _unknown(name: str, fields: Mapping[str, Any], key: str) -> Problem:
    what = "unknown key" if key else "unknown section"
    names = {field.lower(): field for field in fields}
    guess = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
    if guess:
        reason = f"{what}, did you mean `{names[guess[0]]}`?"
    elif not key:
        reason = f"{what} (expected one of {', '.join(fields)})"
    else:
        reason = what
    return Problem((_join(key, name),), reason)


def _sequence_problem(raw: Any, declared: Any, key: str) -> Problem:
    if not isinstance(raw, list | tuple):
        return _expected(raw, declared, key)
    item = _item(_bare(declared))
    for index, value in enumerate(raw):
        if problem := _problem(value, item, _join(key, index)):
            return problem
    # Every item fits: the list's own constraint (its length) does not.
    return Problem((key,), f"{_rule(declared)}, got {_shown(raw, declared)}")


def _dict_problem(raw: Any, declared: Any, key: str) -> Problem:
    if not isinstance(raw, Mapping):
        return _expected(raw, declared, key)
    key_type, value_type = typing.get_args(_bare(declared)) or (Any, Any)
    for name, value in raw.items():
        if _failure(name, key_type) is not None:
            return Problem((_join(key, str(name)),), f"expected {_kind(key_type)} as a key")
        if problem := _problem(value, value_type, _join(key, str(name))):
            return problem
    return Problem((key,), f"{_rule(declared)}, got {_shown(raw, declared)}")


def _union_problem(raw: Any, declared: Any, key: str) -> Problem:
    # None and UNSET stand for "not given": what matters is what the key takes when given.
    given = [m for m in typing.get_args(_bare(declared)) if _bare(m) not in _NOTHING]
    if len(given) == 1:
        return _problem(raw, given[0], key) or _expected(raw, declared, key)
    fitting = [member for member in given if _shape_fits(raw, member)]
    if len(fitting) == 1:
        problem = _problem(raw, fitting[0], key)
        # Something inside the member (an item of a list) is named itself; the member as a
        # whole is said as the union's choices.
        if problem is not None and problem.keys != (key,):
            return problem
    return _expected(raw, declared, key)


def _value_problem(raw: Any, declared: Any, key: str) -> Problem:
    bare = _bare(declared)
    shown = _shown(raw, declared)
    if typing.get_origin(bare) is Literal or _failure(raw, bare) is not None:
        return _expected(raw, declared, key)
    # The type fits: a constraint declared on the field does not.
    return Problem((key,), f"{_rule(declared)}, got {shown}")


def _expected(raw: Any, declared: Any, key: str) -> Problem:
    return Problem((key,), f"expected {_kind(declared)}, got {_shown(raw, declared)}")


# -- words from the declaration ---------------------------------------------------------------


def _kind(declared: Any) -> str:
    """What a type accepts, in words: `an integer`, `one of wecom, dingtalk`, `a non-empty list`."""
    bare = _bare(declared)
    if _is_union(bare):
        given = [m for m in typing.get_args(bare) if _bare(m) not in _NOTHING]
        return " or ".join(_kind(member) for member in given)
    if typing.get_origin(bare) is Literal:
        # In the declared order (msgspec.inspect sorts them).
        return "one of " + ", ".join(str(value) for value in typing.get_args(bare))
    if _is_sequence(bare):
        return (
            "a non-empty list" if getattr(_constraints(declared), "min_length", None) else "a list"
        )
    if _is_struct(bare) or _is_dict(bare):
        return "a mapping"
    return _KINDS.get(bare, getattr(bare, "__name__", str(bare)))


_KINDS: dict[Any, str] = {int: "an integer", float: "a number", str: "text", bool: "true or false"}


def _rule(declared: Any) -> str:
    """The constraint a value broke, in words, from the `msgspec.Meta` on its declaration."""
    info = _info(declared)
    description = ""
    if isinstance(info, mi.Metadata):
        description = (info.extra_json_schema or {}).get("description", "")
    info = _constraints(declared)
    pattern = getattr(info, "pattern", None)
    if pattern:
        return description or f"must match {pattern}"
    low, high, above = (getattr(info, name, None) for name in ("ge", "le", "gt"))
    if low is not None and high is not None:
        return f"must be between {_number(low)} and {_number(high)}"
    if low is not None:
        return f"must be at least {_number(low)}"
    if above is not None:
        at_most = f" and at most {_number(high)}" if high is not None else ""
        return f"must be above {_number(above)}{at_most}"
    if high is not None:
        return f"must be at most {_number(high)}"
    shortest, longest = (getattr(info, name, None) for name in ("min_length", "max_length"))
    if shortest:
        return description or "must not be empty"
    if longest is not None:
        return f"must be at most {longest} long"
    return description or f"expected {_kind(declared)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _shown(raw: Any, declared: Any) -> str:
    """`raw` as the message shows it: its repr, or, where the declaration holds a secret, only
    `***` (a secret itself) or its kind (a section or list that holds one)."""
    if raw is None or isinstance(raw, bool) or not _holds_secret(declared):
        return f"{raw!r:.{SHOWN_CHARS}}"
    if _is_secret(_info(declared)):
        return HIDDEN
    if isinstance(raw, Mapping):
        return "a mapping"
    if isinstance(raw, list | tuple):
        return "a list"
    return "text" if isinstance(raw, str) else "a number"


# -- reading the declaration ------------------------------------------------------------------

_NOTHING = (type(None), msgspec.UnsetType)


class _Field(NamedTuple):
    hint: Any  # as annotated: Literal values in their declared order, Meta kept
    required: bool


@cache
def _fields(struct: type[msgspec.Struct]) -> dict[str, _Field]:
    """A Struct's fields by the name they have in the file."""
    hints = typing.get_type_hints(struct, include_extras=True)
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    return {f.encode_name: _Field(hints[f.name], f.required) for f in info.fields}


@cache
def _info(declared: Any) -> mi.Type:
    return mi.type_info(declared)


def _constraints(declared: Any) -> mi.Type:
    """The declared type with its constraints (`IntType(ge=1, ...)`), without the description
    and extras msgspec.inspect wraps around it."""
    info = _info(declared)
    return info.type if isinstance(info, mi.Metadata) else info


def _bare(declared: Any) -> Any:
    """The type without its `Annotated[...]` constraints."""
    while typing.get_origin(declared) is Annotated:
        declared = typing.get_args(declared)[0]
    return declared


def _is_union(bare: Any) -> bool:
    return typing.get_origin(bare) in (typing.Union, types.UnionType)


def _is_struct(bare: Any) -> bool:
    return isinstance(bare, type) and issubclass(bare, msgspec.Struct)


def _is_sequence(bare: Any) -> bool:
    return (typing.get_origin(bare) or bare) in (list, tuple, set, frozenset)


def _is_dict(bare: Any) -> bool:
    return (typing.get_origin(bare) or bare) is dict


def _item(bare: Any) -> Any:
    args = typing.get_args(bare)
    return args[0] if args else Any


def _shape_fits(raw: Any, member: Any) -> bool:
    """Whether `raw` is the kind of value `member` takes (a list for a list...), whatever its
    content: the member of a union the user evidently meant."""
    bare = _bare(member)
    if _is_sequence(bare):
        return isinstance(raw, list | tuple)
    if _is_struct(bare) or _is_dict(bare):
        return isinstance(raw, Mapping)
    if bare is str or typing.get_origin(bare) is Literal:
        return isinstance(raw, str)
    if bare is bool:
        return isinstance(raw, bool)
    return isinstance(raw, int | float) and not isinstance(raw, bool)


def _is_secret(info: mi.Type) -> bool:
    return isinstance(info, mi.Metadata) and bool((info.extra or {}).get("secret"))


@cache
def _holds_secret(declared: Any) -> bool:
    """Whether a secret is declared at or anywhere under `declared`."""
    return _secret_under(_info(declared), set())


def _secret_under(info: mi.Type, seen: set[type]) -> bool:
    if _is_secret(info):
        return True
    if isinstance(info, mi.Metadata):
        return _secret_under(info.type, seen)
    if isinstance(info, mi.StructType):
        if info.cls in seen:
            return False
        seen.add(info.cls)
        return any(_secret_under(field.type, seen) for field in info.fields)
    if isinstance(info, mi.UnionType):
        return any(_secret_under(member, seen) for member in info.types)
    if isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return _secret_under(info.item_type, seen)
    if isinstance(info, mi.TupleType):
        return any(_secret_under(item, seen) for item in info.item_types)
    if isinstance(info, mi.DictType):
        return _secret_under(info.key_type, seen) or _secret_under(info.value_type, seen)
    return False


def _steps(key: str | tuple[str | int, ...]) -> tuple[str | int, ...]:
    return (key,) if isinstance(key, str) else key


def _join(key: str, *steps: str | int) -> str:
    """`api` + `tasks`, 1, `id` -> `api.tasks[1].id`."""
    for step in steps:
        if isinstance(step, int):
            key = f"{key}[{step}]"
        elif step:
            key = f"{key}.{step}" if key else step
    return key
