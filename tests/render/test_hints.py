"""One source of hints (issue 21 item 10): the run's last line, ``status`` and the report
say the same next command.

* A failed pre-check is no unit, but ``resume`` alone stops at it again: after one,
  ``status`` says ``--retry-failed`` as the run did.
* A run paused by its maintenance window closing, with a failed host: ``resume`` alone
  pauses again at once, so the hint needs ``--wait`` as well as ``--retry-failed``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from tests.run_support import copy_playbooks, edit, nsxt
from upgrade.render.hints import RunFacts, next_command

STATE = Path("/srv/upgrade/state")


def _last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def test_status_after_a_failed_precheck_says_retry_failed_as_the_run_did(
        tmp_path: Path) -> None:
    books = copy_playbooks(tmp_path)
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text() + "faults:\n  - {unit: system, op: precheck, "
                         "kind: fail}\n")
    state = tmp_path / "state"
    ran = nsxt("run", books / "lab-2.1-to-2.3.yaml", "--yes", "--state-dir", state)
    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "paused: precheck failed" in ran.stdout
    told = _last_line(ran.stdout)
    assert f"`nsxt-upgrade resume --state-dir {state} --retry-failed`" in told
    status = nsxt("status", "--state-dir", state)
    assert status.returncode == 0, status.stderr
    assert _last_line(status.stdout) == told
    # and the hint is right: resume alone stops at the pre-check again, --retry-failed runs
    again = nsxt("resume", "--state-dir", state)
    assert again.returncode == 3, again.stdout + again.stderr
    assert "needs attention: precheck" in again.stdout and _last_line(again.stdout) == told
    report = nsxt("report", "--state-dir", state, "--format", "markdown")
    assert told in report.stdout
    retried = nsxt("resume", "--state-dir", state, "--retry-failed")
    assert retried.returncode == 0, retried.stdout + retried.stderr


@pytest.mark.timeout(90)
def test_a_window_close_with_a_failed_host_asks_for_wait_and_retry_failed(
        tmp_path: Path) -> None:
    """Real clock at --speed 500: pre-check, upload and coordinator take 36 simulated
    minutes, esx-01 15 more; esx-02 starts before the window closes (65 minutes from
    now) and fails (the budget of 50 % lets the phase go on); the window closes; the run
    pauses with a failed host."""
    books = copy_playbooks(tmp_path)
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text() + "faults:\n  - {unit: esx-02, op: upgrade, "
                         "kind: fail}\n")
    now = dt.datetime.now(dt.UTC)
    closes = (now + dt.timedelta(minutes=66)).replace(second=0, microsecond=0)
    opens = closes + dt.timedelta(hours=4)
    book = edit(books / "lab-2.1-to-2.3.yaml", "retries: 2\n",
                "retries: 0\nmax_fail_percentage: {hosts: 50}\n"
                "window: {days: [mon, tue, wed, thu, fri, sat, sun], "
                f'start: "{opens:%H:%M}", end: "{closes:%H:%M}", tz: "UTC"}}\n')
    state = tmp_path / "state"
    ran = nsxt("run", book, "--yes", "--state-dir", state, "--clock", "real", "--speed", "500",
               timeout=60)
    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "maintenance window is closed" in ran.stdout and "failed: esx-02" in ran.stdout
    told = _last_line(ran.stdout)
    resume = f"nsxt-upgrade resume --state-dir {state}"
    assert f"`{resume} --wait --retry-failed`" in told and f"`{resume} --wait --skip UNIT`" \
        in told
    status = nsxt("status", "--state-dir", state)
    assert _last_line(status.stdout) == told
    report = nsxt("report", "--state-dir", state, "--format", "markdown")
    assert told in report.stdout


@pytest.mark.parametrize(("facts", "expected"), [
    (RunFacts("paused"), "continue with `R`"),
    (RunFacts("paused", by_window=True),
     "continue when the window opens (--wait sleeps until then) with `R --wait`"),
    (RunFacts("paused", failed=True), "continue with `R --retry-failed` to try the failed "
     "units again, or `R --skip UNIT` to leave one as it is"),
    (RunFacts("paused", failed=True, by_window=True),
     "continue when the window opens (--wait sleeps until then) with `R --wait "
     "--retry-failed` to try the failed units again, or `R --wait --skip UNIT` to leave one "
     "as it is"),
    (RunFacts("failed", failed=True), "fix the cause, then `R --retry-failed`"),
    (RunFacts("done"), None),
    (RunFacts("running"), None),
])
def test_every_combination_has_one_sentence(facts: RunFacts, expected: str | None) -> None:
    said = next_command(facts, STATE)
    if expected is None:
        assert said is None
    else:
        assert said is not None
        assert re.sub(r"nsxt-upgrade resume --state-dir [^\s`]+", "R", said) == expected
