"""The OpenAPI document as made from the routes' declarations under a configuration, and the
packaged docs assets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from jobstream.config import from_mapping
from jobstream.web import openapi
from jobstream.web.docs import STATIC_DIR
from jobstream.web.routes import ROUTES

CONFIGS = {
    "open": {},
    "admin": {"app": {"admin_token": "t"}},
    "both": {"app": {"admin_token": "t", "read_token": "r"}},
    "tasks": {"api": {"task_id": ["t1", "t2"]}},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_openapi_spec_says_what_each_endpoint_enforces(name: str) -> None:
    config = from_mapping(CONFIGS[name])
    document = openapi.spec(config, ROUTES)
    assert set(document["paths"]) == set(ROUTES)
    for path, view in ROUTES.items():
        operations = document["paths"][path]
        assert set(operations) == {m.lower() for m in view.methods_allowed - {"HEAD"}}
        for method, operation in operations.items():
            responses = operation["responses"]
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert documented == view.query_names(), path
            assert "400" in responses  # every endpoint refuses unknown parameters
            token = openapi.token_of(view, config)
            assert ("security" in operation) == bool(token) == ("401" in responses), path
            assert ("403" in responses) == view.changes_state, path
            bare_post_refused = view.changes_state and method == "post" and not token
            assert ("415" in responses) == bare_post_refused, path
            assert ("requestBody" in operation) == bare_post_refused, path
            if "503" in responses:
                assert "Retry-After" in responses["503"]["headers"]


def test_openapi_spec_parameters_from_their_declarations() -> None:
    document = openapi.spec(from_mapping({"api": {"task_id": ["t1", "t2"]}}), ROUTES)
    consume = document["paths"]["/consume"]["get"]
    schemas = {p["name"]: p["schema"] for p in consume["parameters"]}
    assert schemas["batch_size"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 10,
    }
    group = next(p for p in consume["parameters"] if p["name"] == "group")
    assert "jobstream.http.<名称>" in group["description"]
    status = document["paths"]["/status"]["get"]
    (task,) = status["parameters"]
    assert task["schema"]["enum"] == ["t1", "t2"] and "404" in status["responses"]
    stream = document["paths"]["/consume/stream"]["get"]
    assert {p["name"]: p["in"] for p in stream["parameters"]} == {
        "from": "query",
        "Last-Event-ID": "header",
    }


def _refs(value: Any) -> set[str]:
    return set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(value)))


def test_openapi_spec_every_reference_resolves() -> None:
    document = openapi.spec(from_mapping({}), ROUTES)
    assert _refs(document) <= set(document["components"]["schemas"])
    assert {"Job", "Reject", "Status", "StatusList", "ErrorBody"} <= _refs(document) | set(
        document["components"]["schemas"]
    )


def test_openapi_spec_names_no_token_value() -> None:
    document = openapi.spec(
        from_mapping({"app": {"admin_token": "adm-x1", "read_token": "rd-x2"}}), ROUTES
    )
    assert "adm-x1" not in json.dumps(document) and "rd-x2" not in json.dumps(document)


def test_docs_assets_are_packaged_and_local() -> None:
    page = (STATIC_DIR / "docs.html").read_text()
    sources = set(re.findall(r'(?:src|href)="([^"]+)"', page)) - {"/openapi.json"}
    assert sources and all(s.startswith("/docs/static/") for s in sources), sources
    for source in sources:
        assert (STATIC_DIR / source.removeprefix("/docs/static/")).is_file(), source
    assert "http" not in (STATIC_DIR / "docs.js").read_text()
    # No inline style or script: the page's policy allows neither.
    assert "<style" not in page and "style=" not in page
    assert re.findall(r"<script[^>]*>([^<]*)</script>", page) == ["", ""]
