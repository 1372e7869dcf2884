"""Configuration: the YAML file, environment overrides, and one typed schema.

Each section is declared once, as a msgspec Struct with its constraints on the fields; `load()`
reads the file, applies the environment and converts the result. A value that does not fit is
explained, from these declarations, by `jobstream.config_problems`: one line naming the key.
Loading does I/O, so nothing here runs at import: `load()` is called when the Faust app is first
configured (see `jobstream.app`).
"""

from __future__ import annotations

import math
import os
import zoneinfo
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import msgspec.inspect as mi
import yaml

from jobstream.alerts.settings import AlertSettings
from jobstream.config_problems import InvalidSetting, Problem, first_problem
from jobstream.errors import ConfigError

DEFAULT_PATH = Path("config/config.yml")
EMBEDDED = "embedded"
DEMO = "demo"
# The seed's example task: crawled when the config names no task at all.
DEFAULT_TASK_ID = "00f3b445-d8ec-44e8-88b2-4b971a228b1e"
# The account of api.base_url, api.username and api.password: every task's unless it names
# another one of `api.accounts`.
DEFAULT_ACCOUNT = "default"
T = TypeVar("T")
# Values copied from the seed's example file mean "not filled in", not real credentials.
PLACEHOLDERS = frozenset({"", "your_username", "your_password"})

# Field types with their constraints; the message for a bad value is worded from them.
Secret = Annotated[str, msgspec.Meta(extra={"secret": True})]
NonBlank = Annotated[str, msgspec.Meta(pattern=r"\S", description="must not be empty")]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
TaskIds = Annotated[list[NonBlank], msgspec.Meta(min_length=1)]
BaseUrl = Annotated[
    str,
    msgspec.Meta(pattern=r"^(demo|https?://\S+)$", description="expected 'demo' or an http(s) URL"),
]
# An account's name is part of the environment variables that override its credentials.
AccountName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$",
        description="must be a letter then up to 39 letters, digits or '_' (it names the "
        "account's environment variables)",
    ),
]
PerSecond = Annotated[float, msgspec.Meta(ge=0, le=10_000)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]


def _between(low: float, high: float) -> Any:
    return msgspec.Meta(ge=low, le=high)


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A config section: immutable, unknown keys refused, secrets kept out of its repr."""

    def __repr__(self) -> str:
        secret = _secret_fields(type(self))
        shown = (
            f"{name}={'***' if name in secret else repr(getattr(self, name))}"
            for name in self.__struct_fields__
        )
        return f"{type(self).__name__}({', '.join(shown)})"


class AppSection(Section, frozen=True):
    # The Faust app id: Kafka's consumer group of the workers and the prefix of their tables'
    # changelog topics. Every worker of one deployment shares it; deployments on one Kafka
    # differ by it.
    name: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^[A-Za-z0-9._-]{1,100}$",
            description="must be 1 to 100 letters, digits, '.', '_' or '-' (it names Kafka groups "
            "and topics)",
        ),
    ] = "jobstream"
    version: str = "1.0.0"
    debug: bool = False
    web_port: Port = 8000
    # Protects POST /crawl/start and /crawl/stop when set.
    admin_token: Secret = ""
    # Protects the data (GET /consume, /consume/stream, /status) when set; the admin token
    # is accepted there too.
    read_token: Secret = ""
    # Open GET /consume/stream connections this worker serves at once; more get 503.
    max_streams: Annotated[int, _between(1, 10_000)] = 100
    # Seconds between heartbeat comments on an idle SSE stream (at most 15).
    sse_heartbeat: Annotated[float, _between(1, 15)] = 15.0
    # Distinct `group` values GET /consume keeps a consumer for; idle ones are closed.
    max_consumer_groups: Annotated[int, _between(1, 1000)] = 16
    # Seconds after its stop began that the worker exits by itself (code 1) when Faust's
    # shutdown still waits on an unreachable broker; below Docker's 10 s stop timeout.
    stop_deadline: Annotated[float, _between(1, 300)] = 8.0


class TaskSettings(Section, frozen=True):
    """An entry of `api.tasks`: a task, and what it sets differently from `api.batch_size`
    and `crawler.interval`."""

    id: NonBlank
    name: str = ""
    batch_size: Annotated[int, _between(1, 1000)] | None = None
    interval: Annotated[float, msgspec.Meta(ge=1)] | None = None
    enabled: bool = True
    # The entry of `api.accounts` the task belongs to; unset: the default account (api's own
    # base_url, username and password).
    account: AccountName | None = None


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """A task's effective settings: its entry in `api.tasks`, the defaults filled in."""

    id: str
    name: str  # the configured name, or the id
    batch_size: int
    interval: float
    enabled: bool
    account: str = DEFAULT_ACCOUNT


