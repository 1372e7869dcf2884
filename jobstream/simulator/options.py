"""The simulator's settings: what it serves, how it answers, and the faults it starts with."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from jobstream.simulator.date_formats import shanghai_now
from jobstream.simulator.rows import RowOptions

# The seed's example task (§8), so the repo's default config crawls the simulator unchanged.
DEFAULT_TASK_ID = "00f3b445-d8ec-44e8-88b2-4b971a228b1e"


@dataclass(frozen=True)
class SimulatorConfig:
    task_ids: tuple[str, ...] = (DEFAULT_TASK_ID,)
    total: int = 5000
    grow_per_minute: float = 0.0
    username: str = "demo"
    password: str = field(default="demo", repr=False)
    # Seconds a token really lives, and what `expires_in` claims (None: the truth). A claim longer
    # than the life imitates a token revoked early: the client only learns from the 401.
    token_ttl: float = 86400.0
    advertised_ttl: float | None = None
    # Old API generation: token fields at the top level, `expires_in` a number.
    legacy_token_shape: bool = False
    # Error messages repeat the credentials or token the request sent, escaped and cut.
    echo_secrets: bool = False
    rows_key: Literal["data", "dataList"] = "data"
    include_offset: bool = True
    rows: RowOptions = field(default_factory=RowOptions)
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    # Requests per second over a leaky bucket that holds `rate_burst_seconds` of them (the docs:
    # about 20/s over 5 s). None turns rate limiting off.
    rate_limit: float | None = 20.0
    rate_burst_seconds: float = 5.0
    # Bytes of served rows' JSON kept for serving again (0: off); see `pagecache`.
    page_cache_bytes: int = 0
    # A file that keeps the rows (see `saved`): started again, the simulator serves the same
    # rows and grows from there. None: the rows live as long as the process.
    state_file: str | None = None
    # Calendar clock (aware datetimes); row dates are relative to its reading when rows appear.
    clock: Callable[[], datetime] = field(default=shanghai_now, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.task_ids:
            raise ValueError("task_ids must name at least one task")
        if self.total < 0:
            raise ValueError(f"total must be >= 0, got {self.total}")
        if self.rows_key not in ("data", "dataList"):
            raise ValueError(f"rows_key must be 'data' or 'dataList', got {self.rows_key!r}")
        if self.token_ttl <= 0:
            raise ValueError(f"token_ttl must be > 0, got {self.token_ttl}")
