"""Keeping the embedded broker tied to its worker: the child dies with its parent, and a broker
that an earlier worker of ours left behind is recognised (and only then replaced).

A broker child is started through a small guard (a Python one-liner that execs the broker):
on Linux it asks for SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`), so a worker
killed with -9 or by the OOM killer does not leave its broker holding the port. The guard also
puts `JOBSTREAM_BROKER_OWNER=<pid>:<start time>` in the broker's environment: that marks the
process as ours and names the worker that started it. A later worker finding its port taken
looks for such a process listening there whose owner is gone; anything else on the port (a
broker of a worker that still runs, any other program) is left alone.

Where /proc does not exist (macOS) the guard still runs the broker, without the death signal,
and no stale broker is ever recognised: the port conflict is reported as before.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

OWNER_ENV = "JOBSTREAM_BROKER_OWNER"
PROC = Path("/proc")

# Run as `python -I -S -c GUARD <parent pid> <broker argv...>`: a fresh interpreter (not a fork
# of the worker, whose threads make preexec_fn unsafe), started in a few milliseconds.
PR_SET_PDEATHSIG = 1
GUARD = f"""\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, signal.SIGKILL)
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the parent died before the signal was armed
os.execv(sys.argv[2], sys.argv[2:])
"""


def guarded(command: list[str], parent: int | None = None) -> list[str]:
    """`command` run through the guard: killed when process `parent` (default: this one) dies."""
    return [sys.executable, "-I", "-S", "-c", GUARD, str(parent or os.getpid()), *command]


def owner_mark(pid: int | None = None) -> str:
    """The value of OWNER_ENV for a broker started by process `pid` (default: this one)."""
    pid = pid or os.getpid()
    return f"{pid}:{start_time(pid) or ''}"


def start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), or None if it does not exist:
    with the pid, it tells a process apart from a later one that reuses the pid."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold anything.
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] == "Z":  # a zombie is dead, only not yet reaped
        return None
    return fields[19]


def alive(mark: str) -> bool:
    """Whether the process named by an OWNER_ENV value still runs."""
    pid, _, started = mark.partition(":")
    return pid.isdigit() and start_time(int(pid)) == started


@dataclass(frozen=True)
class BrokerProcess:
    """A broker one of our workers started, listening on a given port."""

    pid: int
    owner: str  # OWNER_ENV: "<pid>:<start time>" of the worker that started it

    @property
    def owner_pid(self) -> int:
        return int(self.owner.partition(":")[0] or 0)

    @property
    def stale(self) -> bool:
        """The worker that started it is gone: nobody will stop it."""
        return not alive(self.owner)


def brokers_on(port: int, host: str = "127.0.0.1") -> list[BrokerProcess]:
    """Running processes marked as our brokers whose command line listens on host:port."""
    listener = f"tcp://{host}:{port}".encode()
    found = []
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if listener not in argv:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        prefix = OWNER_ENV.encode() + b"="
        mark = next((v[len(prefix) :] for v in environ if v.startswith(prefix)), None)
        if mark is not None and start_time(int(entry.name)) is not None:
            found.append(BrokerProcess(int(entry.name), mark.decode(errors="replace")))
    return found


async def kill_and_wait(pid: int, within: float = 5.0) -> bool:
    """SIGKILL process `pid` and wait until it is dead (a zombie counts); False if it is not."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + within
    while start_time(pid) is not None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
