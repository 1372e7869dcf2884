"""The one Faust application, configured from `jobstream.config`.

The config is read when Faust first needs its settings. Faust compiles a topic's serializers
from the settings when the topic is declared, so that moment is the import of
`jobstream.topics`: `faust -A jobstream worker` loads and validates the file at start, and a bad
file stops it there with one line naming the key.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faust
from faust.types import TransportT
from mode import ServiceT

from jobstream import config as config_module
from jobstream.broker.clients import broker_urls
from jobstream.config import Config
from jobstream.embedded import EmbeddedServices
from jobstream.errors import ConfigError
from jobstream.redaction import keep_secret, secrets_in

if TYPE_CHECKING:
    from jobstream.broker.probe import BrokerProbe
    from jobstream.pipeline.crawl import Crawler
    from jobstream.progress.store import ProgressStore

logger = logging.getLogger(__name__)

# Tansu completes a group join only after about half the session timeout: with Faust's
# default of 60 s a worker waited 30 s to become ready. 10 s is Kafka's long-standing default
# and safe for Faust, whose consumer heartbeats from its own thread; the embedded broker,
# which only ever has local workers, gets 6 s.
GROUP_TIMEOUTS = {"broker_session_timeout": 10.0, "broker_heartbeat_interval": 2.5}
EMBEDDED_GROUP_TIMEOUTS = {"broker_session_timeout": 6.0, "broker_heartbeat_interval": 1.5}
# Docker kills a container 10 s after asking it to stop. Faust's shutdown waits on the broker
# (a final commit, leaving the group) without a bound: facing a dead broker it never ends. The
# worker exits by itself `app.stop_deadline` seconds (8 by default) after its stop began;
# nothing is lost by it (a page whose messages were not acknowledged was not applied, and is
# fetched again at the next start).


class JobstreamApp(faust.App):
    """faust.App that reads jobstream's config and starts the embedded services first.

    `config` is for a second app in one process (the in-process tests); the worker's app reads
    the file named by CONFIG_PATH when Faust first needs its settings. Faust settings given
    here win over those derived from the config.
    """

    def __init__(self, id: str | None = None, *, config: Config | None = None, **options: Any):
        self._given_config = config
        self._id_from_config = id is None
        self._given_options = options
        # True in the process `faust -A jobstream worker` runs; False for an app that only
        # serves its views (the in-process tests).
        self.runs_worker = False
        # The HTTP views' view of the broker (set when they are registered): the crawl asks it
        # whether Kafka is reachable.
        self.broker_probe: BrokerProbe | None = None
        super().__init__(id or "jobstream", **options)
        self.config_from_object(_FaustSettings(self))

    @cached_property
    def settings(self) -> Config:
        if self._given_config is not None:
            config = self._given_config
        else:
            try:
                config = config_module.load()
            except ConfigError as exc:
                # One clear line instead of a traceback: the user's file is wrong, not the code.
                logger.error("configuration error: %s", exc)
                raise SystemExit(f"jobstream: configuration error: {exc}") from None
        keep_secret(*secrets_in(config))
        return config

    def _load_settings(self, *, silent: bool = False) -> Any:
        # The Faust id (the consumer group, the prefix of the tables' changelogs) is the
        # config's `app.name`, known only once the config is read: every worker of one
        # deployment shares it, and two deployments on one Kafka differ by it.
        if self._id_from_config:
            self._default_options = (self.settings.app.name, self._default_options[1])
        return super()._load_settings(silent=silent)

    @cached_property
    def embedded(self) -> EmbeddedServices:
        """The broker and the simulator this worker starts for itself, if the config asks."""
        return EmbeddedServices(self.settings)

    @cached_property
    def crawler(self) -> Crawler:
        """This worker's crawl loop and what it knows (created on first use)."""
        from jobstream.pipeline.crawl import Crawler

        return Crawler(self)

    @cached_property
    def progress_store(self) -> ProgressStore:
        """Every task's progress: the `crawl_progress` table backed by the SQLite mirror."""
        from jobstream.progress.store import ProgressStore
        from jobstream.topics import crawl_progress

        return ProgressStore(crawl_progress, self.settings.database.path, self.settings.api.source)

    def failure(self) -> str | None:
        """Why this worker cannot go on (its embedded broker died), or None."""
        broker = self.embedded.broker
        return broker.failure if broker is not None else None

    def _new_transport(self) -> TransportT:
        # Faust's own transport, but with the fetch wait from the config (see the module).
        from jobstream.broker.transport import KafkaTransport

        return KafkaTransport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        # Faust creates its datadir without parents; the database directory may be new.
        os.makedirs(self.conf.datadir, exist_ok=True)
        await super().on_first_start()

    def on_rebalance_end(self) -> None:
        super().on_rebalance_end()
        # The crawl loop stopped every run when the rebalance began: it crawls the tasks it
        # owns now at once, not at its next tick.
        if "crawler" in self.__dict__:
            self.crawler.wakeup.set()

    def worker_init(self) -> None:
        self.runs_worker = True
        super().worker_init()

    async def on_stop(self) -> None:
        if self.runs_worker:
            _exit_if_not_stopped_within(self.settings.app.stop_deadline)
        await super().on_stop()

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        # Dependencies start in order: the broker and the simulator must be up before the
        # producer and consumers connect.
        return [self.embedded, *super().on_init_dependencies()]


