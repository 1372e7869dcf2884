"""The bytes GET /consume/stream writes: its opening block and `event: job` events, encoded once
per message and written as they are to every client (the shared tail and a stream's own reader
both use this, so the wire format lives here only).

The framing is aiohttp-sse's `send(data, id=..., event="job")`, byte for byte: `\\r\\n` line ends,
an `id:` line, an `event:` line, one `data:` line per line of the message, and a blank line.
Each event's id is the stream's position after the message (`jobstream.web.sse.positions`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from jobstream.web.sse import positions

RETRY_MS = 3000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def opening(at: Mapping[int, int]) -> bytes:
    """The reconnection delay, and the start position as the last event id (a block without
    data sets the id and dispatches nothing)."""
    return f"retry: {RETRY_MS}\r\nid: {positions.encode(at)}\r\n\r\n".encode()


def job_event(value: bytes, event_id: str) -> bytes:
    """One `event: job`; a message that is not UTF-8 is sent with U+FFFD in place of the bad
    bytes, one with line breaks as several `data:` lines (which a client joins with `\\n`)."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        value = value.decode("utf-8", errors="replace").encode("utf-8")
    if b"\r" in value or b"\n" in value:
        lines = _LINE_BREAK.split(value.decode("utf-8"))
        data = b"".join(b"data: " + line.encode("utf-8") + b"\r\n" for line in lines)
    else:
        data = b"data: " + value + b"\r\n"
    return b"id: " + event_id.encode() + b"\r\nevent: job\r\n" + data + b"\r\n"


def job_events(
    batch: Mapping[TopicPartition, list[ConsumerRecord]], at: dict[int, int]
) -> tuple[bytes, int]:
    """The events of one fetch, one partition after another, each in offset order, as one
    chunk, and how many there are; `at` (the position before them) is moved past them."""
    parts = []
    for tp in sorted(batch, key=lambda t: t.partition):
        for record in batch[tp]:
            at[tp.partition] = record.offset + 1
            parts.append(job_event(record.value or b"", positions.encode(at)))
    return b"".join(parts), len(parts)
