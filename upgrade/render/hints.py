"""The next command to give an operator: what ``status`` and the live display suggest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def resume_command(state_dir: Path | None) -> str:
    """``nsxt-upgrade resume``, naming ``state_dir`` when one was given."""
    return "nsxt-upgrade resume" + (f" --state-dir {state_dir}" if state_dir else "")


def resume_hint(state_dir: Path | None) -> str:
    """What to do after a pause with failed units: two commands, each one complete."""
    resume = resume_command(state_dir)
    return (f"continue with `{resume} --retry-failed` to try the failed units again, or "
            f"`{resume} --skip UNIT` to leave one as it is")


def paused_hint(state_dir: Path | None, failed: bool, by_window: bool = False) -> str:
    """What to do about a paused run: retry or skip its failed units, wait for the
    maintenance window, or simply continue."""
    if failed:
        return resume_hint(state_dir)
    resume = resume_command(state_dir)
    if by_window:
        return f"continue when the window opens with `{resume} --wait` (it sleeps until then)"
    return f"continue with `{resume}`"


def failed_hint(state_dir: Path | None) -> str:
    """What to do about a failed run (on_error: abort)."""
    return f"fix the cause, then `{resume_command(state_dir)} --retry-failed`"


def next_step(doc: Mapping[str, Any], state_dir: Path) -> str | None:
    """The command that moves the run of the ``status`` document ``doc`` on, if any."""
    if doc["state"] == "paused":
        return paused_hint(state_dir, bool(doc["units"]["failed"]),
                           bool((doc.get("window") or {}).get("paused_by_window")))
    if doc["state"] == "failed":
        return failed_hint(state_dir)
    if doc["state"] == "aborted":
        return (f"closed for good; start afresh with `nsxt-upgrade run PLAYBOOK --state-dir "
                f"{state_dir}` (this run's journal moves under {state_dir / 'runs'}/)")
    return None
