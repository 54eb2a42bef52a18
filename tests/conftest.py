"""Shared fixtures: a click runner, the shipped playbooks (and a private copy of them),
background runners, and structlog reset per test."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from tests.run_support import LAB, copy_playbooks, spawn

pytest_plugins: list[str] = ["tests.vcsim_support", "tests.temporal_support"]


@pytest.fixture
def runner() -> CliRunner:
    """A click runner that keeps stderr apart from stdout."""
    return CliRunner()


@pytest.fixture
def lab_playbook() -> Path:
    """The shipped lab playbook."""
    return LAB


@pytest.fixture
def books(tmp_path: Path) -> Path:
    """A private copy of the shipped playbooks directory (to edit)."""
    return copy_playbooks(tmp_path)


@pytest.fixture
def live() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``nsxt-upgrade`` runners in the background; any still alive at the end is
    killed."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str | Path) -> subprocess.Popen[str]:
        proc = spawn(*args)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """structlog's global configuration never leaks between tests."""
    yield
    structlog.reset_defaults()
