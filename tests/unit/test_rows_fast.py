"""A row read without its description gives the same job, byte for byte, as a row read whole;
rows it cannot give the same for are read whole."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobstream.pipeline import messages
from jobstream.pipeline.messages import page_messages
from jobstream.pipeline.rows import PLACEHOLDER, plain_string, read_for_judging
from jobstream.records import RawPage
from jobstream.transform.outcome import RowContext

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
BASE = {
    "Std_class": "技术",
    "aca112": " 工程师 ",
    "AAB004": "某公司",
    "acb241": 12000,
    "aab302": "北京",
    "aae397": "昨天",
    "Collect_time": "2026-01-15 10:30:00",
    "ACE760": "https://example.com/j/1",
    "Experience": None,
    "extra": {"kept": "only in job_rejects"},
}


def row_json(description: Any, how: str = "utf-8", **fields: Any) -> bytes:
    row = {**BASE, **fields, "acb22a": description}
    if how == "ascii":  # \uXXXX escapes, as many APIs write them
        return json.dumps(row, ensure_ascii=True).encode()
    if how == "slash":  # an escaped slash no encoder writes
        return json.dumps(row, ensure_ascii=False).replace("/", "\\/").encode()
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()


def judged(rows: list[bytes], whole: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    page = RawPage(
        task_id="t",
        source="demo",
        offset=0,
        next_offset=len(rows),
        total=len(rows),
        fetched_at=NOW.isoformat(),
        rows=[msgspec.Raw(r) for r in rows],
    )
    with monkeypatch.context() as patch:
        if whole:
            patch.setattr(messages, "read_for_judging", lambda raw: None)
        out = page_messages(
            page, 0, RowContext(task_id="t", now=NOW, filter_days=7, demo=True), 10**6
        )
    return out.jobs, out.rejects, out.counts


DESCRIPTIONS = [
    "负责后端开发。\n任职要求：本科。",
    "  leading and trailing spaces  ",
    "\u3000全角空格开头",
    "结尾是不间断空格\u00a0",
    'quotes " and \\ backslashes \t tabs',
    "emoji 😀 and \u2028 line separator",
    "\nstarts with a newline",
    "ends with an escaped backslash \\",
    "",
    "control \x01 char",
]


@pytest.mark.parametrize("how", ["utf-8", "ascii", "slash"])
def test_rows_fast_jobs_equal_whole_read_for_every_description(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [row_json(d, how) for d in DESCRIPTIONS]
    assert judged(rows, False, monkeypatch) == judged(rows, True, monkeypatch)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(["utf-8", "ascii", "slash"]))
def test_rows_fast_any_description_same_job_bytes(description: str, how: str) -> None:
    rows = [row_json(description, how)]
    with pytest.MonkeyPatch.context() as patch:
        assert judged(rows, False, patch) == judged(rows, True, patch)


def test_rows_fast_rejected_and_urlless_rows_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        row_json("d", aae397="面议"),  # rejected: job_rejects gets the whole row, extra key too
        row_json("d", ACE760=""),  # the id hashes the description
        row_json({"not": "a string"}),
        row_json(None),
        b'{"aae397": "\xe6\x98\xa8\xe5\xa4\xa9", "acb241": ' + b"9" * 5000 + b"}",
    ]
    fast, whole = judged(rows, False, monkeypatch), judged(rows, True, monkeypatch)
    assert fast == whole
    _, rejects, counts = fast
    assert json.loads(rejects[0][1])["row"]["extra"] == {"kept": "only in job_rejects"}
    assert counts.published == 3 and counts.rejected == 2


def test_read_for_judging_leaves_the_description_as_sent() -> None:
    raw = row_json("原样\n保留")
    fields, text = read_for_judging(raw)  # type: ignore[misc]
    assert text == '"原样\\n保留"'.encode()
    assert fields["acb22a"] == PLACEHOLDER and "extra" not in fields
    # Whitespace to strip, escaped text: the description decoded alone, the rest kept.
    for description, how in ((" 要去掉空格", "utf-8"), ("转义", "ascii")):
        fields, text = read_for_judging(row_json(description, how))  # type: ignore[misc]
        assert text is None and fields["acb22a"] == description and "extra" not in fields
    assert read_for_judging(b"[1]") is None
    assert read_for_judging(b'{"acb241": ' + b"9" * 5000 + b"}") is None


def test_plain_string_only_what_the_encoder_writes_unchanged() -> None:
    for text in ["a", "中文", "", 'q"q', "tab\tin", "é"]:
        encoded = msgspec.json.encode(text)
        assert plain_string(encoded) == (text == text.strip()), text
    assert not plain_string(b'"\\u4e2d"')
    assert not plain_string(b'"a\\/b"')
    assert not plain_string(b"12")
