"""The OpenAPI 3.1 description of every endpoint, built from the running configuration (the
configured task ids, whether a bearer token is required)."""

from __future__ import annotations

from typing import Any

import msgspec

from jobstream.config import Config
from jobstream.records import Job, Reject
from jobstream.web.consume import BATCH_SIZE, TIMEOUT_MS
from jobstream.web.dashboard import DashboardSettings
from jobstream.web.history import HistoryBody
from jobstream.web.kafka_status import KafkaStatus
from jobstream.web.recent import LIMIT, TOPICS, RecentMessages
from jobstream.web.responses import ErrorBody
from jobstream.web.status import Status, StatusList, TaskUnavailable

JSON = "application/json"
GROUP_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
FROM_OTHER_SITE = "来自其他网站的浏览器请求（Sec-Fetch-Site 或 Origin 表明）"
EVENT_ID_PATTERN = "^[0-9]{1,5}:[0-9]{1,19}(,[0-9]{1,5}:[0-9]{1,19})*$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("ErrorBody"), description)


def _retry_later(description: str) -> dict[str, Any]:
    return _error(description) | {
        "headers": {
            "Retry-After": {
                "description": "建议的重试间隔（秒）",
                "schema": {"type": "string"},
            }
        }
    }


def _ok(data: dict[str, Any], **extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["code", "data", *extra],
        "properties": {"code": {"const": 0}, "data": data, **extra},
    }


def schemas() -> dict[str, Any]:
    """The JSON Schema of every body, from the declarations that encode it: the records on
    job_data and job_rejects, the bodies of /status and the dashboard's endpoints, and the
    error body."""
    _, components = msgspec.json.schema_components(
        [
            Job,
            Reject,
            Status,
            StatusList,
            TaskUnavailable,
            HistoryBody,
            KafkaStatus,
            RecentMessages,
            DashboardSettings,
            ErrorBody,
        ],
        ref_template="#/components/schemas/{name}",
    )
    return components


def _page(content_type: str, description: str, summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "tags": ["仪表盘"],
        "responses": {
            "200": {
                "description": description,
                "content": {content_type: {"schema": {"type": "string"}}},
            }
        },
    }


