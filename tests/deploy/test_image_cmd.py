"""The image's CMD, run as is on the container configuration with only the outside world swapped.

No Docker engine here: the command from the Dockerfile runs as a subprocess, with the image's
ENV, config/config.yml.docker (api.base_url -> demo, kafka -> embedded, database -> tmp) and
WEB_PORT, in an empty working directory like the image's /app. It must become ready, answer
the probes that compose and Kubernetes use, and stop cleanly on SIGTERM as `docker stop` sends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dockerfile
import pytest
import yaml

from jobstream import config as jobstream_config
from jobstream.embedded.tansu import broker_binary
from tests.harness import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def _image() -> tuple[list[str], dict[str, str]]:
    """The CMD and the ENV of the Dockerfile."""
    commands = dockerfile.parse_file(str(REPO / "Dockerfile"))
    [cmd] = [c for c in commands if c.cmd == "CMD"]
    env: dict[str, str] = {}
    for command in commands:
        if command.cmd == "ENV":
            env.update(zip(command.value[::2], command.value[1::2], strict=True))
    return list(cmd.value), env


def _executable(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found is not None, f"{name} is not installed"
    return found


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_image_cmd_demo_embedded_ready_then_sigterm_exits_cleanly(tmp_path: Path) -> None:
    cmd, image_env = _image()
    config = yaml.safe_load((REPO / "config" / "config.yml.docker").read_text(encoding="utf-8"))
    config["api"]["base_url"] = "demo"
    config["kafka"]["bootstrap_servers"] = "embedded"
    config["kafka"]["embedded_port"] = free_port()
    config["database"]["path"] = str(tmp_path / "data" / "crawl_progress.db")
    config_path = tmp_path / "config" / "config.yml"
    config_path.parent.mkdir()
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (tmp_path / "data").mkdir()
    workdir = tmp_path / "app"
    workdir.mkdir()

    web_port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in jobstream_config.ENV_OVERRIDES and not k.startswith(("FAUST_", "F_", "WEB_"))
    }
    env.update(image_env)
    # The image's paths, here: its config, Faust's data directory, the unpacked broker binary.
    env.update(
        CONFIG_PATH=str(config_path),
        APP_DATADIR=str(tmp_path / "state"),
        CALF_TANSU_BIN=broker_binary(),
        WEB_PORT=str(web_port),
        # The image has jobstream installed; here the checkout provides it.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [_executable(cmd[0]), *cmd[1:]],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{web_port}"

    def output() -> str:
        return log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while _status(f"{base}/ready") != 200:
            assert process.poll() is None, f"exited with {process.returncode}:\n{output()}"
            assert time.monotonic() < deadline, f"not ready after {READY_TIMEOUT}s:\n{output()}"
            time.sleep(0.2)
        assert _status(f"{base}/health") == 200

        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_TIMEOUT}s after SIGTERM:\n{output()}")
        assert code == 0, output()
        # The embedded broker it started is gone with it.
        wait_until(lambda: not _group_alive(process.pid), 5, "no child process left running")
        assert "Traceback" not in log_path.read_text(encoding="utf-8", errors="replace")
        # Nothing lands in the working directory: in the image /app is root's, and in
        # Kubernetes the root filesystem is read-only.
        assert list(workdir.iterdir()) == []
    finally:
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