def source_of_url(base_url: str) -> str:
    """What progress records as the API its offsets refer to: "demo" or the base URL."""
    return base_url.rstrip("/")


class AccountSettings(Section, frozen=True):
    """An entry of `api.accounts`: another Bazhuayu account, with its own credentials, token
    and rate. What it leaves unset is api's: base_url, max_requests_per_second, min_interval."""

    name: AccountName
    base_url: BaseUrl | None = None
    username: str = ""
    password: Secret = ""
    max_requests_per_second: PerSecond | None = None
    min_interval: Seconds | None = None


class Account(Section, frozen=True):
    """An account's effective settings: the default one (api's own keys) or an entry of
    `api.accounts` with api's values where it leaves one unset."""

    name: str
    base_url: str
    username: str
    password: Secret
    # The calls per second the account allows: the stricter of max_requests_per_second and
    # min_interval; inf for no limit. Every worker together stays within it.
    per_second: float

    @property
    def is_demo(self) -> bool:
        return self.base_url == DEMO

    @property
    def source(self) -> str:
        """The API that the offsets of the account's tasks refer to."""
        return source_of_url(self.base_url)


class ApiSection(Section, frozen=True):
    base_url: BaseUrl = DEMO
    # One id or a list; with `tasks`, both are crawled (the seed's example when neither is set).
    task_id: NonBlank | TaskIds | msgspec.UnsetType = msgspec.UNSET
    tasks: list[TaskSettings] = []
    username: str = ""
    password: Secret = ""
    batch_size: Annotated[int, _between(1, 1000)] = 100
    request_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    max_retries: Annotated[int, _between(0, 10)] = 3
    # Pause between page requests; the API allows about 20 requests/s.
    min_interval: Seconds = 0.05
    # One account's rate, shared by every task, every page in flight and every worker (0: no
    # limit). Request starts are at least max(min_interval, 1 / max_requests_per_second) apart
    # for the account as a whole; each worker takes its share (jobstream.rates).
    max_requests_per_second: PerSecond = 20.0
    # Pages one task requests ahead of the one it is applying, concurrently.
    max_pages_in_flight: Annotated[int, _between(1, 64)] = 8
    # More Bazhuayu accounts; a task names its own in `tasks[].account`.
    accounts: list[AccountSettings] = []

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, task in enumerate(self.tasks):
            if task.id in seen:
                raise InvalidSetting(
                    f"{task.id!r} is listed twice in api.tasks", ("tasks", i, "id")
                )
            seen.add(task.id)
        self._check_accounts()
        if self.is_demo:
            return
        missing = [key for key in ("username", "password") if getattr(self, key) in PLACEHOLDERS]
        if missing:
            variables = " and ".join(environment_variable("api", key) for key in missing)
            raise InvalidSetting(
                f"required for the real API (set {variables}, or use api.base_url: demo)",
                *missing,
            )

    def _check_accounts(self) -> None:
        names = {DEFAULT_ACCOUNT.lower(): DEFAULT_ACCOUNT}
        for i, account in enumerate(self.accounts):
            # Case apart, two names would share their environment variables.
            taken = names.get(account.name.lower())
            if taken == DEFAULT_ACCOUNT:
                raise InvalidSetting(
                    f"{account.name!r} is the name of the account of api.base_url, "
                    "api.username and api.password; give this one another name",
                    ("accounts", i, "name"),
                )
            if taken is not None:
                raise InvalidSetting(
                    f"{account.name!r} is listed twice in api.accounts (names are compared "
                    "without case)",
                    ("accounts", i, "name"),
                )
            names[account.name.lower()] = account.name
            base_url = account.base_url or self.base_url
            if base_url == DEMO:
                raise InvalidSetting(
                    "an account of its own needs the URL of a real API (http(s)://...); the "
                    "built-in demo API has one account, the default one",
                    ("accounts", i, "base_url"),
                )
            missing = [k for k in ("username", "password") if getattr(account, k) in PLACEHOLDERS]
            if missing:
                variables = " and ".join(account_variable(account.name, k) for k in missing)
                raise InvalidSetting(
                    f"required for account {account.name!r} (set {variables})",
                    *(("accounts", i, key) for key in missing),
                )
        known = set(names.values())
        for i, task in enumerate(self.tasks):
            if task.account is not None and task.account not in known:
                raise InvalidSetting(
                    f"no account named {task.account!r} (accounts: {', '.join(sorted(known))})",
                    ("tasks", i, "account"),
                )

    @property
    def task_ids(self) -> tuple[str, ...]:
        """Every configured task: those of `task_id`, then those of `tasks` not named there."""
        if isinstance(self.task_id, msgspec.UnsetType):
            listed: tuple[str, ...] = () if self.tasks else (DEFAULT_TASK_ID,)
        else:
            listed = (self.task_id,) if isinstance(self.task_id, str) else tuple(self.task_id)
        return tuple(dict.fromkeys([*listed, *(task.id for task in self.tasks)]))

    @property
    def enabled_task_ids(self) -> tuple[str, ...]:
        """The tasks to crawl: every configured task but those with `enabled: false`."""
        disabled = {task.id for task in self.tasks if not task.enabled}
        return tuple(t for t in self.task_ids if t not in disabled)

    def task_settings(self, task_id: str) -> TaskSettings:
        """The task's entry in `tasks` (an empty one for a task named only in `task_id`)."""
        if task_id not in self.task_ids:
            raise KeyError(task_id)
        return next((t for t in self.tasks if t.id == task_id), TaskSettings(id=task_id))

    @property
    def is_demo(self) -> bool:
        return self.base_url == DEMO

    @property
    def source(self) -> str:
        """The API that the default account's task offsets refer to."""
        return source_of_url(self.base_url)

    @property
    def account_list(self) -> tuple[Account, ...]:
        """Every account, the default one first, with the defaults filled in."""
        default = Account(
            name=DEFAULT_ACCOUNT,
            base_url=self.base_url,
            username=self.username,
            password=self.password,
            per_second=_per_second(self.max_requests_per_second, self.min_interval),
        )
        others = (
            Account(
                name=given.name,
                base_url=given.base_url or self.base_url,
                username=given.username,
                password=given.password,
                per_second=_per_second(
                    _given(given.max_requests_per_second, self.max_requests_per_second),
                    _given(given.min_interval, self.min_interval),
                ),
            )
            for given in self.accounts
        )
        return (default, *others)


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


