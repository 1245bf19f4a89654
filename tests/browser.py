"""A real browser for the dashboard tests: Debian's chromium driven by Playwright for Python.

Playwright's Python package comes with the test extra (``pip install -e '.[test]'``); the
browser is Debian's ``chromium`` (with the ``fonts-wqy-zenhei`` CJK font so that Chinese
renders as glyphs, not boxes), installed with apt when it is missing and the tests run as
root - as ``.ci/run`` does - never a browser build downloaded by Playwright. Where neither is
possible the tests skip saying why; under CI (``CI`` set) they fail instead, so a CI run
never passes without having driven the browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from typing import Any

PACKAGES = ["chromium", "fonts-wqy-zenhei"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _has_cjk_font() -> bool:
    r = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
    return bool(r.stdout.strip())


def ensure_browser() -> str:
    """The chromium executable, installing Debian's packages when needed; a ``str``
    starting with ``"unavailable: "`` says why there is none."""
    if _chromium() and shutil.which("fc-list") and _has_cjk_font():
        return _chromium() or ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "unavailable: chromium or a CJK font is missing and cannot be installed " \
               "(not root with apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", *PACKAGES]
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=1500, check=False)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900,
                       check=False)
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=1500, check=False)
    if r.returncode != 0 or not _chromium():
        return "unavailable: apt-get install chromium failed: " + \
            r.stderr.decode(errors="replace")[-300:]
    return _chromium() or ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app served by uvicorn on a loopback port in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if time.monotonic() - t0 > 30:
                raise RuntimeError("uvicorn did not start in 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
