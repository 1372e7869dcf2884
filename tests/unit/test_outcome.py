"""classify_row: each source row becomes exactly one of Kept, Filtered or Rejected."""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstream.transform.ids import job_id
from jobstream.transform.outcome import (
    Filtered,
    Kept,
    Rejected,
    RowContext,
    classify_row,
    reject_message,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 1, 15, 10, 30, 0, 123456, tzinfo=SHANGHAI)
CTX = RowContext(task_id="task-1", now=NOW, filter_days=7, demo=False)
ROW = {
    "Std_class": "机动车司机/驾驶",
    "aca112": "保底1万+五险+港内A2驾驶员",
    "AAB004": "青岛唐盛物流有限公司",
    "acb241": "1-1.5万",
    "aab302": "青岛黄岛区",
    "aae397": "1月13日",
    "Collect_time": "2026-01-15 10:30:00",
    "ACE760": "https://www.zhaopin.com/jobdetail/CC123.htm",
    "acb22a": "...",
    "Experience": "5-10年",
    "aac011": "学历不限",
}


def test_classify_row_recent_row_kept_with_exact_job() -> None:
    outcome = classify_row(ROW, 1100, CTX)
    assert isinstance(outcome, Kept) and not outcome.suspicious_future
    assert msgspec.structs.asdict(outcome.job) == {
        "id": job_id(ROW),
        "job_category": "机动车司机/驾驶",
        "job_title": "保底1万+五险+港内A2驾驶员",
        "company": "青岛唐盛物流有限公司",
        "salary": "1-1.5万",
        "location": "青岛黄岛区",
        "publish_date": "2026-01-13",
        "collect_time": "2026-01-15",
        "url": "https://www.zhaopin.com/jobdetail/CC123.htm",
        "description": "...",
        "experience": "5-10年",
        "education": "学历不限",
        "crawl_time": "2026-01-15T10:30:00+08:00",
        "task_id": "task-1",
        "source_offset": 1100,
        "demo": False,
    }


def test_classify_row_demo_context_job_marked_demo() -> None:
    ctx = RowContext(task_id="demo-task", now=NOW, filter_days=7, demo=True)
    outcome = classify_row(ROW, 0, ctx)
    assert isinstance(outcome, Kept)
    assert outcome.job.demo is True
    assert outcome.job.task_id == "demo-task"
    assert outcome.job.source_offset == 0


@pytest.mark.parametrize(
    ("publish", "collect", "kept"),
    [
        ("2026-01-08", "2026-01-08 00:00:00", True),  # today-7
        ("7天前", "2026-01-15 10:00:00", True),
        ("2026-01-07", "2026-01-15 10:00:00", False),  # today-8
        ("8天前", "2026-01-15 10:00:00", False),
        ("今天", "2026-01-07 23:59:59", False),
        ("今天", "2026-01-07T16:00:00Z", True),  # that instant is 2026-01-08 in Shanghai
    ],
)
def test_classify_row_window_boundary_kept_or_filtered(
    publish: str, collect: str, kept: bool
) -> None:
    outcome = classify_row({**ROW, "aae397": publish, "Collect_time": collect}, 5, CTX)
    assert isinstance(outcome, Kept if kept else Filtered)


def test_classify_row_old_publish_filtered_names_publish_date() -> None:
    outcome = classify_row({**ROW, "aae397": "2025-12-01"}, 5, CTX)
    assert outcome == Filtered("publish_date 2025-12-01 before cutoff 2026-01-08")


def test_classify_row_old_collect_filtered_names_collect_time() -> None:
    outcome = classify_row({**ROW, "Collect_time": "2025-12-01 08:00:00"}, 5, CTX)
    assert outcome == Filtered("collect_time 2025-12-01 before cutoff 2026-01-08")


def test_classify_row_month_day_last_year_filtered() -> None:
    outcome = classify_row({**ROW, "aae397": "1月16日"}, 5, CTX)  # tomorrow -> 2025-01-16
    assert outcome == Filtered("publish_date 2025-01-16 before cutoff 2026-01-08")


@pytest.mark.parametrize("row", [None, "a row", 42, ["aae397", "今天"], ("x",)])
def test_classify_row_not_an_object_rejected_field_row(row: object) -> None:
    outcome = classify_row(row, 7, CTX)
    assert isinstance(outcome, Rejected)
    assert outcome.field == "row"
    assert type(row).__name__ in outcome.reason


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"aae397": "面议"}, "aae397", "面议"),
        ({"aae397": ""}, "aae397", "empty"),
        ({"aae397": None}, "aae397", "null"),
        ({"Collect_time": "unknown"}, "Collect_time", "unknown"),
        ({"Collect_time": None}, "Collect_time", "null"),
        ({"aae397": "面议", "Collect_time": "junk"}, "aae397", "面议"),  # the first bad field
    ],
)
def test_classify_row_unparseable_date_rejected_names_field(
    changes: dict[str, object], field: str, fragment: str
) -> None:
    outcome = classify_row({**ROW, **changes}, 7, CTX)
    assert isinstance(outcome, Rejected)
    assert outcome.field == field
    assert outcome.reason.startswith(f"{field}: ")
    assert fragment in outcome.reason


