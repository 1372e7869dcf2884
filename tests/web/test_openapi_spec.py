"""The OpenAPI document as built from the configuration, and the packaged docs assets."""

from __future__ import annotations

import re

from jobstream.config import from_mapping
from jobstream.web import openapi
from jobstream.web.docs import STATIC_DIR


def test_openapi_spec_documents_errors_and_token_when_set() -> None:
    open_spec = openapi.spec(from_mapping({}))
    guarded = openapi.spec(from_mapping({"app": {"admin_token": "t"}}), reserved_groups=("x",))
    assert "security" not in open_spec["paths"]["/crawl/stop"]["post"]
    assert guarded["paths"]["/crawl/stop"]["post"]["security"] == [{"bearerAuth": []}]
    assert "401" in guarded["paths"]["/crawl/start"]["post"]["responses"]
    for operations in guarded["paths"].values():
        for operation in operations.values():
            assert "400" in operation["responses"]
    consume = guarded["paths"]["/consume"]["get"]
    schemas = {p["name"]: p["schema"] for p in consume["parameters"]}
    assert schemas["batch_size"] | {} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 10,
    }
    assert schemas["group"]["not"] == {"enum": ["x"]}


def test_docs_assets_are_packaged_and_local() -> None:
    page = (STATIC_DIR / "docs.html").read_text()
    sources = set(re.findall(r'(?:src|href)="([^"]+)"', page)) - {"/openapi.json"}
    assert sources and all(s.startswith("/docs/static/") for s in sources), sources
    for source in sources:
        assert (STATIC_DIR / source.removeprefix("/docs/static/")).is_file(), source
    assert "http" not in (STATIC_DIR / "docs.js").read_text()
