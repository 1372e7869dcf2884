"""Request counters, so tests can assert how many token and data calls a crawl made, and who
made a task's data calls in what order."""

import time
from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.responses: Counter[tuple[str, int]] = Counter()
        self.grants: Counter[str] = Counter()
        self.cursor: Counter[str] = Counter()
        self.task_requests: Counter[str] = Counter()
        self.task_rows: Counter[str] = Counter()
        # Per task, its data requests in arrival order, as runs of one client:
        # [client, requests, first, last] (times in seconds on the monotonic clock).
        self.task_clients: dict[str, list[list[Any]]] = {}
        # Per task, when each data request arrived (monotonic seconds): rates and shares.
        self.task_arrivals: dict[str, list[float]] = {}
        # Per account (user name; "" for a request that names none the simulator knows): its
        # token and data requests, their answers, and when each arrived.
        self.account_requests: Counter[str] = Counter()
        self.account_responses: Counter[tuple[str, int]] = Counter()
        self.account_arrivals: dict[str, list[float]] = {}

    def count_request(self, endpoint: str) -> None:
        self.requests[endpoint] += 1

    def count_response(self, endpoint: str, status: int) -> None:
        self.responses[(endpoint, status)] += 1

    def count_grant(self, grant_type: str) -> None:
        self.grants[grant_type] += 1

    def count_task_request(self, task_id: str, client: str = "") -> None:
        """A data request naming `task_id`, whatever it was answered (faults included), made
        with a token of `client`."""
        self.task_requests[task_id] += 1
        now = round(time.monotonic(), 3)
        self.task_arrivals.setdefault(task_id, []).append(now)
        runs = self.task_clients.setdefault(task_id, [])
        if runs and runs[-1][0] == client:
            runs[-1][1] += 1
            runs[-1][3] = now
        else:
            runs.append([client, 1, now, now])

    def count_account_request(self, account: str) -> None:
        self.account_requests[account] += 1
        self.account_arrivals.setdefault(account, []).append(round(time.monotonic(), 3))

    def count_account_response(self, account: str, status: int) -> None:
        self.account_responses[(account, status)] += 1

    def count_page(self, task_id: str, rows: int) -> None:
        self.task_rows[task_id] += rows

    def count_cursor(self, kind: str) -> None:
        self.cursor[kind] += 1

    def status_count(self, endpoint: str, status: int) -> int:
        return self.responses[(endpoint, status)]

    def reset(self) -> None:
        for counter in (
            self.requests,
            self.responses,
            self.grants,
            self.cursor,
            self.task_requests,
            self.task_rows,
            self.account_requests,
            self.account_responses,
        ):
            counter.clear()
        self.task_clients.clear()
        self.task_arrivals.clear()
        self.account_arrivals.clear()

    def to_json(self) -> dict[str, Any]:
        statuses: dict[str, dict[str, int]] = {}
        for (endpoint, status), n in sorted(self.responses.items()):
            statuses.setdefault(endpoint, {})[str(status)] = n
        accounts: dict[str, dict[str, Any]] = {
            account: {"requests": n, "statuses": {}, "arrivals": self.account_arrivals[account]}
            for account, n in sorted(self.account_requests.items())
        }
        for (account, status), n in sorted(self.account_responses.items()):
            accounts[account]["statuses"][str(status)] = n
        return {
            "requests": dict(self.requests),
            "statuses": statuses,
            "grants": dict(self.grants),
            "cursor": dict(self.cursor),
            "tasks": {
                task: {"requests": self.task_requests[task], "rows": self.task_rows[task]}
                for task in sorted(self.task_requests.keys() | self.task_rows.keys())
            },
            "task_clients": {task: runs for task, runs in sorted(self.task_clients.items())},
            "task_arrivals": dict(sorted(self.task_arrivals.items())),
            "accounts": accounts,
        }
