"""``python -m service.serve HOST PORT WORKERS``: uvicorn's supervisor of ``vpp serve
--workers N`` (N > 1), configured from the environment (:class:`service.config.Settings`).

``vpp serve`` migrates the database once, then replaces itself with this small main module:
uvicorn starts its workers with multiprocessing's spawn method, which imports the parent's
main module in each worker before the worker can answer uvicorn's health checks, and the
full ``vpp`` command is too heavy for that on a busy machine (workers were killed as hung
and restarted in a loop).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import uvicorn

from service.procs import SUPERVISOR_ENV, die_with_parent


def create_worker_app() -> Any:
    """uvicorn's factory in each worker: first stop with the supervisor (or exit now if
    it is already gone), then build the app from the environment."""
    die_with_parent(signal.SIGTERM, int(os.environ[SUPERVISOR_ENV]))
    from service.app import create_app

    return create_app()


def main(argv: list[str]) -> None:
    host, port, workers = argv[0], int(argv[1]), int(argv[2])
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    uvicorn.run("service.serve:create_worker_app", factory=True, host=host, port=port,
                workers=workers, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
