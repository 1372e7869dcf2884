"""Every topic and table jobstream uses, declared once: the data flow on one screen.

    Bazhuayu API --crawl--> raw_topic (pages, key task_id)
    raw_topic --apply_pages--> job_data (key job id) + job_rejects, and crawl_progress[task_id]
    commands_topic (start/stop/report, key task_id) --apply_commands--> crawl_progress[task_id]

raw_topic, commands_topic and the table's changelog are co-partitioned by task_id, so one
worker owns a task's crawl, its progress and its control. Their names are fixed here because
agents bind to them at import; the names of the send-only topics come from the config.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.serializers import codecs

from jobstream.app import app
from jobstream.records import Command, Progress, RawPage


class Utf8Json(codecs.Codec):
    """Compact JSON in UTF-8: Chinese text stays readable to any Kafka consumer, at 3 bytes a
    character where Faust's json codec writes 6-byte \\u escapes."""

    def _loads(self, s: bytes) -> Any:
        return json.loads(s)

    def _dumps(self, s: Any) -> bytes:
        return json.dumps(s, ensure_ascii=False, separators=(",", ":")).encode()


codecs.register("utf8json", Utf8Json())

RAW_TOPIC = "job_raw"
COMMANDS_TOPIC = "job_commands"

# internal=True: Faust creates them at start with `topic_partitions` partitions.
raw_topic = app.topic(RAW_TOPIC, key_type=str, value_type=RawPage, internal=True)
commands_topic = app.topic(COMMANDS_TOPIC, key_type=str, value_type=Command, internal=True)
crawl_progress = app.Table("crawl_progress", key_type=str, value_type=Progress, default=None)


def data_topic() -> faust.TopicT:
    """job_data: the output, plain JSON keyed by job id (seed §5.3: 3 partitions)."""
    return _output_topic(app.settings.kafka.topic)


def rejects_topic() -> faust.TopicT:
    """job_rejects: rows that could not be parsed, with the reason and the raw row."""
    return _output_topic(app.settings.kafka.rejects_topic)


@cache
def _output_topic(name: str) -> faust.TopicT:
    # Send-only topics, so their names can come from the config, read when first used.
    return app.topic(
        name, key_type=str, value_serializer="utf8json", partitions=app.settings.kafka.partitions
    )


async def declare_outputs() -> None:
    """Create job_data and job_rejects with their partitions before the first send; a topic
    auto-created by a send would get the broker's default partition count."""
    await data_topic().maybe_declare()
    await rejects_topic().maybe_declare()


def partition_for(task_id: str, partitions: int) -> int:
    """The partition of a task on every co-partitioned topic (Kafka's default partitioner)."""
    return (murmur2(task_id.encode()) & 0x7FFFFFFF) % partitions
