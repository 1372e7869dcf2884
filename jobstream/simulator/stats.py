"""Request counters, so tests can assert how many token and data calls a crawl made."""

from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.responses: Counter[tuple[str, int]] = Counter()
        self.grants: Counter[str] = Counter()

    def count_request(self, endpoint: str) -> None:
        self.requests[endpoint] += 1

    def count_response(self, endpoint: str, status: int) -> None:
        self.responses[(endpoint, status)] += 1

    def count_grant(self, grant_type: str) -> None:
        self.grants[grant_type] += 1

    def status_count(self, endpoint: str, status: int) -> int:
        return self.responses[(endpoint, status)]

    def reset(self) -> None:
        self.requests.clear()
        self.responses.clear()
        self.grants.clear()

    def to_json(self) -> dict[str, Any]:
        statuses: dict[str, dict[str, int]] = {}
        for (endpoint, status), n in sorted(self.responses.items()):
            statuses.setdefault(endpoint, {})[str(status)] = n
        return {
            "requests": dict(self.requests),
            "statuses": statuses,
            "grants": dict(self.grants),
        }
