"""The suite's own check that no secret reaches a log (tests/conftest.py): it finds a secret
in any form in what was written since it last looked, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import SecretWatch


def test_secret_watch_finds_each_form_once_and_only_new_lines(tmp_path: Path) -> None:
    watch = SecretWatch()
    secret = "pa55-w0rd-for-the-watch"
    watch.watch(secret, "https://hooks.example/bot/v2/hook/0123456789abcdef", "demo")
    log = tmp_path / "worker.log"
    log.write_text("starting; api.base_url is 'demo'; see https://hooks.example/other\n")
    watch.watch_file(log)
    assert watch.leaks() == []

    with log.open("a") as out:
        out.write(f"refused: {json.dumps({'p': secret})[:18]}\n")  # escaped and cut
    watch.lines.append("jobstream.source INFO hook 0123456789ab failed")
    found = watch.leaks()
    assert len(found) == 2 and "worker.log" in found[0] and "log records" in found[1]
    assert watch.leaks() == []  # each line is looked at once
