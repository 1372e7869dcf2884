"""The OpenAPI 3.1 description, made of the routes and each endpoint's declarations: its
methods, parameters, access (a token, when one is configured), whether it changes state, and
its answers (`Endpoint.doc`). Nothing is said twice: what an endpoint requires is what it
enforces.

What the declarations imply:
- every operation may answer 400 (a bad or unknown parameter);
- one that needs a configured token answers 401 without it, and says so (`security`);
- one that changes state answers 403 to another site's browser request, and as a POST, while
  no token is asked for, needs a JSON body (or an Authorization header): 415 otherwise;
- a parameter's own refusals (an unknown task: 404);
- every 503 carries `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from jobstream.config import Config
from jobstream.records import Job, Reject
from jobstream.web.endpoint import Answer, Body, Endpoint, Ok, Redirect, Refusal
from jobstream.web.responses import JSON_TYPE, ErrorBody
from jobstream.web.status import TaskUnavailable

REF = "#/components/schemas/{name}"
FROM_OTHER_SITE = "来自其他网站的浏览器请求（Sec-Fetch-Site 或 Origin 表明）"
BAD_PARAMETER = "参数不合法，或有未知的查询参数"
NO_TOKEN = "缺少或错误的 Bearer token（{token}）"
BARE_POST = "请求既不是 JSON（Content-Type: application/json）也没有 Authorization 头"
# Schemas listed whatever the endpoints say: the records other programs read from Kafka, and
# the entry StatusList refers to by name (its items are one of two Structs, untagged).
ALSO = (Job, Reject, TaskUnavailable)


def spec(config: Config, routes: Mapping[str, type[Endpoint]]) -> dict[str, Any]:
    """The document for `routes` (`jobstream.web.routes.ROUTES`: every route the worker
    serves) under `config`."""
    schemas = _Schemas()
    paths = {
        path: {
            method.lower(): _operation(view, method, config, schemas)
            for method in sorted(view.methods_allowed - {"HEAD"})
        }
        for path, view in routes.items()
    }
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
        "components": {"schemas": schemas.components(ALSO)},
    }
    if config.app.admin_token or config.app.read_token:
        document["components"]["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "启停采集：app.admin_token（环境变量 ADMIN_TOKEN）；读取数据（/consume、"
                    "/consume/stream、/status、/status/history）：app.read_token（READ_TOKEN）"
                    "或 app.admin_token"
                ),
            }
        }
    return document


def token_of(view: type[Endpoint], config: Config) -> str:
    """The token `view` asks for under `config` (its setting's name), or "" when it is open."""
    if view.access == "admin" and config.app.admin_token:
        return "app.admin_token"
    if view.access == "read" and config.app.read_token:
        return "app.read_token 或 app.admin_token"
    return ""


def _operation(
    view: type[Endpoint], method: str, config: Config, schemas: _Schemas
) -> dict[str, Any]:
    doc = view.doc
    operation: dict[str, Any] = {"summary": doc.summary, "tags": [doc.tag]}
    if doc.description:
        operation["description"] = doc.description
    declared = view.declared_params()
    if declared:
        operation["parameters"] = [
            {
                "name": param.name,
                "in": param.where,
                "required": False,
                "description": param.describe(config),
                "schema": param.schema(config),
            }
            for param in declared
        ]
    answers: dict[int, Answer] = dict(doc.answers)
    answers[400] = Refusal(BAD_PARAMETER)
    for param in declared:
        for status, why in param.refusals.items():
            answers.setdefault(status, Refusal(why))
    token = token_of(view, config)
    if token:
        operation["security"] = [{"bearerAuth": []}]
        answers[401] = Refusal(NO_TOKEN.format(token=token))
    if view.changes_state:
        answers[403] = Refusal(FROM_OTHER_SITE)
        if method == "POST" and not token:
            answers[415] = Refusal(BARE_POST)
            operation["requestBody"] = {
                "required": True,
                "description": (
                    "任意 JSON（例如 `{}`），内容不被读取：JSON 请求（或带 Authorization 头的"
                    "请求）是其他网站的页面不经浏览器预检无法发出的"
                ),
                "content": {JSON_TYPE: {"schema": {}}},
            }
    operation["responses"] = {
        str(status): _response(answer, status, schemas)
        for status, answer in sorted(answers.items())
    }
    return operation


def _response(answer: Answer, status: int, schemas: _Schemas) -> dict[str, Any]:
    if isinstance(answer, Ok):
        data = answer.data if isinstance(answer.data, tuple) else (answer.data,)
        alternatives = [schemas.of(t) for t in data]
        extra = {name: schemas.of(t) for name, t in answer.extra.items()}
        body = {
            "type": "object",
            "required": ["code", "data", *extra],
            "properties": {
                "code": {"const": 0},
                "data": alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives},
                **extra,
            },
        }
        return {"description": answer.description, "content": {JSON_TYPE: {"schema": body}}}
    if isinstance(answer, Body):
        content = {answer.media_type: {"schema": dict(answer.schema)}}
        return {"description": answer.description, "content": content}
    if isinstance(answer, Redirect):
        location = {"Location": {"schema": {"const": answer.location}}}
        return {"description": answer.description, "headers": location}
    refusal: dict[str, Any] = {
        "description": answer.description,
        "content": {JSON_TYPE: {"schema": schemas.of(ErrorBody)}},
    }
    if status == 503:
        refusal["headers"] = {
            "Retry-After": {"description": "建议的重试间隔（秒）", "schema": {"type": "string"}}
        }
    return refusal


class _Schemas:
    """The JSON Schema of each type the answers use, its Structs gathered as components."""

    def __init__(self) -> None:
        self._types: list[Any] = []

    def of(self, type_: Any) -> dict[str, Any]:
        (schema,), _ = msgspec.json.schema_components([type_], ref_template=REF)
        self._types.append(type_)
        return schema

    def components(self, also: Iterable[Any]) -> dict[str, Any]:
        _, components = msgspec.json.schema_components([*self._types, *also], ref_template=REF)
        return dict(sorted(components.items()))
