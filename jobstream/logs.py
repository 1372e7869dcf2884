"""The log's policy: one line per change of state, not one per event.

A Kafka outage is told by `KafkaStory`: one ERROR when it starts, a summary every
`kafka.outage_summary_interval` seconds while it lasts (what the local spool holds), one INFO
when it ends. The broker probe tells the story what it finds; nothing else decides "up" or
"down". Meanwhile the connection errors of the Kafka client (aiokafka logs one per attempt,
thousands a minute) are held back and counted: `HoldBack`, a filter on the root logger's
handlers, asks the story about every record. The libraries' other warnings and errors still
reach the log, each kind once per outage (and for a few seconds after it, while the libraries
still report on it). Connection errors seen while the probe still finds Kafka answering are
held until it decides: folded into the outage, or told in one line, a WARNING if they go on
while Kafka answers, an INFO if they stopped.

When the worker cannot go on (its embedded broker died: one ERROR says so, with the exit code),
what the libraries log while it stops (connection errors, cancelled tasks, the crash cascade)
is held back too. With `-l debug`, everything held back is written as well.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from jobstream.config import Config

logger = logging.getLogger(__name__)

# What the Kafka client says when it cannot reach a broker; matched against a record's message
# and the names of the exceptions it carries.
CONNECTION_TROUBLE = re.compile(
    r"Unable (to )?connect|Unable to (update|request) metadata|Unable to bootstrap|"
    r"Connect call failed|Connection at \S+ closed|NodeNotReady|KafkaConnectionError|"
    r"RequestTimedOut|KafkaTimeoutError|coordinator dead|Coordinator Request failed|"
    r"CoordinatorNotAvailable|Heartbeat|ConnectionRefused|ConnectionReset|IncompleteRead|"
    r"BrokenPipe|Broken pipe",
    re.IGNORECASE,
)
# What the libraries say about an outage that is not a connection error: a commit that took
# as long as the outage. Held back while the outage lasts (counted with the repeats).
OUTAGE_FALLOUT = re.compile(r"Timer \S+ is overlapping")
# How mode begins what it logs for a service ("[^--Consumer]: Crashed reason=..."): the
# library's words, even for a service of jobstream's.
MODE_SERVICE = "[^"
# Records of jobstream's own loggers are never held back.
OWN = "jobstream"
# How long connection errors may go on while the probe finds Kafka answering before they are
# told: a probe round trip that started before a cut may still answer.
UNDECIDED = 10.0


class SpoolSize(Protocol):
    @property
    def pages(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def bytes(self) -> int: ...


class SpoolView(Protocol):
    """What the story reads of the local spool (`jobstream.pipeline.spool.Spool`)."""

    @property
    def path(self) -> object: ...
    @property
    def max_bytes(self) -> int: ...
    def size(self, task_id: str | None = None) -> SpoolSize: ...


class KafkaStory:
    """Whether Kafka answers, as the probe last found, told in the log once per change.

    `failure` says why the worker cannot go on (None while it can). Thread-safe: log records
    arrive from the Kafka consumer's thread too."""

    def __init__(
        self,
        bootstrap: str,
        summary_interval: float,
        failure: Callable[[], str | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        spool_enabled: bool = True,
    ) -> None:
        self.bootstrap = bootstrap
        self.summary_interval = summary_interval
        self.failure = failure
        self.clock = clock
        # The local spool, once the sender has one: the summaries say what it holds.
        self.spool: SpoolView | None = None
        self.spool_enabled = spool_enabled
        # None until the probe has answered once.
        self.up: bool | None = None
        # Reentrant: a line the story writes while holding it passes through its own filter.
        self._lock = threading.RLock()
        self._since = 0.0
        self._ended = -UNDECIDED
        self._told = 0.0
        self._quiet = False
        # Held back during this outage: connection errors, and repeats of other kinds.
        self._held = Counter[str]()
        self._passed: set[str] = set()
        # Connection errors while the probe still finds Kafka answering: how many, the first,
        # when the first and the last came.
        self._undecided: tuple[int, str, float, float] | None = None
        self._warned = -float("inf")

    @classmethod
    def for_config(
        cls, config: Config, failure: Callable[[], str | None] = lambda: None
    ) -> KafkaStory:
        from jobstream.broker.clients import client_options

        return cls(
            ",".join(client_options(config)["bootstrap_servers"]),
            config.kafka.outage_summary_interval,
            failure,
            spool_enabled=config.spool.enabled,
        )

    # -- what the probe (and the start-up wait) finds ---------------------------------------

    def found_down(self, reason: str, *, quiet: bool = False) -> None:
        """Kafka did not answer. The first time: one ERROR (none when `quiet`: the caller says
        it in its own words); then a summary every `summary_interval`."""
        with self._lock:
            now = self.clock()
            if self.up is False:
                due = not self._quiet and now - self._told >= self.summary_interval
                if due:
                    self._told = now
            else:
                due = False
                self.up, self._since, self._told, self._quiet = False, now, now, quiet
                self._passed.clear()
                self._held.clear()
                if self._undecided is not None:
                    self._held["connection"] += self._undecided[0]
                    self._undecided = None
                if not quiet:
                    logger.error(
                        "Kafka at %s is unreachable (%s): %s until it is back; the HTTP views "
                        "that need it answer 503. A summary follows every %s while it lasts; "
                        "the Kafka client's connection errors are held back meanwhile",
                        self.bootstrap,
                        reason,
                        self._spooling(),
                        _duration(self.summary_interval),
                    )
                return
        if due:
            logger.warning(
                "Kafka at %s still unreachable after %s: %s; %s",
                self.bootstrap,
                _duration(now - self._since),
                self._spool_holds(),
                self._held_back(),
            )

    def found_up(self, *, quiet: bool = False) -> None:
        """Kafka answered. After an outage: one INFO (none when `quiet`). Connection errors
        held meanwhile are told once decided: a WARNING if they went on for UNDECIDED seconds
        (a broker of the cluster the probe does not need?; at most one a summary interval),
        an INFO if they stopped."""
        with self._lock:
            now = self.clock()
            was, self.up = self.up, True
            if was is False:
                self._ended = now
            held = self._held_back()
            undecided = self._undecided
            if undecided is not None:
                _, _, since, last = undecided
                going_on = last - since >= UNDECIDED
                if going_on and now - self._warned >= self.summary_interval:
                    self._undecided, self._warned = None, now
                elif not going_on and now - last >= UNDECIDED:
                    self._undecided = None
                else:
                    undecided = None  # not decided yet, or told less than an interval ago
        if was is False and not quiet:
            logger.info(
                "Kafka at %s is reachable again after %s (%s); %s",
                self.bootstrap,
                _duration(now - self._since),
                held,
                self._spool_holds(sending=True),
            )
        if undecided is not None:
            count, first, since, last = undecided
            going_on = last - since >= UNDECIDED
            logger.log(
                logging.WARNING if going_on else logging.INFO,
                "the Kafka client reported %d connection errors in %s while Kafka at %s "
                "answered the probe%s; the first: %s",
                count,
                _duration(last - since),
                self.bootstrap,
                " (a broker of the cluster unreachable?)" if going_on else ", and stopped",
                first,
            )

    # -- what reaches the log ---------------------------------------------------------------

    def admit(self, record: logging.LogRecord) -> bool:
        """Whether `record` is written: False for what this story holds back."""
        if record.levelno < logging.WARNING and not record.exc_info:
            return True
        failing = self.failure() is not None
        # (After the broker died, Faust's INFO lines about cancelled agents carry a traceback.)
        if record.levelno < logging.WARNING and not failing:
            return True
        text = record.getMessage()
        if record.name.startswith(OWN) and not text.startswith(MODE_SERVICE):
            return True
        if failing:
            # The worker stops: one ERROR said why; the fallout is not news.
            return _debugging()
        trouble = _connection_trouble(record, text)
        with self._lock:
            # Just after an outage the libraries still report on it (connections they close,
            # a commit that took as long as the outage): the same rules a little longer.
            settling = self.up is True and self.clock() - self._ended < UNDECIDED
            if self.up is False or settling:
                if trouble:
                    self._held["connection"] += 1
                    return _debugging()
                kind = _kind(record, text)
                if kind in self._passed or OUTAGE_FALLOUT.search(text):
                    self._held["repeated"] += 1
                    return _debugging()
                self._passed.add(kind)
                return True
            if not trouble:
                return True
            now = self.clock()
            count, first, since, _ = self._undecided or (0, text, now, now)
            self._undecided = (count + 1, first, since, now)
        return _debugging()

    def thread_ended(self, args: threading.ExceptHookArgs) -> None:
        """`threading.excepthook`: one record, not a traceback written to stderr piece by
        piece (the worker redirects stderr to the log, a line per write); at DEBUG when it is
        the fallout of an outage or of the broker's death already told."""
        if args.exc_type is SystemExit:
            return
        value = args.exc_value
        fallout = (self.up is False or self.failure() is not None) and (
            _connection_trouble_in(value) or _cancelled_in(value)
        )
        logger.log(
            logging.DEBUG if fallout else logging.ERROR,
            "thread %s ended with %r",
            args.thread.name if args.thread is not None else "?",
            value,
            exc_info=value if value is not None else False,
        )

    # -- the words ----------------------------------------------------------------------------

    def _spooling(self) -> str:
        if not self.spool_enabled:
            return "the crawl waits for it (spool.enabled is false)"
        where = f" {self.spool.path}" if self.spool is not None else ""
        return f"fetched pages go to the local spool{where}"

    def _spool_holds(self, sending: bool = False) -> str:
        if self.spool is None:
            return "nothing is spooled" if self.spool_enabled else "the crawl waited"
        size = self.spool.size()
        return (
            f"the local spool holds {size.pages} fetched pages ({size.rows} rows, {size.bytes} "
            f"bytes of at most {self.spool.max_bytes})"
            + (", sent to job_raw before new pages" if sending and size.pages else "")
        )

    def _held_back(self) -> str:
        held = self._held
        return f"held back: {held['connection']} connection errors of the Kafka client" + (
            f", {held['repeated']} warnings repeated or caused by the outage"
            if held["repeated"]
            else ""
        )


class HoldBack(logging.Filter):
    """A handler's filter that asks `story` about each record."""

    def __init__(self, story: KafkaStory) -> None:
        super().__init__()
        self.story = story

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return self.story.admit(record)
        except Exception:  # a filter that raises would break the code that logs
            return True


def install(story: KafkaStory) -> None:
    """Hold back what `story` says, on every handler of the root logger (those of the worker's
    log), and log a thread's uncaught exception as one record. Installing again adds the
    filter only to handlers that lack it."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, HoldBack) for f in handler.filters):
            handler.addFilter(HoldBack(story))
    threading.excepthook = story.thread_ended


def error_text(error: BaseException) -> str:
    """`Type: message`, once (a KafkaError's message starts with its type already)."""
    text = str(error)
    name = type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def _debugging() -> bool:
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def _kind(record: logging.LogRecord, text: str) -> str:
    return f"{record.name}:{re.sub(r'[0-9]+', 'N', text[:160])}"


def _connection_trouble(record: logging.LogRecord, text: str) -> bool:
    if CONNECTION_TROUBLE.search(text):
        return True
    return record.exc_info is not None and _connection_trouble_in(record.exc_info[1])


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen and len(seen) < 20:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _connection_trouble_in(error: BaseException | None) -> bool:
    return any(
        isinstance(e, ConnectionError)
        or CONNECTION_TROUBLE.search(f"{type(e).__name__}: {e}") is not None
        for e in _chain(error)
    )


def _cancelled_in(error: BaseException | None) -> bool:
    return any(type(e).__name__ == "CancelledError" for e in _chain(error))


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
