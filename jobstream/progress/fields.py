"""Progress's fields as read from their one declaration (`records.Progress`), for what derives
from it: the SQLite mirror's columns and the Structs that show progress (the /status body)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar, get_args, get_origin

import msgspec
import msgspec.inspect as mi

from jobstream.records import Progress

__all__ = ["FIELDS", "ProgressField", "after", "showing", "shown"]


@dataclass(frozen=True)
class ProgressField:
    """One field of Progress and what its declaration says about it."""

    name: str
    annotation: Any  # as declared, description included: what a Struct showing it declares
    type: mi.Type  # msgspec's reading of the type, without its metadata
    default: Any  # msgspec.NODEFAULT when the field is required
    row_count: bool  # counts source rows by what became of them: /status shows it under `rows`
    empty_is_none: bool  # "" stands for none (never, no error yet): shown as null


def _read() -> tuple[ProgressField, ...]:
    annotations = {field.name: field.type for field in msgspec.structs.fields(Progress)}
    info = mi.type_info(Progress)
    assert isinstance(info, mi.StructType)
    fields = []
    for field in info.fields:
        kind, extra = field.type, {}
        if isinstance(field.type, mi.Metadata):
            kind, extra = field.type.type, field.type.extra or {}
        fields.append(
            ProgressField(
                name=field.name,
                annotation=annotations[field.name],
                type=kind,
                default=field.default,
                row_count=bool(extra.get("row_count")),
                empty_is_none=bool(extra.get("empty_is_none")),
            )
        )
    return tuple(fields)


FIELDS: Final = _read()


def shown(progress: Progress, *, row_counts: bool) -> dict[str, Any]:
    """Progress's row counters (or all its other fields) by name, as a Struct made by `showing`
    holds them: an empty text that stands for none is None."""
    values = {}
    for field in FIELDS:
        if field.row_count == row_counts:
            value = getattr(progress, field.name)
            values[field.name] = (value or None) if field.empty_is_none else value
    return values


def after(name: str) -> msgspec.Meta:
    """Marks a field of a class decorated by `showing`: it comes right after Progress's `name`."""
    return msgspec.Meta(extra={"after": name})


StructType = TypeVar("StructType", bound=type[msgspec.Struct])


def showing(
    *, row_counts: bool, defaults: Collection[str] = ()
) -> Callable[[StructType], StructType]:
    """The decorated Struct with Progress's row counters (or all its other fields) among its own
    fields: one Struct of the same name, docstring and options, so that its JSON and its JSON
    Schema are what a hand-written one would give, without writing Progress's fields again.

    Progress's fields keep their order, type and description; a text that is "" for none is
    `str | None` (fill them with `shown`). Each of the class's own fields follows the one before
    it, or Progress's field `name` when annotated `after(name)`; the Progress fields not placed
    by then come last. A Progress field is required unless named in `defaults`, which take
    Progress's default.

    The class as written is what mypy sees (its own fields, checked); Progress's fields are
    reached by name, with `shown`.
    """
    copied = [field for field in FIELDS if field.row_count == row_counts]
    unknown = set(defaults) - {field.name for field in copied}
    if unknown:
        raise TypeError(f"not among the Progress fields shown: {sorted(unknown)}")

    def derive(template: StructType) -> StructType:
        pending = list(copied)
        merged: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        info = mi.type_info(template)
        assert isinstance(info, mi.StructType)
        for field, declared in zip(info.fields, msgspec.structs.fields(template), strict=True):
            extra = field.type.extra if isinstance(field.type, mi.Metadata) else None
            anchor = (extra or {}).get("after")
            if anchor is not None:
                names = [p.name for p in pending]
                if anchor not in names:
                    raise TypeError(
                        f"{template.__name__}.{field.name}: after({anchor!r}) names no Progress "
                        "field left to place"
                    )
                placed = names.index(anchor) + 1
                merged += [_copy(p, p.name in defaults) for p in pending[:placed]]
                del pending[:placed]
            merged.append(_own(declared))
        merged += [_copy(p, p.name in defaults) for p in pending]
        config = template.__struct_config__
        derived = msgspec.defstruct(
            template.__name__,
            merged,
            module=template.__module__,
            namespace={"__doc__": template.__doc__, "__qualname__": template.__qualname__},
            **{option: getattr(config, option) for option in _OPTIONS},
        )
        return derived  # type: ignore[return-value]  # a Struct, as the template is

    return derive


# The template's options the derived Struct keeps (tags and the like are not supported).
_OPTIONS: Final = (
    "frozen",
    "eq",
    "order",
    "array_like",
    "omit_defaults",
    "forbid_unknown_fields",
    "repr_omit_defaults",
)


def _own(field: msgspec.structs.FieldInfo) -> tuple[str, Any] | tuple[str, Any, Any]:
    if field.default_factory is not msgspec.NODEFAULT:
        return (field.name, field.type, msgspec.field(default_factory=field.default_factory))
    if field.default is not msgspec.NODEFAULT:
        return (field.name, field.type, field.default)
    return (field.name, field.type)


def _copy(field: ProgressField, with_default: bool) -> tuple[str, Any] | tuple[str, Any, Any]:
    annotation = _or_none(field.annotation) if field.empty_is_none else field.annotation
    return (field.name, annotation, field.default) if with_default else (field.name, annotation)


def _or_none(annotation: Any) -> Any:
    """`annotation` (str, perhaps Annotated with its description) with None allowed."""
    if get_origin(annotation) is Annotated:
        kind, *metadata = get_args(annotation)
        return Annotated[(kind | None, *metadata)]
    return annotation | None
