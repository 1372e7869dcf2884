"""Hostile kinds that break the row's shape: not an object, too big, too deep, odd keys."""

import json

from jobstream.simulator import descriptions
from jobstream.simulator.date_formats import Rendered
from jobstream.simulator.hostile.base import (
    Base,
    Spoiled,
    marker,
    published,
    rejected,
    spliced_json,
)
from jobstream.simulator.page_bytes import RawRow
from jobstream.simulator.policy import PUBLISHED

# A row above Kafka's default 1 MiB message limit, and one well below it (UTF-8 bytes).
OVERSIZED_BYTES = 1_200_000
LARGE_BYTES = 200_000
NESTING_DEPTH = 5000
EXTRA_KEYS = 500


def _not_object(value: object) -> Spoiled:
    # No object, no fields: neither date exists.
    none = Rendered(None, None, "hostile_not_object")
    return rejected(value, publish=none, collect=none)


def not_object_string(base: Base) -> Spoiled:
    return _not_object("该职位已下线")


def not_object_number(base: Base) -> Spoiled:
    return _not_object(base.variant((42, -1.5)))


def not_object_array(base: Base) -> Spoiled:
    # The row wrapped in a list: a reader that unwraps would wrongly accept it.
    return _not_object([base.fields])


def not_object_null(base: Base) -> Spoiled:
    return _not_object(None)


def not_object_bool(base: Base) -> Spoiled:
    return _not_object(base.variant((True, False)))


def _description_of(base: Base, size: int) -> str:
    """A realistic description repeated to at least `size` UTF-8 bytes."""
    unit = descriptions.long(base.rng, 1000)
    return unit * -(-size // len(unit.encode()))


def description_1_2mb(base: Base) -> Spoiled:
    return rejected(base.with_fields(acb22a=_description_of(base, OVERSIZED_BYTES)))


def description_200kb(base: Base) -> Spoiled:
    return published(base.with_fields(acb22a=_description_of(base, LARGE_BYTES)))


def deep_nesting(base: Base) -> Spoiled:
    # Python's json gives up with RecursionError, so the whole page fails to parse; narrowed
    # down to this row alone, the pipeline rejects it.
    fields = base.with_fields(附加信息=marker(0))
    nested = b"[" * NESTING_DEPTH + b"]" * NESTING_DEPTH
    return rejected(spliced_json(fields, {f'"{marker(0)}"': nested}))


def extra_keys_500(base: Base) -> Spoiled:
    extra = {f"扩展字段_{i:03d}": _extra_value(i) for i in range(EXTRA_KEYS)}
    return published({**base.fields, **extra})


def _extra_value(i: int) -> object:
    return (f"值{i}", i, None, "", [i], {"n": i})[i % 6]


def duplicate_keys(base: Base) -> Spoiled:
    # Earlier copies of aca112 and aae397 that the later ones override: the last key wins.
    decoys = {"aca112": "临时工(已招满)", "aae397": "面议"}
    body = json.dumps(base.fields, ensure_ascii=False).encode()
    prefix = json.dumps(decoys, ensure_ascii=False).encode()[1:-1] + b", "
    return Spoiled(RawRow(b"{" + prefix + body[1:]), PUBLISHED, meaning=base.fields)