@pytest.mark.parametrize("missing", ["aae397", "Collect_time"])
def test_classify_row_missing_date_field_rejected(missing: str) -> None:
    row = {k: v for k, v in ROW.items() if k != missing}
    assert classify_row(row, 7, CTX) == Rejected(f"{missing} is missing", missing)


@pytest.mark.parametrize(
    ("publish", "collect", "suspicious"),
    [
        ("2026-01-16", "2026-01-15 10:00:00", False),  # tomorrow is tolerated
        ("2026-01-17", "2026-01-15 10:00:00", True),
        ("今天", "2027-01-15 10:00:00", True),
    ],
)
def test_classify_row_future_date_kept_and_flagged(
    publish: str, collect: str, suspicious: bool
) -> None:
    outcome = classify_row({**ROW, "aae397": publish, "Collect_time": collect}, 5, CTX)
    assert isinstance(outcome, Kept)
    assert outcome.suspicious_future is suspicious


def test_classify_row_replayed_later_same_id() -> None:
    row = {k: v for k, v in ROW.items() if k != "ACE760"}  # content-based id
    later = RowContext(task_id="task-1", now=NOW + timedelta(hours=3), filter_days=7, demo=False)
    first, second = classify_row(row, 10, CTX), classify_row(row, 99, later)
    assert isinstance(first, Kept) and isinstance(second, Kept)
    assert first.job.crawl_time != second.job.crawl_time
    assert first.job.id == second.job.id


def test_classify_row_missing_text_fields_empty_strings() -> None:
    outcome = classify_row({"aae397": "今天", "Collect_time": "2026-01-15 10:00:00"}, 0, CTX)
    assert isinstance(outcome, Kept)
    assert outcome.job.job_title == ""
    assert outcome.job.url == ""
    assert all(
        isinstance(v, str)
        for k, v in msgspec.structs.asdict(outcome.job).items()
        if k not in {"source_offset", "demo"}
    )


def test_row_context_naive_now_raises_value_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        RowContext(task_id="t", now=datetime(2026, 1, 15), filter_days=7, demo=False)


def test_row_context_negative_filter_days_raises_value_error() -> None:
    with pytest.raises(ValueError, match="filter_days"):
        RowContext(task_id="t", now=NOW, filter_days=-1, demo=False)


def test_row_context_derived_today_cutoff_crawl_time() -> None:
    assert CTX.today.isoformat() == "2026-01-15"
    assert CTX.oldest.isoformat() == "2026-01-08"
    assert CTX.crawl_time == "2026-01-15T10:30:00+08:00"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
DATE_VALUES = JSON | st.sampled_from(["今天", "3天前", "1月13日", "2026-01-15 10:30:00", "面议"])


@given(
    row=st.dictionaries(st.sampled_from([*ROW, "other"]), JSON, max_size=12),
    publish=DATE_VALUES,
    collect=DATE_VALUES,
    offset=st.integers(0, 10**9),
)
def test_classify_row_any_json_row_property_exactly_one_outcome(
    row: dict[str, object], publish: object, collect: object, offset: int
) -> None:
    outcome = classify_row({**row, "aae397": publish, "Collect_time": collect}, offset, CTX)
    assert isinstance(outcome, Kept | Filtered | Rejected)
    if isinstance(outcome, Kept):
        assert outcome.job.source_offset == offset
        assert all(
            isinstance(v, str)
            for k, v in msgspec.structs.asdict(outcome.job).items()
            if k not in {"source_offset", "demo"}
        )


@given(row=JSON)
def test_classify_row_any_json_value_property_never_raises(row: object) -> None:
    assert isinstance(classify_row(row, 0, CTX), Kept | Filtered | Rejected)


def test_reject_message_keeps_the_raw_row_and_says_why() -> None:
    row = {"aae397": "面议", "Collect_time": "2026-01-15 10:30:00", "aca112": "司机"}
    outcome = classify_row(row, 42, CTX)
    assert isinstance(outcome, Rejected)
    message = json.loads(msgspec.json.encode(reject_message(row, 42, outcome, CTX)))
    assert message == {
        "task_id": "task-1",
        "source_offset": 42,
        "field": "aae397",
        "reason": outcome.reason,
        "row": row,
        "row_excerpt": "",
        "crawl_time": CTX.crawl_time,
    }
    assert "面议" in outcome.reason
