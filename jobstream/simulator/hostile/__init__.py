"""Hostile rows: which rows of a task are replaced, by which kind, and the kinds themselves.

A share `ratio` of rows is hostile, spread evenly: row i is hostile when floor((i + phase) * ratio)
steps up at i, and the step's number picks the kind, cycling through `KINDS`. So any run of rows
holds every kind about equally often (2,000 rows at 0.05: each of the 37 kinds 2 or 3 times), and
the choice is a pure function of (seed, task, index, ratio), like everything else about a row.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from jobstream.simulator.hostile import bad_dates, encoding, shapes, text
from jobstream.simulator.hostile.base import Base, Spoiled
from jobstream.simulator.seeding import stable_int

__all__ = ["KINDS", "Base", "Spoiled", "Spot", "spoil", "spot"]

Kind = Callable[[Base], Spoiled]

# Cycle order: neighbours differ in what they break, so a short run still mixes failures.
_KINDS: dict[str, Kind] = {
    kind.__name__: kind
    for kind in (
        shapes.not_object_string,
        bad_dates.publish_missing,
        text.text_padded,
        encoding.lone_surrogate,
        bad_dates.date_bool,
        shapes.description_200kb,
        text.text_null_missing,
        shapes.not_object_number,
        bad_dates.collect_missing,
        encoding.invalid_utf8,
        bad_dates.date_list,
        text.text_numbers,
        shapes.deep_nesting,
        bad_dates.date_object,
        text.text_bools,
        shapes.not_object_array,
        bad_dates.date_float,
        encoding.huge_int,
        text.text_containers,
        bad_dates.date_null,
        shapes.extra_keys_500,
        shapes.not_object_null,
        bad_dates.date_empty,
        encoding.text_nan,
        text.html,
        bad_dates.date_epoch_ms,
        shapes.description_1_2mb,
        shapes.not_object_bool,
        bad_dates.date_epoch_s,
        text.control_chars,
        bad_dates.date_yyyymmdd,
        shapes.duplicate_keys,
        bad_dates.date_int_other,
        text.invisible_and_emoji,
        bad_dates.date_impossible,
        bad_dates.publish_far_future,
        bad_dates.far_past,
    )
}
KINDS: tuple[str, ...] = tuple(_KINDS)


@dataclass(frozen=True)
class Spot:
    """A hostile row's kind, and how many rows of that kind come before it in the cycle."""

    kind: str
    occurrence: int


def spot(ratio: float, seed: int, task_id: str, index: int) -> Spot | None:
    """The hostile kind of row `index`, or None for a normal row."""
    if ratio <= 0:
        return None
    phase = stable_int(seed, task_id, "hostile") % 1_000_003
    step = math.floor((index + phase) * ratio)
    if math.floor((index + 1 + phase) * ratio) == step:
        return None
    return Spot(KINDS[step % len(KINDS)], step // len(KINDS))


def spoil(kind: str, base: Base) -> Spoiled:
    return _KINDS[kind](base)
