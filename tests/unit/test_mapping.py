"""Field map (seed §6.1) and the job message (seed §6.2)."""

import json
from datetime import date

import msgspec
import pytest

from jobstream.transform.mapping import (
    DATE_FIELDS,
    FIELD_MAP,
    build_job,
    map_text_fields,
    text_value,
)

FULL_ROW = {
    "Std_class": "机动车司机/驾驶",
    "aca112": " 保底1万+五险+港内A2驾驶员 ",
    "AAB004": "青岛唐盛物流有限公司",
    "acb241": "1-1.5万",
    "aab302": "青岛黄岛区",
    "aae397": "1月13日",
    "Collect_time": "2026-01-15 10:30:00",
    "ACE760": "https://www.zhaopin.com/jobdetail/CC123.htm",
    "acb22a": "岗位职责：\n1. 港内运输\n2. 安全驾驶\n",
    "Experience": "5-10年",
    "aac011": "学历不限",
    "extra_key": "ignored",
}


def test_field_map_seed_table_exact_in_message_order() -> None:
    # Derived from Job's declaration: the seed's table, in the order of the message.
    assert list(FIELD_MAP.items()) == [
        ("Std_class", "job_category"),
        ("aca112", "job_title"),
        ("AAB004", "company"),
        ("acb241", "salary"),
        ("aab302", "location"),
        ("aae397", "publish_date"),
        ("Collect_time", "collect_time"),
        ("ACE760", "url"),
        ("acb22a", "description"),
        ("Experience", "experience"),
        ("aac011", "education"),
    ]
    assert DATE_FIELDS == ("aae397", "Collect_time")


def test_map_text_fields_full_row_every_field_exact() -> None:
    assert map_text_fields(FULL_ROW) == {
        "job_category": "机动车司机/驾驶",
        "job_title": "保底1万+五险+港内A2驾驶员",
        "company": "青岛唐盛物流有限公司",
        "salary": "1-1.5万",
        "location": "青岛黄岛区",
        "url": "https://www.zhaopin.com/jobdetail/CC123.htm",
        "description": "岗位职责：\n1. 港内运输\n2. 安全驾驶",
        "experience": "5-10年",
        "education": "学历不限",
    }


def test_map_text_fields_missing_and_null_empty_strings() -> None:
    mapped = map_text_fields({"aca112": None, "AAB004": "  "})
    assert mapped == dict.fromkeys(mapped, "")
    assert len(mapped) == 9


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("", ""),
        ("  司机\u3000", "司机"),
        ("\xa0司机\n", "司机"),
        ("第一行\n第二行", "第一行\n第二行"),
        (8000, "8000"),
        (1.5, "1.5"),
        (True, "true"),
        (["五险", "一金"], '["五险","一金"]'),
        ({"min": 1}, '{"min":1}'),
    ],
)
def test_text_value_any_json_value_string(value: object, expected: str) -> None:
    assert text_value(value) == expected


def test_build_job_full_row_exact_message() -> None:
    job = build_job(
        job_id="7f0c0a52-0000-5000-8000-000000000000",
        text=map_text_fields(FULL_ROW),
        publish=date(2026, 1, 13),
        collect=date(2026, 1, 15),
        crawl_time="2026-01-15T10:30:00+08:00",
        task_id="task-1",
        source_offset=1100,
        demo=True,
    )
    message = json.loads(msgspec.json.encode(job))  # what a job_data consumer reads
    assert message == {
        "id": "7f0c0a52-0000-5000-8000-000000000000",
        "job_category": "机动车司机/驾驶",
        "job_title": "保底1万+五险+港内A2驾驶员",
        "company": "青岛唐盛物流有限公司",
        "salary": "1-1.5万",
        "location": "青岛黄岛区",
        "publish_date": "2026-01-13",
        "collect_time": "2026-01-15",
        "url": "https://www.zhaopin.com/jobdetail/CC123.htm",
        "description": "岗位职责：\n1. 港内运输\n2. 安全驾驶",
        "experience": "5-10年",
        "education": "学历不限",
        "crawl_time": "2026-01-15T10:30:00+08:00",
        "task_id": "task-1",
        "source_offset": 1100,
        "demo": True,
    }
    # seed §6.2's order first, the additions after
    assert list(message) == [
        "id",
        "job_category",
        "job_title",
        "company",
        "salary",
        "location",
        "publish_date",
        "collect_time",
        "url",
        "description",
        "experience",
        "education",
        "crawl_time",
        "task_id",
        "source_offset",
        "demo",
    ]


def test_build_job_encodes_to_the_exact_job_data_bytes() -> None:
    """The bytes a job_data consumer receives, escapes and separators included."""
    job = build_job(
        job_id="7f0c0a52-0000-5000-8000-000000000000",
        text=map_text_fields({**FULL_ROW, "acb241": 8000, "aac011": None}),
        publish=date(2026, 1, 13),
        collect=date(2026, 1, 15),
        crawl_time="2026-01-15T10:30:00+08:00",
        task_id="task-1",
        source_offset=1100,
        demo=False,
    )
    expected = (
        '{"id":"7f0c0a52-0000-5000-8000-000000000000","job_category":"机动车司机/驾驶",'
        '"job_title":"保底1万+五险+港内A2驾驶员","company":"青岛唐盛物流有限公司",'
        '"salary":"8000","location":"青岛黄岛区","publish_date":"2026-01-13",'
        '"collect_time":"2026-01-15","url":"https://www.zhaopin.com/jobdetail/CC123.htm",'
        '"description":"岗位职责：\\n1. 港内运输\\n2. 安全驾驶","experience":"5-10年",'
        '"education":"","crawl_time":"2026-01-15T10:30:00+08:00","task_id":"task-1",'
        '"source_offset":1100,"demo":false}'
    )
    assert msgspec.json.encode(job) == expected.encode()
