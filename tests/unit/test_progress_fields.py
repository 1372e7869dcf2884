"""Structs that show Progress's fields without writing them again (progress/fields.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from jobstream.progress.fields import after, showing, shown
from jobstream.records import Progress


def test_showing_row_counts_after_the_class_fields_defaults_where_asked() -> None:
    @showing(row_counts=True, defaults={"duplicates"})
    class Counts(msgspec.Struct, frozen=True):
        """计数"""

        seen: int

    assert Counts.__struct_fields__ == (
        "seen", "published", "filtered", "rejected", "skipped", "future_dated", "duplicates",
    )  # fmt: skip
    assert Counts.__doc__ == "计数" and Counts.__struct_config__.frozen
    progress = Progress(task_id="t", published=2, future_dated=1, duplicates=3)
    counts = Counts(seen=1, **shown(progress, row_counts=True))
    assert (counts.seen, counts.published, counts.future_dated, counts.duplicates) == (1, 2, 1, 3)
    without = msgspec.json.decode(b'{"seen":1,"published":2,"filtered":0,"rejected":0,'
                                  b'"skipped":0,"future_dated":0}', type=Counts)  # fmt: skip
    assert without.duplicates == 0
    with pytest.raises(msgspec.ValidationError, match="published"):
        msgspec.json.decode(b'{"seen":1}', type=Counts)


def test_showing_other_fields_texts_empty_for_none_null_the_rest_as_is() -> None:
    @showing(row_counts=False)
    class View(msgspec.Struct):
        label: str
        figure: Annotated[int, after("status")]

    progress = Progress(task_id="t", last_error="", source="", stuck_since="2026-01-15")
    view = View(label="x", figure=7, **shown(progress, row_counts=False))
    body = msgspec.json.decode(msgspec.json.encode(view))
    assert list(body)[:6] == ["label", "task_id", "total", "current_offset", "status", "figure"]
    assert body["last_error"] is None and body["last_update"] is None
    assert body["source"] == "" and body["stuck_since"] == "2026-01-15"
    assert body["failing_offset"] is None and "published" not in body


def test_showing_refuses_a_place_or_a_default_it_cannot_honour() -> None:
    with pytest.raises(TypeError, match="names no Progress field"):

        @showing(row_counts=False)
        class Misplaced(msgspec.Struct):
            figure: Annotated[int, after("published")]  # a row counter, not in this view

    with pytest.raises(TypeError, match="not among"):
        showing(row_counts=False, defaults={"published"})
