"""Configuration: the YAML file (seed §8), environment overrides, and validation that names the key.

Loading does I/O, so nothing here runs at import: `load()` is called when the Faust app is
first configured (see `jobstream.app`).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jobstream.errors import ConfigError

DEFAULT_PATH = Path("config/config.yml")
EMBEDDED = "embedded"
DEMO = "demo"
# Values copied from the seed's example file mean "not filled in", not real credentials.
_PLACEHOLDERS = {"", "your_username", "your_password"}


@dataclass(frozen=True)
class AppSection:
    name: str = "jobstream"
    version: str = "1.0.0"
    debug: bool = False
    web_port: int = 8000
    # Protects POST /crawl/start and /crawl/stop when set.
    admin_token: str = field(default="", repr=False)
    # Open GET /consume/stream connections this worker serves at once; more get 503.
    max_streams: int = 100
    # Seconds between heartbeat comments on an idle SSE stream (at most 15).
    sse_heartbeat: float = 15.0
    # Distinct `group` values GET /consume keeps a consumer for; idle ones are closed.
    max_consumer_groups: int = 16


@dataclass(frozen=True)
class ApiSection:
    base_url: str = DEMO
    task_id: str | list[str] = "00f3b445-d8ec-44e8-88b2-4b971a228b1e"
    username: str = ""
    password: str = field(default="", repr=False)
    batch_size: int = 100
    request_timeout: float = 30.0
    max_retries: int = 3
    # Pause between page requests; the API allows about 20 requests/s.
    min_interval: float = 0.05
    # One account's rate, shared by every task and every page in flight (0: no limit). The
    # limiter spaces request starts by max(min_interval, 1 / max_requests_per_second).
    max_requests_per_second: float = 20.0
    # Pages one task requests ahead of the one it is applying, concurrently.
    max_pages_in_flight: int = 8

    @property
    def task_ids(self) -> tuple[str, ...]:
        return (self.task_id,) if isinstance(self.task_id, str) else tuple(self.task_id)

    @property
    def is_demo(self) -> bool:
        return self.base_url == DEMO

    @property
    def source(self) -> str:
        """The API that task offsets refer to: "demo" or the base URL."""
        return self.base_url.rstrip("/")


@dataclass(frozen=True)
class KafkaSection:
    bootstrap_servers: str = EMBEDDED
    topic: str = "job_data"
    consumer_group: str = "job_consumer_group"
    partitions: int = 3
    raw_topic: str = "job_raw"
    rejects_topic: str = "job_rejects"
    commands_topic: str = "job_commands"
    embedded_port: int = 9092
    # Longest an HTTP request waits on the broker (group join, offsets) before a 503.
    http_timeout: float = 10.0
    # Largest message jobstream sends (a job, a reject, a slice of an API page on job_raw);
    # keep it at or below the broker's message.max.bytes (Kafka's default is about 1 MB).
    max_message_bytes: int = 1_000_000
    # Producer batching: how long a batch waits to fill, and its size (at most max_message_bytes).
    linger_ms: float = 10.0
    batch_bytes: int = 1_000_000
    # Longest a fetch waits for data; the embedded broker answers only when it elapses.
    fetch_max_wait_ms: int = 50

    @property
    def is_embedded(self) -> bool:
        return self.bootstrap_servers == EMBEDDED


@dataclass(frozen=True)
class CrawlerSection:
    interval: float = 300.0
    filter_days: int = 7
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class DatabaseSection:
    path: str = "data/crawl_progress.db"


@dataclass(frozen=True)
class Config:
    app: AppSection = field(default_factory=AppSection)
    api: ApiSection = field(default_factory=ApiSection)
    kafka: KafkaSection = field(default_factory=KafkaSection)
    crawler: CrawlerSection = field(default_factory=CrawlerSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.crawler.timezone)


# Environment variable -> (section, key). Faust's own names (WEB_PORT, ...) are read by Faust.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "API_BASE_URL": ("api", "base_url"),
    "API_TASK_ID": ("api", "task_id"),
    "API_USERNAME": ("api", "username"),
    "API_PASSWORD": ("api", "password"),
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "ADMIN_TOKEN": ("app", "admin_token"),
    "DATABASE_PATH": ("database", "path"),
}


def load(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read, override from the environment, and validate. Raises ConfigError naming the key."""
    env = os.environ if env is None else env
    path = Path(path or env.get("CONFIG_PATH") or DEFAULT_PATH)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"CONFIG_PATH: cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    for name, (section, key) in ENV_OVERRIDES.items():
        value = env.get(name)
        if value:
            section_values = raw.setdefault(section, {})
            if not isinstance(section_values, dict):
                raise ConfigError(f"{section}: must be a mapping")
            section_values[key] = value
    return from_mapping(raw)


def from_mapping(raw: Mapping[str, Any]) -> Config:
    sections = {}
    hints = typing.get_type_hints(Config)
    for name, value in raw.items():
        if name not in hints:
            raise ConfigError(f"{name}: unknown section (expected one of {', '.join(hints)})")
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: must be a mapping")
        sections[name] = _build_section(name, hints[name], value)
    config = Config(**sections)
    _check(config)
    return config