def _per_second(max_requests_per_second: float, min_interval: float) -> float:
    """An account's calls per second: the stricter of its two limits (0 is no limit)."""
    rate = max_requests_per_second if max_requests_per_second > 0 else math.inf
    if min_interval > 0:
        rate = min(rate, 1.0 / min_interval)
    return rate


# The fetch wait `kafka.fetch_max_wait_ms` takes when it is not set (see KafkaSection).
EMBEDDED_FETCH_WAIT_MS = 50
KAFKA_FETCH_WAIT_MS = 500  # Kafka's fetch.max.wait.ms default


class KafkaSection(Section, frozen=True):
    bootstrap_servers: NonBlank = EMBEDDED
    topic: NonBlank = "job_data"
    consumer_group: NonBlank = "job_consumer_group"
    partitions: Annotated[int, _between(1, 256)] = 3
    raw_topic: NonBlank = "job_raw"
    rejects_topic: NonBlank = "job_rejects"
    commands_topic: NonBlank = "job_commands"
    # Kept jobs on their way to the dedupe agent (dedupe.enabled), partitioned by job id.
    candidates_topic: NonBlank = "job_candidates"
    embedded_port: Port = 9092
    # Longest an HTTP request waits on the broker (group join, offsets) before a 503.
    http_timeout: Annotated[float, _between(0.5, 120)] = 10.0
    # Largest message jobstream sends (a job, a reject, a slice of an API page on job_raw);
    # keep it at or below the broker's message.max.bytes (Kafka's default is about 1 MB).
    max_message_bytes: Annotated[int, _between(100_000, 100_000_000)] = 1_000_000
    # Producer batching: how long a batch waits to fill, and its size (at most max_message_bytes).
    linger_ms: Annotated[float, _between(0, 1000)] = 10.0
    batch_bytes: Annotated[int, _between(16_384, 100_000_000)] = 1_000_000
    # Longest a fetch waits for data. 0 (the default): by broker, see `__post_init__`.
    fetch_max_wait_ms: Annotated[int, _between(0, 10_000)] = 0
    # Longest a send to job_raw waits for room in the producer's buffer; longer means Kafka is
    # unreachable, and fetched pages go to the local spool. Also how long Kafka then counts as
    # unreachable before a send is tried again.
    send_timeout: Annotated[float, _between(0.1, 300)] = 5.0
    # Longest a spooled page's acknowledgement is awaited while the spool drains.
    ack_timeout: Annotated[float, _between(0.1, 600)] = 30.0
    # Seconds between two metadata round trips that tell whether Kafka answers.
    probe_interval: Annotated[float, _between(0.1, 60)] = 2.0
    # While Kafka is unreachable, the log says so once when it starts, once when it ends, and in
    # between a summary (what the spool holds) every this many seconds.
    outage_summary_interval: Annotated[float, _between(1, 86_400)] = 60.0
    # Trace: what the pipeline decided about each row, by job id (README: 追溯与重放).
    trace_topic: NonBlank = "job_trace"
    # Seconds job_raw keeps the pages a replay reads (retention.ms when the worker creates the
    # topic; an existing topic keeps its own). Kafka's default is 7 days.
    raw_retention: Annotated[float, _between(3600, 10 * 365 * 86400)] = 7 * 86400.0

    @property
    def is_embedded(self) -> bool:
        return self.bootstrap_servers == EMBEDDED

    def __post_init__(self) -> None:
        # The fetch wait by broker. The embedded broker (Tansu) answers a fetch only when the
        # wait elapses, data or not: every hop through it (job_raw, job_candidates) waits that
        # long, so it gets a short one. Kafka answers as soon as data arrives, and the wait only
        # sets how often an idle consumer asks again: Kafka's own default.
        if self.fetch_max_wait_ms == 0:
            wait = EMBEDDED_FETCH_WAIT_MS if self.is_embedded else KAFKA_FETCH_WAIT_MS
            msgspec.structs.force_setattr(self, "fetch_max_wait_ms", wait)


