"""Golden histories: whole journals of real runs, replayed by the shipped engine and replay.

``tests/histories/`` holds journals recorded from the CLI on a virtual clock (a lab run,
a crash and resume, a failure and retry, a pause after each host group; see
:mod:`tests.histories.golden`), one record per line, with the inputs that made them.
Each is rebuilt into a state directory and checked with ``nsxt-upgrade verify``: the
engine is fed the recorded events and must issue every recorded action again, in order,
the way Temporal's replay tests check a workflow's history.  So any change to the
engine's decisions (or to the journal's format) fails here, naming the first record that
differs.  ``status`` must then read the recorded end state.

When a change of decisions is intended, record the histories again and review the diff::

    python -m tests.histories.record            # or: ... record lab-run crash-resume
    git diff --stat tests/histories
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.histories.golden import (
    HERE,
    PLAN,
    SCENARIOS,
    STATUS_KEYS,
    estimates,
    expected,
    rebuild,
    records,
)
from tests.run_support import nsxt
from upgrade.core.engine.snapshot import VERSION as SNAPSHOT_VERSION
from upgrade.shell.journal import Journal
from upgrade.shell.replay import replay
from upgrade.shell.start_record import load_run, recorded_engine

REGENERATE = "if the change is intended, run `python -m tests.histories.record` and review " \
    "`git diff tests/histories`"


def _verify(state: Path) -> tuple[int, str]:
    done = nsxt("verify", "--state-dir", state)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_engine_replays_each_history_to_the_same_decisions(name: str,
                                                               tmp_path: Path) -> None:
    """Every recorded action is issued again by the engine fed the recorded events, and
    ``status`` reads the recorded end state."""
    where = HERE / name
    state = rebuild(where, tmp_path / "state")
    code, out = _verify(state)
    assert code == 0, f"golden history {name}: the engine decides differently now:\n{out}\n" \
        f"{REGENERATE}"
    shown = nsxt("status", "--state-dir", state, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert {k: status[k] for k in STATUS_KEYS} == expected(where)["status"], \
        f"golden history {name}: the replayed run ends elsewhere; {REGENERATE}"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_history_reports_against_its_recorded_plan(name: str, tmp_path: Path) -> None:
    """The rebuilt state directory holds the plan the run recorded: ``report`` shows its
    estimates (whole run, each phase, each unit) as they were recorded, and the plan an
    engine-only estimate gives today is the recorded one."""
    where = HERE / name
    state = rebuild(where, tmp_path / "state")
    shown = nsxt("report", "--state-dir", state, "--format", "json", "-o", "-")
    assert shown.returncode == 0, shown.stderr
    recorded = expected(where)["estimate"]
    assert recorded["planned_duration_s"] > 0 and recorded["units"]
    assert estimates(json.loads(shown.stdout)) == recorded, \
        f"golden history {name}: the report's estimates moved; {REGENERATE}"
    planned = nsxt("plan", where / "playbook.yaml", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["estimated_duration_s"] == \
        json.loads((where / PLAN).read_text(encoding="utf-8"))["estimated_duration_s"] == \
        recorded["planned_duration_s"], f"golden history {name}: the plan's estimate " \
        f"moved; {REGENERATE}"


def _first(lines: list[dict[str, Any]], kind: str, type_: str, **fields: Any) -> int:
    """The index of the first record of ``kind`` whose payload has ``type_`` and ``fields``."""
    return next(i for i, r in enumerate(lines) if r["kind"] == kind
                and r["payload"]["type"] == type_
                and all(r["payload"].get(k) == v for k, v in fields.items()))


def test_an_altered_action_fails_naming_its_record(tmp_path: Path) -> None:
    """A recorded action the engine would not issue (esx-02's first start named esx-03
    instead) fails the replay, naming that very record."""
    lines = records(HERE / "lab-run")
    at = _first(lines, "action", "Start", unit="esx-02")
    lines[at]["payload"]["unit"] = "esx-03"
    code, out = _verify(rebuild(HERE / "lab-run", tmp_path / "state", lines))
    assert code == 1, out
    assert f"journal record {lines[at]['seq']}: recorded" in out, out


def test_an_altered_outcome_fails_at_the_first_decision_it_changes(tmp_path: Path) -> None:
    """A recorded outcome changed (edge-01's upgrade reported failed instead of done) makes
    the engine decide otherwise: the replay fails at the first recorded action after it."""
    lines = records(HERE / "lab-run")
    at = _first(lines, "event", "Polled", unit="edge-01", op="upgrade", state="done")
    lines[at]["payload"]["state"] = "failed"
    code, out = _verify(rebuild(HERE / "lab-run", tmp_path / "state", lines))
    assert code == 1, out
    following = next(r["seq"] for r in lines[at + 1:] if r["kind"] == "action")
    assert f"journal record {following}: recorded" in out, out


def _events(name: str, type_: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in records(HERE / name)
            if r["kind"] == "event" and r["payload"]["type"] == type_]


def test_each_history_holds_what_it_is_named_for() -> None:
    """The histories are what their scenarios say, recorded from the current scenarios: the
    lab run never resumes; the crash resumes once and reconciles an intent journaled
    before the kill; the failure pauses on edge-02 and is retried; the group pauses resume
    once per host group but the last."""
    for name, scenario in SCENARIOS.items():
        commands = [c["args"] for c in expected(HERE / name)["commands"]]
        assert commands == [list(s.args) for s in scenario.steps], \
            f"{name} was recorded from other commands; {REGENERATE}"
    assert _events("lab-run", "Resumed") == []

    crash = records(HERE / "crash-resume")
    resumed = _first(crash, "event", "Resumed")
    assert len(_events("crash-resume", "Resumed")) == 1
    answered_late = [r for r in crash[resumed:] if r["kind"] == "event"
                     and r["payload"].get("for", crash[resumed]["seq"]) < crash[resumed]["seq"]]
    assert answered_late, "the resume reconciled no intent journaled before the kill"

    assert [e["retry_failed"] for e in _events("failure-retry", "Resumed")] == [True]
    assert any(r["payload"] == {**r["payload"], "type": "Notice", "kind": "unit_failed",
                                "unit": "edge-02"} for r in records(HERE / "failure-retry"))

    assert len(_events("group-pauses", "Resumed")) == 1


#: state directories left by nsxt-upgrade before the engine's snapshot format had parts
#: (snapshot version 1, written by main at 2874fda): paused after the first host group, and
#: paused on edge-02's failed upgrade; with the command that finishes each
V1_STATE_DIRS = {"v1-group-pause": ("resume",), "v1-edge-failed": ("resume", "--retry-failed")}


def _v1_state(name: str, tmp_path: Path) -> Path:
    """A copy of the version-1 state directory ``name``, naming its playbook where it is."""
    where = HERE / name
    state = tmp_path / "state"
    shutil.copytree(where / "state", state)
    playbook = where / "playbook.yaml"
    with Journal.open(state) as journal:
        assert journal.get_meta("playbook_sha256") == \
            hashlib.sha256(playbook.read_bytes()).hexdigest()
        journal.set_meta("playbook_path", str(playbook))
    return state


@pytest.mark.parametrize("name", list(V1_STATE_DIRS))
def test_a_state_dir_of_snapshot_version_1_reads_verifies_and_resumes(name: str,
                                                                      tmp_path: Path) -> None:
    """An earlier version's paused run: ``verify`` matches its version-1 snapshot, ``status``
    reads it, the command that finishes it does, and ``verify`` then checks the old and the
    new snapshots alike."""
    state = _v1_state(name, tmp_path)
    with Journal.open_readonly(state) as journal:
        assert [p["engine"]["version"] for _, p in journal.snapshots()] == [1]
    code, out = _verify(state)
    assert code == 0 and "and 1 snapshots" in out, out
    shown = nsxt("status", "--state-dir", state, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "paused"
    done = nsxt(*V1_STATE_DIRS[name], "--state-dir", state)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(nsxt("status", "--state-dir", state, "--format", "json").stdout)[
        "state"] == "done"
    with Journal.open_readonly(state) as journal:
        versions = [p["engine"]["version"] for _, p in journal.snapshots()]
    assert versions[0] == 1 and versions[-1] == SNAPSHOT_VERSION and len(versions) > 1
    code, out = _verify(state)
    assert code == 0, out


def test_resume_starts_from_a_version_1_snapshot(tmp_path: Path) -> None:
    """The version-1 snapshot is read (the replay starts after it), and the engine it gives
    is the one a replay of the whole journal gives."""
    state = _v1_state("v1-group-pause", tmp_path)
    with Journal.open_readonly(state) as journal:
        prepared = load_run(state, journal)
        fast = replay(journal, recorded_engine(prepared, journal))
        slow = replay(journal, recorded_engine(prepared, journal), from_snapshot=False)
    assert fast.snapshot_seq > 0
    assert fast.snapshot() == slow.snapshot()