def spec(config: Config, reserved_groups: tuple[str, ...] = ()) -> dict[str, Any]:
    """`reserved_groups`: group names /consume refuses (the worker's own Faust group)."""
    task_ids = list(config.api.task_ids)
    protected = bool(config.app.admin_token)
    reading_protected = bool(config.app.read_token)
    several = len(task_ids) > 1
    task_param = {
        "name": "task_id",
        "in": "query",
        "required": False,
        "description": (
            "任务 ID；不指定时为所有任务" if several else f"任务 ID，默认 {task_ids[0]}"
        ),
        "schema": {"type": "string", "enum": task_ids},
    }
    # Several tasks: without task_id the answer lists them all.
    status_schema = {"anyOf": [_ref("Status"), _ref("StatusList")]} if several else _ref("Status")
    status_ok = _json(
        _ok(status_schema),
        "任务状态；配置了多个任务且未指定 task_id 时为所有任务的列表（StatusList）",
    )

    def command(summary: str, description: str) -> dict[str, Any]:
        if several:
            description += (
                "未指定 task_id 时发给所有启用的任务（各自由负责的 worker 执行），"
                "应答为所有这些任务的新状态（StatusList）：全部生效时 200，否则 202，"
                "未生效的任务在列表中标明。"
            )
        operation: dict[str, Any] = {
            "summary": summary,
            "description": description,
            "tags": ["采集控制"],
            "parameters": [task_param],
            "responses": {
                "200": _json(_ok(status_schema), "命令已生效，返回新的状态"),
                "202": _json(_ok(status_schema), "命令已发送、尚未（全部）生效，返回当前状态"),
                "403": _error(FROM_OTHER_SITE),
                "404": _error("未配置的 task_id"),
                "415": _error(
                    "请求既不是 JSON（Content-Type: application/json）也没有 Authorization 头"
                ),
                "503": _retry_later("Kafka 不可用，或任务分区正在分配"),
            },
        }
        if protected:
            operation["security"] = [{"bearerAuth": []}]
            operation["responses"]["401"] = _error("缺少或错误的 Bearer token")
        return operation

    group_schema: dict[str, Any] = {"type": "string", "pattern": GROUP_PATTERN}
    if reserved_groups:
        group_schema["not"] = {"enum": list(reserved_groups)}
    low, high, default = BATCH_SIZE
    t_low, t_high, t_default = TIMEOUT_MS
    paths: dict[str, Any] = {
        "/consume": {
            "get": {
                "summary": "批量消费 job_data",
                "description": (
                    "用消费组读取最多 batch_size 条岗位消息。应答成功写出后才提交偏移量；"
                    "同组的并发调用互不重复，调用失败不会丢消息（至少一次）。"
                ),
                "tags": ["消费"],
                "parameters": [
                    {
                        "name": "batch_size",
                        "in": "query",
                        "required": False,
                        "description": "本次最多返回的条数",
                        "schema": {
                            "type": "integer",
                            "minimum": low,
                            "maximum": high,
                            "default": default,
                        },
                    },
                    {
                        "name": "timeout_ms",
                        "in": "query",
                        "required": False,
                        "description": "没有就绪数据时最多等待的毫秒数，到时返回已有的（可能为空）",
                        "schema": {
                            "type": "integer",
                            "minimum": t_low,
                            "maximum": t_high,
                            "default": t_default,
                        },
                    },
                    {
                        "name": "group",
                        "in": "query",
                        "required": False,
                        "description": (
                            f"消费组，默认 {config.kafka.consumer_group}；不同组各自记录位置"
                        ),
                        "schema": group_schema,
                    },
                ],
                "responses": {
                    "200": _json(
                        _ok(
                            {"type": "array", "items": _ref("Job")},
                            count={"type": "integer", "minimum": 0},
                        ),
                        "岗位列表与条数",
                    ),
                    "400": _error("参数不合法"),
                    "403": _error(FROM_OTHER_SITE),
                    "503": _retry_later("Kafka 不可用、消费组正在加入或消费组数已达上限"),
                },
            }
        },
        "/consume/stream": {
            "get": {
                "summary": "SSE 流式消费 job_data",
                "description": (
                    "text/event-stream：每条消息一个 `event: job`，`data:` 为岗位 JSON，"
                    "`id:` 为各分区的位置（如 `0:15,1:9,2:12`）。断线后带 `Last-Event-ID` "
                    "重连即从下一条继续，不丢不重。空闲时每隔不超过 15 秒发送心跳注释。"
                    "不影响 /consume 消费组的位置。读得太慢（落后超过 8 MiB）的客户端会被断开，"
                    "带 Last-Event-ID 重连即可继续。"
                ),
                "tags": ["消费"],
                "parameters": [
                    {
                        "name": "from",
                        "in": "query",
                        "required": False,
                        "description": "没有 Last-Event-ID 时从哪里开始",
                        "schema": {"enum": ["latest", "earliest"], "default": "latest"},
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "上次收到的事件 id，用于断点续传",
                        "schema": {"type": "string", "pattern": EVENT_ID_PATTERN},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "事件流（连接保持，直到客户端断开或服务停止）",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "400": _error("参数或 Last-Event-ID 不合法"),
                    "503": _retry_later("Kafka 不可用，或同时打开的流已达上限"),
                },
            }
        },
        "/status": {
            "get": {
                "summary": "采集进度、Kafka 积压与监控指标",
                "tags": ["状态"],
                "parameters": [task_param],
                "responses": {
                    "200": status_ok,
                    "404": _error("未配置的 task_id"),
                    "503": _retry_later("任务分区正在分配，或其所属 worker 无应答"),
                },
            }
        },
        "/status/history": {
            "get": {
                "summary": "近一小时的吞吐量与 Kafka 积压",
                "description": (
                    "每个任务的每分钟行数（由负责它的 worker 每 5 秒采样）与 job_data 的积压，"
                    "仪表盘的折线图用它。指定 task_id 时只含该任务。"
                ),
                "tags": ["状态"],
                "parameters": [task_param],
                "responses": {
                    "200": _json(_ok(_ref("HistoryBody")), "采样序列"),
                    "404": _error("未配置的 task_id"),
                    "503": _retry_later("worker 正在启动，或任务所属 worker 无应答"),
                },
            }
        },
        "/kafka": {
            "get": {
                "summary": "Kafka 的状态：是否可达、job_data 的消息、各消费组的积压、消息丢失",
                "description": (
                    "在 job_data 上提交过位置的每个消费组（默认消费组在前）的积压，按分区列出；"
                    "job_data 各分区真实的末尾偏移量；内置 broker 重启或主题被重建造成的消息丢失。"
                ),
                "tags": ["状态"],
                "responses": {"200": _json(_ok(_ref("KafkaStatus")), "Kafka 的状态")},
            }
        },
        "/messages/recent": {
            "get": {
                "summary": "job_data 或 job_rejects 中最新的消息",
                "description": (
                    "从各分区真实的末尾往前读，新的在前；job_rejects 的每条消息带有被拒绝的原因。"
                    "不属于任何消费组，不影响消费位置。"
                ),
                "tags": ["消费"],
                "parameters": [
                    {
                        "name": "topic",
                        "in": "query",
                        "required": False,
                        "description": "data：job_data；rejects：job_rejects",
                        "schema": {"enum": list(TOPICS), "default": "data"},
                    },
                    {
                        "name": "task_id",
                        "in": "query",
                        "required": False,
                        "description": "只列出该任务的消息；不指定时为所有任务",
                        "schema": {"type": "string", "enum": task_ids},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "最多返回的条数",
                        "schema": {
                            "type": "integer",
                            "minimum": LIMIT[0],
                            "maximum": LIMIT[1],
                            "default": LIMIT[2],
                        },
                    },
                ],
                "responses": {
                    "200": _json(_ok(_ref("RecentMessages")), "最新的消息"),
                    "404": _error("未配置的 task_id"),
                    "503": _retry_later("Kafka 不可用"),
                },
            }
        },
        "/crawl/start": {
            "post": command(
                "立即开始采集",
                "解除停止状态并立即开始一轮采集（此后按周期继续）。",
            )
        },
        "/crawl/stop": {
            "post": command(
                "停止采集",
                "在下一个分页边界停止采集并暂停周期调度；停止状态在重启后保持，直到 /crawl/start。",
            )
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus 指标",
                "tags": ["运维"],
                "responses": {
                    "200": {
                        "description": "Prometheus 文本格式",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/health": {
            "get": {
                "summary": "存活检查",
                "description": (
                    "进程在响应就返回 200；worker 已无法继续（内置 broker 退出）时返回 503。"
                ),
                "tags": ["运维"],
                "responses": {
                    "200": _json(
                        _ok({"type": "object", "properties": {"alive": {"const": True}}}),
                        "进程存活",
                    ),
                    "503": _error("worker 已无法继续，message 说明原因；它随即退出以便重启"),
                },
            }
        },
        "/ready": {
            "get": {
                "summary": "就绪检查",
                "description": "Kafka 可达、分区已分配、agent 在运行时返回 200，否则 503。",
                "tags": ["运维"],
                "responses": {
                    "200": _json(
                        _ok({"type": "object", "additionalProperties": {"type": "boolean"}}),
                        "就绪",
                    ),
                    "503": _retry_later("未就绪，message 列出未通过的检查"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "本文档（OpenAPI 3.1）",
                "tags": ["文档"],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 文档")},
            }
        },
        "/docs": {
            "get": {
                "summary": "交互式 API 文档（Swagger UI，资源随程序包发布，不依赖 CDN）",
                "tags": ["文档"],
                "responses": {
                    "200": {
                        "description": "HTML 页面",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/dashboard": {
            "get": _page(
                "text/html",
                "HTML 页面（脚本与样式随程序包发布，不访问任何外部地址）",
                "运维仪表盘：每个任务的进度、状态、吞吐量、积压与启停按钮",
            )
        },
        "/dashboard/app.js": {"get": _page("text/javascript", "脚本", "仪表盘的脚本")},
        "/dashboard/app.css": {"get": _page("text/css", "样式表", "仪表盘的样式")},
        "/dashboard/settings": {
            "get": {
                "summary": "仪表盘页面的设置（需要哪些令牌、刷新间隔）",
                "tags": ["仪表盘"],
                "responses": {"200": _json(_ok(_ref("DashboardSettings")), "设置")},
            }
        },
        "/": {
            "get": {
                "summary": "转到 /dashboard",
                "tags": ["仪表盘"],
                "responses": {
                    "302": {
                        "description": "重定向到仪表盘",
                        "headers": {"Location": {"schema": {"const": "/dashboard"}}},
                    }
                },
            }
        },
    }
    if reading_protected:
        for path in (
            "/consume",
            "/consume/stream",
            "/status",
            "/status/history",
            "/kafka",
            "/messages/recent",
        ):
            operation = paths[path]["get"]
            operation["security"] = [{"bearerAuth": []}]
            operation["responses"]["401"] = _error(
                "缺少或错误的 Bearer token（app.read_token 或 app.admin_token）"
            )
    for operations in paths.values():
        for operation in operations.values():
            # Every endpoint refuses query parameters it does not know.
            operation["responses"].setdefault("400", _error("参数不合法，或有未知的查询参数"))
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "jobstream HTTP API",
            "version": config.app.version,
            "description": (
                '招聘数据增量采集服务的 HTTP 接口。成功应答为 `{"code": 0, "data": ...}`，'
                '错误为 `{"code": <HTTP 状态码>, "message": "..."}`。'
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas()},
    }
    if protected or reading_protected:
        document["components"]["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "启停采集：app.admin_token（环境变量 ADMIN_TOKEN）；读取数据（/consume、"
                    "/consume/stream、/status）：app.read_token（READ_TOKEN）或 app.admin_token"
                ),
            }
        }
    return document