class CrawlerSection(Section, frozen=True):
    interval: Annotated[float, msgspec.Meta(ge=1)] = 300.0
    # Longest a crawl run waits for the pages it sent to be applied before it counts as failed.
    apply_timeout: Annotated[float, _between(1, 3600)] = 60.0
    filter_days: Annotated[int, _between(1, 3650)] = 7
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidSetting(f"unknown time zone {self.timezone!r}", "timezone") from None


class DedupeSection(Section, frozen=True):
    """Dedupe by URL: a job whose id reached job_data within the window is not sent again."""

    enabled: bool = True
    # Seconds a published job id is remembered; unset: crawler.filter_days days.
    window: Annotated[float, msgspec.Meta(gt=0)] | None = None


class TraceSection(Section, frozen=True):
    """What became of each row, kept for GET /trace and POST /replay (README: 追溯与重放)."""

    enabled: bool = True
    # Seconds a decision is kept; unset: the dedupe window.
    retention: Annotated[float, msgspec.Meta(gt=0)] | None = None


class DatabaseSection(Section, frozen=True):
    path: NonBlank = "data/crawl_progress.db"


class SpoolSection(Section, frozen=True):
    """Pages fetched while Kafka is unreachable, kept on disk next to the progress mirror."""

    enabled: bool = True
    # The spool's size limit; when it is full, fetching pauses until Kafka is back.
    max_bytes: Annotated[int, _between(1_048_576, 1 << 40)] = 256 * 1024 * 1024