def _exit_if_not_stopped_within(seconds: float) -> None:
    """Exit the process `seconds` from now unless it has ended by then (a daemon thread: it
    fires even while the event loop is stuck, and does not keep a finished process alive)."""

    def overdue() -> None:
        logger.error(
            "the worker did not stop within %.0fs (is Kafka unreachable?); exiting without "
            "waiting any longer: pages whose messages were not acknowledged were not applied "
            "and are fetched again at the next start",
            seconds,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        # The embedded broker, if any, gets its parent-death signal.
        os._exit(1)

    timer = threading.Timer(seconds, overdue)
    timer.daemon = True
    timer.start()


class _FaustSettings(Mapping[str, Any]):
    """Faust settings derived from jobstream's config, computed when Faust first reads them."""

    def __init__(self, app: JobstreamApp) -> None:
        self._app = app

    @cached_property
    def _values(self) -> dict[str, Any]:
        return {**faust_settings(self._app.settings), **self._app._given_options}

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def faust_settings(config: Config) -> dict[str, Any]:
    data_dir = Path(config.database.path).parent
    settings: dict[str, Any] = {
        "broker": broker_urls(config),
        "store": "memory://",
        "topic_partitions": config.kafka.partitions,
        "web_port": config.app.web_port,
        "datadir": str(data_dir / "faust"),
        "debug": config.app.debug,
        "consumer_auto_offset_reset": "earliest",
        # Pages are split below this on job_raw; see pipeline.crawl.split_page.
        "producer_max_request_size": 1_000_000,
        # Throughput: batches of up to ~1 MB (one produce request carries many messages) that
        # wait a few ms to fill. A batch is one message to the broker's size limit.
        "producer_linger": config.kafka.linger_ms / 1000,
        "producer_max_batch_size": min(config.kafka.batch_bytes, config.kafka.max_message_bytes),
        # An event on job_raw is a whole page (up to ~1 MB): Faust's default of 4096 buffered
        # events per stream would let a crawl that runs ahead hold gigabytes in memory.
        "stream_buffer_maxsize": 32,
        # The table lives in memory (`store`), so the only offset Faust can find "persisted"
        # is what this worker read of the changelog as a standby. Its check compares that with
        # the broker's end offset, which Tansu reports short by up to a batch (design.md): a
        # worker taking over a task from a dead one crashed on a false ConsistencyError.
        "recovery_consistency_check": False,
    }
    settings.update(EMBEDDED_GROUP_TIMEOUTS if config.kafka.is_embedded else GROUP_TIMEOUTS)
    return settings


app = JobstreamApp(autodiscover=False, origin="jobstream")
