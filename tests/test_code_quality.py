"""The linters the project is held to run with the suite, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_no_problems() -> None:
    # No cache: a stale one once hid an import of a renamed module.
    result = run("ruff", "check", "--no-cache", "jobstream", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_type_errors() -> None:
    result = run("mypy", "jobstream")
    assert result.returncode == 0, result.stdout + result.stderr
