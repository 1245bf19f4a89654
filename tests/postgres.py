"""A throw-away PostgreSQL server for the storage tests.

Uses the Debian server binaries (``/usr/lib/postgresql/<version>/bin``); when they are
missing and the tests run as root with apt, installs Debian's ``postgresql`` package first.
Runs as the ``postgres`` system user when the tests run as root (the server refuses root),
on a free loopback port, with its data in a temporary folder, fsync off. If any step is
impossible the reason is returned, and the tests that need it skip with that reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Server:
    port: int
    data: Path
    bindir: Path
    prefix: list[str]
    options: str = ""

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = "vpp_" + uuid.uuid4().hex[:12]
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def pause(self) -> None:
        """Stop the server, keeping its data (a database outage)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the paused server again on the same port."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l",
                  str(self.data.parent / "server.log"), "-o", self.options, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.data.parent, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run([*self.prefix, str(self.bindir / tool), *args], check=check,
                       capture_output=True, timeout=120)


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _install() -> str | None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "PostgreSQL server binaries not found and cannot install them (not root + apt)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900)
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    if r.returncode != 0:
        return "apt-get install postgresql failed: " + r.stderr.decode(errors="replace")[-300:]
    return None


def start() -> Server | str:
    """A running server, or the reason there is none."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install 'psycopg[binary]')"
    bindir = _bindir()
    if bindir is None:
        problem = _install()
        bindir = _bindir()
        if bindir is None:
            return problem or "PostgreSQL server binaries not found after installing"
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="vpp-pg-", dir="/tmp"))
    data = root / "data"
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            return "running as root without runuser: cannot start PostgreSQL as another user"
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            return "no 'postgres' system user to run the server as"
        os.chown(root, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    server = Server(port, data, bindir, prefix, options)
    try:
        server._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--no-sync")
        server._run("pg_ctl", "-D", str(data), "-w", "-l", str(root / "server.log"), "-o",
                    options, "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        out = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        return f"could not start PostgreSQL: {out.decode(errors='replace')[-300:]}"
    return server