def _build_section(section: str, cls: type, values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"{section}.{key}: unknown key")
        kwargs[key] = _coerce(f"{section}.{key}", hints[key], value)
    return cls(**kwargs)


def _coerce(key: str, hint: Any, value: Any) -> Any:
    """Accept a value of the declared type; strings from the environment are converted."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if typing.get_origin(option) is list:
            if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
                return value
            continue
        if option is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                return value.lower() == "true"
            continue
        if option in (int, float):
            if isinstance(value, bool):
                continue
            if isinstance(value, int) or (option is float and isinstance(value, float)):
                return option(value)
            if isinstance(value, str):
                try:
                    return option(value)
                except ValueError:
                    continue
            continue
        if option is str and isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    expected = " or ".join(_type_name(o) for o in options)
    raise ConfigError(f"{key}: expected {expected}, got {value!r:.60}")


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is list:
        return "a non-empty list of strings"
    return getattr(hint, "__name__", str(hint))


def _check(config: Config) -> None:
    api, kafka, crawler = config.api, config.kafka, config.crawler
    if not 1 <= api.batch_size <= 1000:
        raise ConfigError(f"api.batch_size: must be between 1 and 1000, got {api.batch_size}")
    if not api.task_ids or any(not t.strip() for t in api.task_ids):
        raise ConfigError("api.task_id: must not be empty")
    if not api.is_demo:
        if not api.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"api.base_url: expected 'demo' or an http(s) URL, got {api.base_url!r}"
            )
        if api.username in _PLACEHOLDERS or api.password in _PLACEHOLDERS:
            raise ConfigError(
                "api.username/api.password: required for the real API "
                "(set API_USERNAME and API_PASSWORD, or use api.base_url: demo)"
            )
    if api.request_timeout <= 0:
        raise ConfigError("api.request_timeout: must be positive")
    if not 0 <= api.max_retries <= 10:
        raise ConfigError("api.max_retries: must be between 0 and 10")
    if api.min_interval < 0:
        raise ConfigError("api.min_interval: must not be negative")
    if not 0 <= api.max_requests_per_second <= 10_000:
        raise ConfigError("api.max_requests_per_second: must be between 0 (no limit) and 10000")
    if not 1 <= api.max_pages_in_flight <= 64:
        raise ConfigError("api.max_pages_in_flight: must be between 1 and 64")
    if not kafka.bootstrap_servers.strip():
        raise ConfigError("kafka.bootstrap_servers: must be 'embedded' or host:port[,host:port]")
    if not 1 <= kafka.partitions <= 256:
        raise ConfigError("kafka.partitions: must be between 1 and 256")
    if not 1 <= kafka.embedded_port <= 65535:
        raise ConfigError("kafka.embedded_port: must be a TCP port")
    for key in ("topic", "consumer_group", "raw_topic", "rejects_topic", "commands_topic"):
        if not getattr(kafka, key).strip():
            raise ConfigError(f"kafka.{key}: must not be empty")
    if crawler.interval < 1:
        raise ConfigError("crawler.interval: must be at least 1 second")
    if not 1 <= crawler.filter_days <= 3650:
        raise ConfigError("crawler.filter_days: must be between 1 and 3650")
    try:
        zoneinfo.ZoneInfo(crawler.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"crawler.timezone: unknown time zone {crawler.timezone!r}") from None
    if not config.database.path.strip():
        raise ConfigError("database.path: must not be empty")
    if not 1 <= config.app.web_port <= 65535:
        raise ConfigError("app.web_port: must be a TCP port")
    if not 1 <= config.app.max_streams <= 10_000:
        raise ConfigError("app.max_streams: must be between 1 and 10000")
    if not 1 <= config.app.sse_heartbeat <= 15:
        raise ConfigError("app.sse_heartbeat: must be between 1 and 15 seconds")
    if not 1 <= config.app.max_consumer_groups <= 1000:
        raise ConfigError("app.max_consumer_groups: must be between 1 and 1000")
    if not 100_000 <= kafka.max_message_bytes <= 100_000_000:
        raise ConfigError("kafka.max_message_bytes: must be between 100000 and 100000000")
    if not 0 <= kafka.linger_ms <= 1000:
        raise ConfigError("kafka.linger_ms: must be between 0 and 1000")
    if not 16_384 <= kafka.batch_bytes <= 100_000_000:
        raise ConfigError("kafka.batch_bytes: must be between 16384 and 100000000")
    if not 1 <= kafka.fetch_max_wait_ms <= 10_000:
        raise ConfigError("kafka.fetch_max_wait_ms: must be between 1 and 10000")
    if not 0.5 <= kafka.http_timeout <= 120:
        raise ConfigError("kafka.http_timeout: must be between 0.5 and 120 seconds")


def describe(config: Config) -> dict[str, Any]:
    """The configuration as a dict with secrets masked, for logs and /status."""
    out = dataclasses.asdict(config)
    for section, key in (("api", "password"), ("app", "admin_token")):
        if out[section][key]:
            out[section][key] = "***"
    return out
