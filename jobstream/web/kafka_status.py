"""GET /kafka: Kafka as the operators need to see it. Whether it answers (and since when
not), what job_data holds, the lag of every consumer group reading it, per partition, and the
times job_data lost messages.

Lost messages are seen two ways. The embedded broker keeps everything in memory: a worker
that starts it while the SQLite mirror holds progress of an earlier run knows that everything
that run published is gone (`EMBEDDED_RESTART`). On any broker, job_data's true end offsets
going backwards mean the topic was deleted or recreated under the worker (`OFFSETS_WENT_BACK`):
the watch samples them every few seconds.

The group lags are measured when asked, at most once every `CACHE_SECONDS`, one measurement
shared by every caller (a dashboard per operator polls this).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from mode import Service

from jobstream.broker.clients import client_options, start_or_close
from jobstream.broker.lag import LagProbe
from jobstream.config import Config
from jobstream.errors import BrokerUnavailable
from jobstream.records import Progress
from jobstream.runtime import Runtime
from jobstream.web.endpoint import Doc, JsonView, Ok
from jobstream.web.status import SpoolStatus, since_text, spool_status

logger = logging.getLogger(__name__)

CACHE_SECONDS = 2.0
# How often job_data's end offsets are sampled for a topic that went back.
WATCH_SECONDS = 5.0
# Groups looked at, at most (the default group always among them).
MAX_GROUPS = 50
# Longer group names are cut (Kafka's own limit is 249 characters for a topic, none for a group).
GROUP_NAME_CHARS = 249
# Losses kept to show, the latest last.
MAX_LOSSES = 5

LossKind = Literal["embedded_restart", "offsets_went_back"]
EMBEDDED_RESTART: LossKind = "embedded_restart"
OFFSETS_WENT_BACK: LossKind = "offsets_went_back"


def _about(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class GroupLag(msgspec.Struct, frozen=True):
    """一个消费组在 job_data 上的积压"""

    group: str
    default: Annotated[bool, _about("是否为 kafka.consumer_group（/consume 的默认消费组）")]
    lag: Annotated[int | None, _about("积压条数（各分区之和）；无法测量时为 null")]
    lag_by_partition: Annotated[dict[str, int], _about("各分区的积压条数")]
    error: Annotated[str | None, _about("无法测量时的原因")] = None


class DataLoss(msgspec.Struct, frozen=True):
    """job_data 中的消息丢失：内置 broker 重启（只在内存中保存数据），或主题的末尾偏移量倒退"""

    kind: Annotated[
        LossKind,
        _about(
            "embedded_restart：worker 重启时内置 broker 是新的，之前的消息都已不在；"
            "offsets_went_back：job_data 的末尾偏移量变小（主题被删除或重建）"
        ),
    ]
    at: Annotated[str, _about("发现的时间")]
    messages: Annotated[int | None, _about("丢失的 job_data 消息数（已知时）")] = None
    rejects: Annotated[int | None, _about("丢失的 job_rejects 消息数（已知时）")] = None
    detail: Annotated[str, _about("详情")] = ""


class KafkaStatus(msgspec.Struct, frozen=True):
    """Kafka 的状态：是否可达、job_data 的消息、各消费组的积压、消息丢失"""

    reachable: Annotated[bool | None, _about("探针最近一次能否连上 Kafka；尚未探测时为 null")]
    unreachable_since: Annotated[str | None, _about("从何时起不可达")]
    embedded: Annotated[bool, _about("true：内置 broker（Tansu，只在内存中保存数据）")]
    topic: str
    partitions: Annotated[int | None, _about("job_data 的分区数；主题还不存在时为 null")]
    end_offsets: Annotated[dict[str, int], _about("各分区真实的末尾偏移量（下一条消息的偏移量）")]
    groups: Annotated[list[GroupLag], _about("在 job_data 上提交过位置的消费组，默认消费组在前")]
    losses: Annotated[list[DataLoss], _about("本 worker 发现的消息丢失，最近的在后")]
    spool: Annotated[SpoolStatus, _about("本 worker 的本地暂存（Kafka 不可达时采集到的页）")]
    error: Annotated[str | None, _about("无法读取偏移量或消费组时的原因")] = None


class KafkaWatch(Service):
    """Measures the groups' lags when asked, and watches job_data for lost messages."""

    def __init__(self, runtime: Runtime, **kwargs: object) -> None:
        self.runtime = runtime
        self.config: Config = runtime.config
        self.probe = runtime.probe
        self.losses: list[DataLoss] = []
        options = client_options(self.config)
        self._options = options
        self._lags = LagProbe(options)
        self._admin: AIOKafkaAdminClient | None = None
        self._highest: dict[int, int] = {}
        self._cached: tuple[float, KafkaStatus] | None = None
        self._measuring: asyncio.Task[KafkaStatus] | None = None
        self._started_wall = time.time()
        super().__init__(**kwargs)  # type: ignore[arg-type]

    async def on_start(self) -> None:
        if self.config.kafka.is_embedded:
            self._note_embedded_restart()

    async def on_stop(self) -> None:
        if self._measuring is not None:
            self._measuring.cancel()
        await self._lags.close()
        if self._admin is not None:
            await self._admin.close()

    @Service.task
    async def _keep_watching(self) -> None:
        while not self.should_stop:
            await self.sleep(WATCH_SECONDS)
            try:
                await self.sample_ends()
            except (BrokerUnavailable, KafkaError, OSError, TimeoutError):
                pass  # unreachable or not there yet: nothing to compare
            except Exception:
                logger.exception("job_data's end offsets not sampled")

    # -- lost messages --------------------------------------------------------------------

    def _note_embedded_restart(self) -> None:
        """The embedded broker is new with this worker: whatever the mirror says an earlier
        run published is gone from job_data (and its rejects from job_rejects)."""
        messages = rejects = tasks = 0
        source = self.config.api.source
        for task_id in self.config.api.task_ids:
            before = self._earlier(self.runtime.store.mirror.load(task_id), source)
            if before is not None and before.current_offset > 0:
                tasks += 1
                messages += before.published
                rejects += before.rejected
        if not tasks:
            return
        logger.warning(
            "the embedded broker keeps its data in memory only and started empty: the %d "
            "messages the last run published to job_data (and %d rows sent to job_rejects) are "
            "gone; %d tasks resume from the SQLite mirror and do not publish those rows again",
            messages, rejects, tasks,
        )  # fmt: skip
        self._lost(
            DataLoss(
                kind=EMBEDDED_RESTART,
                at=self._now(),
                messages=messages,
                rejects=rejects,
                detail=f"{tasks} tasks resumed from the SQLite mirror",
            )
        )

    def _earlier(self, progress: Progress | None, source: str) -> Progress | None:
        """`progress` as an earlier run left it; None when it belongs to another API, or has
        been written by this run already (then what the earlier run published is not known)."""
        if progress is None or progress.source != source:
            return None
        if progress.last_update:
            try:
                updated = datetime.fromisoformat(progress.last_update).timestamp()
            except ValueError:
                return progress
            if updated >= self._started_wall:
                return None
        return progress

    async def sample_ends(self) -> None:
        if not self.probe.broker_up or not self.probe.partitions:
            return
        ends = await self.probe.true_end_offsets()
        current = {tp.partition: end for tp, end in ends.items()}
        went_back = {
            p: (was, current.get(p, 0))
            for p, was in sorted(self._highest.items())
            if current.get(p, 0) < was
        }
        if went_back:
            detail = ", ".join(f"partition {p}: {a} -> {b}" for p, (a, b) in went_back.items())
            logger.warning(
                "job_data's end offsets went back (%s): the topic was deleted or recreated, "
                "and the messages it held are gone",
                detail,
            )
            self._lost(DataLoss(kind=OFFSETS_WENT_BACK, at=self._now(), detail=detail))
            self._highest = current
        else:
            self._highest = {p: max(end, self._highest.get(p, 0)) for p, end in current.items()}

    def _lost(self, loss: DataLoss) -> None:
        self.losses = [*self.losses, loss][-MAX_LOSSES:]

    def _now(self) -> str:
        return datetime.now(self.config.tz).isoformat(timespec="seconds")

    # -- the answer -----------------------------------------------------------------------

    async def status(self) -> KafkaStatus:
        """The status, measured again when the last is older than CACHE_SECONDS."""
        if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        if self._measuring is None or self._measuring.done():
            self._measuring = asyncio.create_task(self._measure())
        return await asyncio.shield(self._measuring)

    async def _measure(self) -> KafkaStatus:
        probe = self.probe
        ends: dict[str, int] = {}
        groups: list[GroupLag] = []
        error = None
        try:
            tps = probe.require_topic()
            found = await probe.true_end_offsets()
            ends = {str(tp.partition): end for tp, end in sorted(found.items())}
            for group in await probe.bounded(self._groups(tps), probe.timeout):
                groups.append(await self._group_lag(group, tps))
        except BrokerUnavailable as exc:
            error = str(exc)
        except (KafkaError, OSError, TimeoutError) as exc:
            logger.warning("consumer groups on %s not measured: %r", self.config.kafka.topic, exc)
            error = "Kafka did not answer in time"
        except Exception:
            logger.exception("consumer groups on %s not measured", self.config.kafka.topic)
            error = "internal error; see the worker log"
        status = KafkaStatus(
            reachable=probe.broker_up,
            unreachable_since=since_text(probe.unreachable_since, self.config),
            embedded=self.config.kafka.is_embedded,
            topic=self.config.kafka.topic,
            partitions=probe.partitions,
            end_offsets=ends,
            groups=groups,
            losses=list(self.losses),
            spool=spool_status(self.runtime),
            error=error,
        )
        self._cached = (time.monotonic(), status)
        return status

    async def _groups(self, tps: list[TopicPartition]) -> list[str]:
        """The default group, then every group with a committed offset on job_data."""
        if self._admin is None:
            admin = AIOKafkaAdminClient(client_id="jobstream-groups", **self._options)
            await start_or_close(admin.start(), admin.close)
            self._admin = admin
        default = self.config.kafka.consumer_group
        # Names from the cluster, shown as they are: bounded like anything from outside.
        listed = sorted(
            {str(g[0])[:GROUP_NAME_CHARS] for g in await self._admin.list_consumer_groups()}
            - {default}
        )
        found = [default]
        for group in listed[:MAX_GROUPS]:
            # Asked for job_data's partitions by name: Tansu does not answer the "all topics" form.
            offsets = await self._admin.list_consumer_group_offsets(group, partitions=tps)
            if any(o.offset >= 0 for o in offsets.values()):
                found.append(group)
        return found

    async def _group_lag(self, group: str, tps: list[TopicPartition]) -> GroupLag:
        default = group == self.config.kafka.consumer_group
        try:
            lag = await self.probe.bounded(self._lags.measure(group, tps), self.probe.timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            return GroupLag(group, default, None, {}, f"not measured: {type(exc).__name__}")
        by_partition = {str(p): n for p, n in sorted(lag.by_partition.items())}
        return GroupLag(group, default, lag.total, by_partition)


KAFKA_WATCH = web.AppKey("jobstream.kafka_watch", KafkaWatch)


class KafkaStatusView(JsonView):
    """GET /kafka"""

    access = "read"
    doc = Doc(
        "Kafka 的状态：是否可达、job_data 的消息、各消费组的积压、消息丢失",
        "状态",
        {200: Ok("Kafka 的状态", KafkaStatus)},
        "在 job_data 上提交过位置的每个消费组（默认消费组在前）的积压，按分区列出；"
        "job_data 各分区真实的末尾偏移量；内置 broker 重启或主题被重建造成的消息丢失。",
    )

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(await request.app[KAFKA_WATCH].status())
