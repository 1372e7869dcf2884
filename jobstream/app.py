"""The one Faust application, configured from `jobstream.config`.

The config is read when Faust first needs its settings. Faust compiles a topic's serializers
from the settings when the topic is declared, so that moment is the import of
`jobstream.topics`: `faust -A jobstream worker` loads and validates the file at start, and a bad
file stops it there with one line naming the key.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import faust
from faust.app.base import BootStrategy
from faust.types import TransportT
from mode import ServiceT

from jobstream import config as config_module
from jobstream import logs
from jobstream.broker.clients import broker_urls
from jobstream.config import Config
from jobstream.embedded import EmbeddedServices
from jobstream.errors import ConfigError
from jobstream.redaction import keep_secret, secrets_in
from jobstream.startup import KafkaAtStart, SetupError, check_web_port

logger = logging.getLogger(__name__)

# Tansu completes a group join only after about half the session timeout: with Faust's
# default of 60 s a worker waited 30 s to become ready. 10 s is Kafka's long-standing default
# and safe for Faust, whose consumer heartbeats from its own thread; the embedded broker,
# which only ever has local workers, gets 4 s (a join in 2 s; the tests run with 3 s).
GROUP_TIMEOUTS = {"broker_session_timeout": 10.0, "broker_heartbeat_interval": 2.5}
EMBEDDED_GROUP_TIMEOUTS = {"broker_session_timeout": 4.0, "broker_heartbeat_interval": 1.0}
# Docker kills a container 10 s after asking it to stop. Faust's shutdown waits on the broker
# (a final commit, leaving the group) without a bound: facing a dead broker it never ends. The
# worker exits by itself `app.stop_deadline` seconds (8 by default) after its stop began;
# nothing is lost by it (a page whose messages were not acknowledged was not applied, and is
# fetched again at the next start).
# After the embedded broker died there is nothing left to wait for: the worker exits this long
# after its stop began, having said why in one line.
FAILED_STOP_DEADLINE = 3.0


class _Boot(BootStrategy):
    """Faust's start order, but the web server before the producer, and between them a wait
    until Kafka answers: a worker started while Kafka is unreachable answers /health and keeps
    trying instead of exiting on the producer's first failed bootstrap."""

    def server(self) -> Iterable[ServiceT]:
        app = self.app
        assert isinstance(app, JobstreamApp)
        return self._chain(
            self.sensors(),
            self.web_server(),
            [app.kafka_at_start],
            self.kafka_producer(),
            self.kafka_consumer(),
            self.agents(),
            self.kafka_conductor(),
            self.tables(),
        )


class JobstreamApp(faust.App):
    """faust.App that reads jobstream's config and starts the embedded services first.

    `config` is for a second app in one process (the in-process tests); the worker's app reads
    the file named by CONFIG_PATH when Faust first needs its settings. Faust settings given
    here win over those derived from the config.
    """

    BootStrategy = _Boot

    def __init__(self, id: str | None = None, *, config: Config | None = None, **options: Any):
        self._given_config = config
        self._id_from_config = id is None
        self._given_options = options
        # True in the process `faust -A jobstream worker` runs; False for an app that only
        # serves its views (the in-process tests).
        self.runs_worker = False
        # What the worker runs beside Faust's services (`jobstream.runtime`), started last.
        self._runtime: ServiceT | None = None
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
    def kafka_story(self) -> logs.KafkaStory:
        """Whether Kafka answers, told in the log once per change (`jobstream.logs`)."""
        return logs.KafkaStory.for_config(self.settings, failure=self.failure)

    @cached_property
    def kafka_at_start(self) -> KafkaAtStart:
        return KafkaAtStart(self.settings, self.kafka_story)

    def run_beside(self, runtime: ServiceT) -> None:
        """Start `runtime` with the worker, after Faust's own services, and stop it first."""
        self._runtime = runtime

    def tables_recovered(self) -> bool:
        """The worker has had its first partition assignment and recovered its tables."""
        return bool(self.tables.recovery.completed.is_set())  # type: ignore[attr-defined]

    def failure(self) -> str | None:
        """Why this worker cannot go on (its embedded broker died), or None."""
        broker = self.embedded.broker
        return broker.failure if broker is not None else None

    def _new_transport(self) -> TransportT:
        # Faust's own transport, but with the fetch wait from the config (see the module).
        from jobstream.broker.transport import KafkaTransport

        return KafkaTransport(self.conf.broker_consumer, self)

    async def start(self) -> None:
        try:
            await super().start()
        except SetupError as exc:
            # One clear line instead of a traceback: the setup is wrong, not the code.
            logger.error("%s", exc)
            raise SystemExit(1) from None

    async def on_first_start(self) -> None:
        if self.runs_worker:
            # The worker's log handlers exist now (Faust set them up before starting the app).
            logs.install(self.kafka_story)
            if self.conf.web_enabled and self.conf.web_transport.scheme == "tcp":
                check_web_port(self.conf.web_bind, self.conf.web_port)
        # Faust creates its datadir without parents; the database directory may be new.
        os.makedirs(self.conf.datadir, exist_ok=True)
        await super().on_first_start()

    async def on_started(self) -> None:
        # Stopped while waiting for Kafka at start (mode still calls this): the tasks and the
        # agents' work need the producer, which never started.
        if self.should_stop:
            return
        await super().on_started()
        if self.runs_worker:
            # What was built to start the worker (modules, Faust's services and tables) lives
            # as long as it: out of the collector's way, each full collection walks only what
            # the pipeline made since (measured: a 257,449-row crawl ran 12 full collections
            # over about 90,000 objects, 0.33 s of CPU with the trace on).
            gc.freeze()

    def worker_init(self) -> None:
        self.runs_worker = True
        super().worker_init()

    async def on_stop(self) -> None:
        if self.runs_worker:
            failed = self.failure() is not None
            _exit_if_not_stopped_within(
                min(FAILED_STOP_DEADLINE, self.settings.app.stop_deadline)
                if failed
                else self.settings.app.stop_deadline,
                told=failed,
            )
        await super().on_stop()

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        # Dependencies start in order: the broker and the simulator must be up before the
        # producer and consumers connect; the runtime uses them.
        runtime = [self._runtime] if self._runtime is not None else []
        return [self.embedded, *super().on_init_dependencies(), *runtime]


def _exit_if_not_stopped_within(seconds: float, told: bool = False) -> None:
    """Exit the process `seconds` from now unless it has ended by then (a daemon thread: it
    fires even while the event loop is stuck, and does not keep a finished process alive).
    `told`: the log already says why the worker stops (and that it exits with code 1)."""

    def overdue() -> None:
        logger.log(
            logging.INFO if told else logging.ERROR,
            "the worker did not stop within %.0fs%s; exiting without waiting any longer: pages "
            "whose messages were not acknowledged were not applied and are fetched again at "
            "the next start",
            seconds,
            "" if told else " (is Kafka unreachable?)",
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
        # jobstream.config reads and checks WEB_PORT (as app.web_port, passed in here); Faust
        # would read it again unchecked, and WEB_PORT="abc" or "" would end in a traceback.
        env = {name: value for name, value in os.environ.items() if name != "WEB_PORT"}
        return {**faust_settings(self._app.settings), "env": env, **self._app._given_options}

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
        # Every table is declared at import: no pause at start for late ones.
        "TableManager": "jobstream.broker.tables:TableManager",
    }
    settings.update(EMBEDDED_GROUP_TIMEOUTS if config.kafka.is_embedded else GROUP_TIMEOUTS)
    return settings


app = JobstreamApp(autodiscover=False, origin="jobstream")