class Config(Section, frozen=True):
    app: AppSection = msgspec.field(default_factory=AppSection)
    api: ApiSection = msgspec.field(default_factory=ApiSection)
    kafka: KafkaSection = msgspec.field(default_factory=KafkaSection)
    crawler: CrawlerSection = msgspec.field(default_factory=CrawlerSection)
    dedupe: DedupeSection = msgspec.field(default_factory=DedupeSection)
    database: DatabaseSection = msgspec.field(default_factory=DatabaseSection)
    spool: SpoolSection = msgspec.field(default_factory=SpoolSection)
    # What became of each row (GET /trace) and replays of job_raw (POST /replay).
    trace: TraceSection = msgspec.field(default_factory=TraceSection)
    # Declared with the alerts it configures (README: 告警通知).
    alerts: AlertSettings = msgspec.field(default_factory=AlertSettings)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.crawler.timezone)

    @property
    def spool_path(self) -> Path:
        """The spool's SQLite file: next to the progress mirror, `<mirror>-spool.sqlite3`."""
        mirror = Path(self.database.path)
        return mirror.with_name(f"{mirror.stem}-spool.sqlite3")

    @property
    def dedupe_window(self) -> float:
        """Seconds a published job id is remembered: `dedupe.window`, else the filter window."""
        window = self.dedupe.window
        return window if window is not None else self.crawler.filter_days * 86400.0

    @property
    def trace_retention(self) -> float:
        """Seconds a row's trace is kept: `trace.retention`, else the dedupe window."""
        retention = self.trace.retention
        return retention if retention is not None else self.dedupe_window

    def task(self, task_id: str) -> Task:
        """A configured task's effective settings (KeyError for a task not configured)."""
        return _lookups(self).tasks[task_id]

    def account(self, name: str) -> Account:
        """An account's effective settings (KeyError for an account not configured)."""
        return _lookups(self).accounts[name]

    @property
    def accounts(self) -> tuple[Account, ...]:
        """Every account, the default one first."""
        return tuple(_lookups(self).accounts.values())

    def source_of(self, task_id: str) -> str:
        """The API the task's offsets refer to: its account's ("demo" or the base URL)."""
        return self.account(self.task(task_id).account).source

    def _task(self, task_id: str) -> Task:
        given = self.api.task_settings(task_id)
        return Task(
            id=task_id,
            name=given.name or task_id,
            batch_size=given.batch_size or self.api.batch_size,
            interval=given.interval or self.crawler.interval,
            enabled=given.enabled,
            account=given.account or DEFAULT_ACCOUNT,
        )


class _Lookups:
    """A config's tasks and accounts by name, built once: with 200 tasks a scan per look-up
    made every /status listing quadratic."""

    def __init__(self, config: Config) -> None:
        self.config = config  # kept alive, so that its id is not reused while cached
        self.tasks = {task_id: config._task(task_id) for task_id in config.api.task_ids}
        self.accounts = {account.name: account for account in config.api.account_list}


_LOOKUPS: dict[int, _Lookups] = {}


def _lookups(config: Config) -> _Lookups:
    # A Config is frozen but holds lists, so it cannot be a dict key itself.
    found = _LOOKUPS.get(id(config))
    if found is None or found.config is not config:
        if len(_LOOKUPS) > 64:  # configs made by tests; a worker has one
            _LOOKUPS.clear()
        found = _LOOKUPS[id(config)] = _Lookups(config)
    return found


# Environment variable -> (section, key); a variable set to "" overrides nothing. A key that
# takes a list (api.task_id) reads a comma-separated value as one: API_TASK_ID="a,b" is two tasks.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "API_BASE_URL": ("api", "base_url"),
    "API_TASK_ID": ("api", "task_id"),
    "API_USERNAME": ("api", "username"),
    "API_PASSWORD": ("api", "password"),
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "KAFKA_EMBEDDED_PORT": ("kafka", "embedded_port"),
    "ADMIN_TOKEN": ("app", "admin_token"),
    "READ_TOKEN": ("app", "read_token"),
    "DATABASE_PATH": ("database", "path"),
    # Faust's own variable, read here first so that a bad value is one line naming it;
    # jobstream.app then hands Faust the checked app.web_port and hides the variable from it.
    "WEB_PORT": ("app", "web_port"),
}


# The keys of an entry of api.accounts that API_ACCOUNT_<NAME>_<KEY> overrides.
ACCOUNT_ENV_KEYS = ("username", "password", "base_url")


def environment_variable(section: str, key: str) -> str:
    """The variable that overrides `section.key` (KeyError for a key that has none)."""
    return next(name for name, target in ENV_OVERRIDES.items() if target == (section, key))


def account_variable(account: str, key: str) -> str:
    """The variable that overrides `key` of the entry of api.accounts named `account`:
    API_ACCOUNT_<NAME>_<KEY>, the name in capitals."""
    return f"API_ACCOUNT_{account.upper()}_{key.upper()}"


