"""The fleet tests' shared fixture: ``fleet worker`` subprocesses, killed at the end."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fleet.test_fleet import spawn


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``fleet worker`` subprocesses; all killed at the end of the test."""
    started: list[subprocess.Popen[str]] = []

    def start(fleet: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = spawn("worker", fleet, log=tmp_path / "worker.log", env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
