"""Shared fixtures: a click runner, the shipped playbooks, and structlog reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = ROOT / "playbooks"

pytest_plugins: list[str] = ["tests.vcsim_support", "tests.temporal_support"]


@pytest.fixture
def runner() -> CliRunner:
    """A click runner that keeps stderr apart from stdout."""
    return CliRunner()


@pytest.fixture
def lab_playbook() -> Path:
    """The shipped lab playbook."""
    return PLAYBOOKS / "lab-2.1-to-2.3.yaml"


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """structlog's global configuration never leaks between tests."""
    yield
    structlog.reset_defaults()