def load(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read, override from the environment, and validate. Raises ConfigError naming the key
    (and the variable, for a value that came from the environment)."""
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
    from_env = _override(raw, env)
    return from_mapping(raw, from_env=from_env)


def _override(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Set the keys the environment overrides in `raw`; returns them (`app.web_port`) with the
    variable that set each."""
    from_env: dict[str, str] = {}
    for name, (section, key) in ENV_OVERRIDES.items():
        value = env.get(name)
        if not value:
            continue
        if raw.get(section) is None:  # absent, or present but empty in YAML
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{section}: must be a mapping (it is set by {name})")
        fields = _section_fields(section) or {}
        if key in fields and _takes_list(fields[key].type) and "," in value:
            raw[section][key] = [item.strip() for item in value.split(",")]
        else:
            raw[section][key] = value
        from_env[f"{section}.{key}"] = name
    _override_accounts(raw, env, from_env)
    return from_env


def _override_accounts(
    raw: dict[str, Any], env: Mapping[str, str], from_env: dict[str, str]
) -> None:
    """API_ACCOUNT_<NAME>_USERNAME (_PASSWORD, _BASE_URL) for each entry of api.accounts, so
    that credentials stay out of the file as api's own do (API_USERNAME, API_PASSWORD)."""
    api = raw.get("api")
    accounts = api.get("accounts") if isinstance(api, dict) else None
    if not isinstance(accounts, list):
        return  # absent, or wrong: converting names the problem
    for i, entry in enumerate(accounts):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        for key in ACCOUNT_ENV_KEYS:
            variable = account_variable(name, key)
            value = env.get(variable)
            if value:
                entry[key] = value
                from_env[f"api.accounts[{i}].{key}"] = variable


def from_mapping(raw: Mapping[str, Any], *, from_env: Mapping[str, str] | None = None) -> Config:
    """The config the sections in `raw` describe (missing ones take their defaults).
    `from_env` names the variable each overridden key came from, for the error message."""
    # An empty section in YAML is null; a number where text is expected is taken as written
    # (YAML reads an unquoted password 123456 as an int).
    sections = {
        name: _numbers_as_text(name, {} if values is None else values)
        for name, values in raw.items()
    }
    return convert(sections, Config, from_env=from_env)


def convert(
    raw: Any, struct: type[T], key: str = "", *, from_env: Mapping[str, str] | None = None
) -> T:
    """`raw` as `struct`, or ConfigError naming the key (`key` is where `raw` sits in the
    file). Lax: the environment gives every value as text ("8000", "true")."""
    try:
        return msgspec.convert(raw, struct, strict=False)
    except (msgspec.ValidationError, InvalidSetting):
        # Located and worded from the declaration; msgspec's message is not read.
        problem = first_problem(raw, struct, key)
        raise ConfigError(_naming_variables(problem, from_env or {})) from None


def _naming_variables(problem: Problem, from_env: Mapping[str, str]) -> str:
    """The problem's line, each key followed by the variable that set it, if one did:
    `app.web_port (from WEB_PORT): expected an integer, got 'abc'`."""

    def named(key: str) -> str:
        for overridden, variable in from_env.items():
            if key == overridden or key.startswith((f"{overridden}.", f"{overridden}[")):
                return f"{key} (from {variable})"
        return key

    return str(problem._replace(keys=tuple(named(key) for key in problem.keys)))


def _numbers_as_text(section: str, values: Any) -> Any:
    fields = _section_fields(section)
    if fields is None:
        return values
    values = _texts_of(values, fields)
    if (
        section == "api"
        and isinstance(values, Mapping)
        and isinstance(values.get("accounts"), list)
    ):
        # An account's password may be a number in YAML too.
        entries = _fields(AccountSettings)
        values = {**values, "accounts": [_texts_of(e, entries) for e in values["accounts"]]}
    return values


def _texts_of(values: Any, fields: Mapping[str, mi.Field]) -> Any:
    if not isinstance(values, Mapping):
        return values
    return {
        key: str(value)
        if key in fields
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and _takes_text(fields[key].type)
        else value
        for key, value in values.items()
    }


def _takes_text(info: mi.Type) -> bool:
    if isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.UnionType):
        return any(_takes_text(t) for t in info.types)
    return isinstance(info, mi.StrType)


def _takes_list(info: mi.Type) -> bool:
    if isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.UnionType):
        return any(_takes_list(t) for t in info.types)
    return isinstance(info, mi.ListType | mi.VarTupleType)


@cache
def _fields(struct: type) -> dict[str, mi.Field]:
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    return {field.name: field for field in info.fields}


def _section_fields(section: str) -> dict[str, mi.Field] | None:
    field = _fields(Config).get(section)
    return None if field is None else _fields(field.type.cls)  # type: ignore[attr-defined]


@cache
def _secret_fields(struct: type) -> frozenset[str]:
    return frozenset(
        name
        for name, field in _fields(struct).items()
        if isinstance(field.type, mi.Metadata) and (field.type.extra or {}).get("secret")
    )
