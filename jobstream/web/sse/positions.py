"""SSE event ids: the position of a GET /consume/stream client in every partition of job_data.

An id lists, for each partition, the offset of the next message the client has not seen:
`0:1520,1:1498,2:1533`. A client that reconnects with it as `Last-Event-ID` resumes exactly
there. Partitions an id does not name (added since) are read from their beginning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ENTRY = re.compile(r"([0-9]{1,5}):([0-9]{1,19})")
MAX_OFFSET = 2**63 - 1
MAX_LENGTH = 4096


def encode(positions: Mapping[int, int]) -> str:
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(positions.items()))


def decode(text: str, partitions: int) -> dict[int, int]:
    """Parse an id for a topic of `partitions` partitions; ValueError says what is wrong."""
    if len(text) > MAX_LENGTH:
        raise ValueError(f"longer than {MAX_LENGTH} characters")
    positions: dict[int, int] = {}
    for entry in text.split(","):
        match = _ENTRY.fullmatch(entry.strip())
        if match is None:
            raise ValueError(f"expected partition:offset pairs like 0:15,1:0, got {entry!r:.40}")
        partition, offset = int(match[1]), int(match[2])
        if partition >= partitions:
            raise ValueError(f"partition {partition} does not exist (job_data has {partitions})")
        if offset > MAX_OFFSET:
            raise ValueError(f"offset {offset} is out of range")
        if partition in positions:
            raise ValueError(f"partition {partition} is given twice")
        positions[partition] = offset
    return positions
