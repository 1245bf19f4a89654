"""Process plumbing for the service's worker processes (Linux; elsewhere a no-op).

A server's job processes and, under ``vpp serve --workers N``, its uvicorn worker processes
must not outlive it: a ``kill -9`` of the server would otherwise leave them running,
holding the listening socket, so that a restart fails with "address already in use".
:func:`die_with_parent` asks the kernel to signal a process when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); :func:`owner_id` / :func:`owner_gone` name a process so that
another process on the same host can tell at once that it has died (its pid no longer runs
the same process), rather than waiting for its lease to expire.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1
#: Set by ``vpp serve --workers N`` to its supervisor's pid: a worker process started by it
#: stops when it dies, instead of keeping the listening socket.
SUPERVISOR_ENV = "VPP_SERVE_SUPERVISOR_PID"


def _prctl_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(sig: int = signal.SIGKILL, parent_pid: int | None = None) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies; if the parent
    (``parent_pid``) is already gone, exit now. Forks of this process (a simulation's
    process pool) get the same setting, so the whole tree goes with the server."""
    if not _prctl_pdeathsig(sig):
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the kernel could be told
    os.register_at_fork(after_in_child=lambda: _prctl_pdeathsig(signal.SIGKILL))


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22),
    or None where there is no such process or no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_id() -> str:
    """``host:pid:start`` of this process: unique on the host even when pids are reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid()) or '?'}"


def owner_gone(owner: str | None) -> bool:
    """True when ``owner`` (an :func:`owner_id`) names a process of this host that no
    longer runs; False when it runs or cannot be checked from here (another host)."""
    if not owner:
        return False
    try:
        host, pid, start = owner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname() or start == "?" or not os.path.isdir("/proc/self"):
        return False
    return _start_ticks(int(pid)) != start
