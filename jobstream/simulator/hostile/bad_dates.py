"""Hostile kinds that break the date fields: missing, wrong type, integers, impossible, far off.

Every kind spoils one date field and leaves the other recent, so the field at fault is certain.
"""

import dataclasses
from datetime import date, datetime
from typing import Any

from jobstream.simulator.date_formats import SHANGHAI, Rendered
from jobstream.simulator.hostile.base import COLLECT, PUBLISH, Base, Spoiled, published, rejected
from jobstream.simulator.policy import FILTERED

# Dates no calendar has, each written as the field usually is (a date, or a date and time).
IMPOSSIBLE = ("2026-02-30", "0000-01-01", "99999-01-01")
# Integers that are none of epoch ms (13 digits), epoch s (10) or YYYYMMDD (8).
ODD_INTS = (2026011, 0, 17684496000000)


def _dates(base: Base, value: Any, day: date | None, fmt: str) -> dict[str, Rendered]:
    """The `publish=`/`collect=` override for the field this occurrence spoils."""
    key = "publish" if base.date_field == PUBLISH else "collect"
    return {key: Rendered(value, day, fmt)}


def _spoil_field(base: Base, value: Any, fmt: str) -> Spoiled:
    fields = base.with_fields(**{base.date_field: value})
    return rejected(fields, base.date_field, **_dates(base, value, None, fmt))


def publish_missing(base: Base) -> Spoiled:
    fields = {k: v for k, v in base.fields.items() if k != PUBLISH}
    return rejected(fields, PUBLISH, publish=Rendered(None, None, "hostile_missing"))


def collect_missing(base: Base) -> Spoiled:
    fields = {k: v for k, v in base.fields.items() if k != COLLECT}
    return rejected(fields, COLLECT, collect=Rendered(None, None, "hostile_missing"))


def date_bool(base: Base) -> Spoiled:
    return _spoil_field(base, base.variant((True, False)), "hostile_bool")


def date_list(base: Base) -> Spoiled:
    return _spoil_field(base, [base.collected.date().isoformat()], "hostile_list")


def date_object(base: Base) -> Spoiled:
    return _spoil_field(base, {"date": base.collected.date().isoformat()}, "hostile_object")


def date_float(base: Base) -> Spoiled:
    # Epoch milliseconds written as a float: looks like a timestamp, is the wrong type.
    return _spoil_field(base, base.collected.timestamp() * 1000.0, "hostile_float")


def date_null(base: Base) -> Spoiled:
    return _spoil_field(base, None, "hostile_null")


def date_empty(base: Base) -> Spoiled:
    return _spoil_field(base, "", "hostile_empty")


# An integer date field stands for the collect moment, whichever field carries it.
def date_epoch_ms(base: Base) -> Spoiled:
    value = int(base.collected.timestamp()) * 1000
    return _published_int(base, value, "hostile_epoch_ms")


def date_epoch_s(base: Base) -> Spoiled:
    return _published_int(base, int(base.collected.timestamp()), "hostile_epoch_s")


def date_yyyymmdd(base: Base) -> Spoiled:
    day = base.publish.day if base.date_field == PUBLISH else base.collect.day
    assert day is not None
    return _published_int(base, int(day.strftime("%Y%m%d")), "hostile_yyyymmdd")


def _published_int(base: Base, value: int, fmt: str) -> Spoiled:
    if fmt == "hostile_yyyymmdd":
        day = date(value // 10000, value // 100 % 100, value % 100)
    else:
        seconds = value / 1000 if fmt == "hostile_epoch_ms" else value
        day = datetime.fromtimestamp(seconds, SHANGHAI).date()
    fields = base.with_fields(**{base.date_field: value})
    return published(fields, **_dates(base, value, day, fmt))


def date_int_other(base: Base) -> Spoiled:
    return _spoil_field(base, base.variant(ODD_INTS), "hostile_int")


def date_impossible(base: Base) -> Spoiled:
    value = base.variant(IMPOSSIBLE)
    if base.date_field == COLLECT:
        value += " 10:30:00"
    return _spoil_field(base, value, "hostile_impossible")


def publish_far_future(base: Base) -> Spoiled:
    # No upper bound in the 7-day rule: published, and counted as future-dated.
    value = "2099-01-01"
    fields = base.with_fields(aae397=value)
    return published(fields, publish=Rendered(value, date(2099, 1, 1), "iso_date"))


def far_past(base: Base) -> Spoiled:
    if base.date_field == PUBLISH:
        value = "1999-01-01"
        fields = base.with_fields(aae397=value)
        spoiled = published(fields, publish=Rendered(value, date(1999, 1, 1), "iso_date"))
    else:
        # The publish date becomes absolute: a relative one would hang on a 1970 collect day.
        assert base.publish.day is not None
        day = base.publish.day.isoformat()
        value = "1970-01-01 08:00:00"
        fields = base.with_fields(aae397=day, Collect_time=value)
        spoiled = published(
            fields,
            publish=Rendered(day, base.publish.day, "iso_date"),
            collect=Rendered(value, date(1970, 1, 1), "datetime"),
        )
    return dataclasses.replace(spoiled, expect=FILTERED)
