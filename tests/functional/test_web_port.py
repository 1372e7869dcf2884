"""WEB_PORT, Faust's own variable: jobstream reads and checks it as `app.web_port`, and Faust gets
the checked port. A bad value stops the real worker with one line naming it, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobstream.app import JobstreamApp
from tests.harness import ROOT

SHIPPED = ROOT / "config" / "config.yml"


@pytest.mark.parametrize(("web_port", "port"), [("8123", 8123), ("", 8000)])
def test_app_web_port_variable_reaches_faust_checked(
    monkeypatch: pytest.MonkeyPatch, web_port: str, port: int
) -> None:
    # "" is not set, as for every variable; Faust itself would stop on int("").
    monkeypatch.setenv("CONFIG_PATH", str(SHIPPED))
    monkeypatch.setenv("WEB_PORT", web_port)
    app = JobstreamApp(autodiscover=False)
    assert app.conf.web_port == port == app.settings.app.web_port


def test_worker_bad_web_port_exits_with_one_line_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "jobstream", "worker"],
        cwd=tmp_path,
        env={"CONFIG_PATH": str(SHIPPED), "WEB_PORT": "abc", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert output == [
        "jobstream: configuration error: "
        "app.web_port (from WEB_PORT): expected an integer, got 'abc'"
    ]
