"""The canary and the failure budget as an operator meets them: the real CLI in
subprocesses, real playbook and inventory files, the simulated adapter on the virtual clock.

The production playbook: four clusters of eight hosts, three hosts at a time per cluster,
two clusters at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import PRODUCTION, nsxt, world

#: esx-102 and esx-105 (cluster 1) fail their first upgrade
TWO_FAULTS = ("faults:\n  - {unit: esx-102, op: upgrade, kind: fail, times: 1}\n"
              "  - {unit: esx-105, op: upgrade, kind: fail, times: 1}\n")


def playbook(books: Path, extra: str, faults: str = "") -> Path:
    """The production playbook with ``extra`` top-level lines; ``faults`` in its inventory."""
    path = books / PRODUCTION.name
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    inventory = books / "production-inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8") + faults, encoding="utf-8")
    return path


def status(state_dir: Path) -> dict[str, Any]:
    """`status --format json`."""
    proc = nsxt("status", "--state-dir", state_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def events(path: Path) -> list[dict[str, Any]]:
    """The `--events` lines."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def upgraded_hosts(state_dir: Path) -> list[str]:
    """Hosts the simulated world has upgraded so far."""
    return [u["id"] for u in world(state_dir)["units"]
            if u["kind"] == "host" and u["upgrade_count"]]


# -- failure budget ---------------------------------------------------------------------------


def test_failed_hosts_within_the_budget_do_not_stop_the_phase(
        books: Path, tmp_path: Path) -> None:
    """With `max_fail_percentage: {hosts: 10}` (3 of 32 hosts), two failed hosts do not stop
    the hosts phase: every other host is upgraded, the failed ones stay in maintenance,
    then the run pauses (exit 3) naming them, before any edge starts; status, events and
    the report name them; `resume --retry-failed` finishes the run."""
    book = playbook(books, "max_fail_percentage: {hosts: 10}\n", TWO_FAULTS)
    state, stream = tmp_path / "state", tmp_path / "events.jsonl"
    proc = nsxt("run", book, "--yes", "--state-dir", state, "--events", stream)
    assert proc.returncode == 3, proc.stderr
    assert "failed units wait for an operator: esx-102, esx-105" in proc.stdout
    doc = status(state)
    assert doc["state"] == "paused" and doc["phase"] == "hosts"
    assert doc["units"]["failed"] == ["esx-102", "esx-105"]
    assert doc["units"]["done"] == 30  # every other host
    snap = world(state)
    units = {u["id"]: u for u in snap["units"]}
    assert units["esx-102"]["in_maintenance"] and units["esx-105"]["in_maintenance"]
    assert not any(u["upgrade_count"] for u in snap["units"] if u["kind"] == "edge")
    failed = [e["unit"] for e in events(stream) if e["type"] == "unit_failed"]
    assert failed == ["esx-102", "esx-105"]
    assert events(stream)[-1]["type"] == "paused"

    report = nsxt("report", "--state-dir", state, "--format", "json")
    assert report.returncode == 0, report.stderr
    failures = json.loads(report.stdout)["failures"]
    assert [f["unit"] for f in failures] == ["esx-102", "esx-105"]
    assert all(f["within_budget"] for f in failures)
    markdown = nsxt("report", "--state-dir", state, "--format", "markdown").stdout
    assert "within the failure budget" in markdown

    again = nsxt("resume", "--state-dir", state, "--retry-failed")
    assert again.returncode == 0, again.stderr
    assert status(state)["state"] == "done"


def test_one_failure_over_the_budget_stops_new_work(books: Path, tmp_path: Path) -> None:
    """With `on_error: abort` and a budget of 5 % (1 of 32 hosts), the first failure goes
    by; the second stops new work and fails the run (exit 1) naming the budget."""
    book = playbook(books, "max_fail_percentage: {hosts: 5}\n", TWO_FAULTS)
    edit_on_error = book.read_text(encoding="utf-8").replace("on_error: pause",
                                                             "on_error: abort")
    book.write_text(edit_on_error, encoding="utf-8")
    state = tmp_path / "state"
    proc = nsxt("run", book, "--yes", "--state-dir", state)
    assert proc.returncode == 1, proc.stderr
    assert "2 of 32 hosts failed; the budget (5 %) allows 1: over the budget" in proc.stdout
    doc = status(state)
    assert doc["state"] == "failed" and doc["units"]["failed"] == ["esx-102", "esx-105"]
    # new work stopped at the second failure: cluster 1's last hosts were never started
    assert "esx-108" not in upgraded_hosts(state)


def test_the_budget_is_validated_with_line_and_column(books: Path) -> None:
    """`max_fail_percentage: {hosts: 150}` is exit 2 with FILE:LINE:COL."""
    book = playbook(books, "max_fail_percentage: {hosts: 150}\n")
    proc = nsxt("plan", book)
    assert proc.returncode == 2
    assert f"{book}:18:" in proc.stderr and "hosts" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- canary -----------------------------------------------------------------------------------


def test_canary_then_pause(books: Path, tmp_path: Path) -> None:
    """`canary: {hosts: 2, then: pause}`: the plan shows the canary; the run upgrades
    esx-101 and esx-102 alone, then pauses (exit 3, event canary_done), status says
    "canary done: resume to continue", the report names the canary as the pause's source;
    `resume` finishes."""
    book = playbook(books, "canary: {hosts: 2, then: pause}\n")
    plan = nsxt("plan", book)
    assert "Canary: esx-101, esx-102 alone first, then a pause until `resume`" in plan.stdout
    doc = json.loads(nsxt("plan", book, "--format", "json").stdout)
    assert doc["canary"] == {"hosts": ["esx-101", "esx-102"], "then": "pause", "watch_s": None}

    state, stream = tmp_path / "state", tmp_path / "events.jsonl"
    proc = nsxt("run", book, "--yes", "--state-dir", state, "--events", stream)
    assert proc.returncode == 3, proc.stderr
    assert sorted(upgraded_hosts(state)) == ["esx-101", "esx-102"]
    text = nsxt("status", "--state-dir", state).stdout
    assert "canary done: resume to continue" in text
    kinds = [e["type"] for e in events(stream)]
    assert kinds.count("canary_done") == 1 and kinds[-1] == "paused"
    assert kinds.index("canary_done") > max(i for i, k in enumerate(kinds) if k == "unit_done")
    report = json.loads(nsxt("report", "--state-dir", state, "--format", "json").stdout)
    assert report["pauses"][-1]["by"] == "canary"

    again = nsxt("resume", "--state-dir", state)
    assert again.returncode == 0, again.stderr
    assert len(upgraded_hosts(state)) == 32


def test_canary_watch_waits_then_goes_on(books: Path, tmp_path: Path) -> None:
    """`canary: {hosts: 1, watch_s: 3600}`: one host alone, an hour of watching on the
    virtual clock (no other host starts before it ends), then the rest; the estimate counts
    the watch and the simulated run takes exactly the estimate."""
    plain = json.loads(nsxt("plan", PRODUCTION, "--format", "json").stdout)
    book = playbook(books, "canary: {hosts: 1, watch_s: 3600}\n")
    doc = json.loads(nsxt("plan", book, "--format", "json").stdout)
    assert doc["canary"]["then"] == "watch" and doc["canary"]["watch_s"] == 3600
    assert doc["estimated_duration_s"] > plain["estimated_duration_s"] + 3600 - 1

    state, stream = tmp_path / "state", tmp_path / "events.jsonl"
    proc = nsxt("run", book, "--yes", "--state-dir", state, "--events", stream)
    assert proc.returncode == 0, proc.stderr
    lines = events(stream)
    done = next(e for e in lines if e["type"] == "canary_done")
    first = next(e for e in lines if e["type"] == "unit_done" and e["unit"] == "esx-101")
    others = [e for e in lines if e["type"] == "unit_started" and e.get("unit", "").startswith(
        "esx-") and e["unit"] != "esx-101"]
    assert done["sim_s"] == first["sim_s"]
    assert min(e["sim_s"] for e in others) >= done["sim_s"] + 3600
    assert lines[-1]["sim_s"] == doc["estimated_duration_s"]


@pytest.mark.parametrize(("canary", "message"), [
    ("canary: {then: pause}", "canary needs hosts"),
    ("canary: {hosts: 1, then: wait}", "then must be one of pause"),
    ("canary: {hosts: 1, then: pause, watch_s: 60}", "either then: pause or watch_s"),
    ("canary: {hosts: 0}", "hosts"),
])
def test_bad_canary_is_exit_2_with_line_and_column(books: Path, canary: str,
                                                   message: str) -> None:
    """Each bad canary setting is one FILE:LINE:COL line, exit 2, no traceback."""
    book = playbook(books, canary + "\n")
    proc = nsxt("plan", book)
    assert proc.returncode == 2, proc.stdout
    assert f"{book}:18:" in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr


# -- VM placement restored --------------------------------------------------------------------


def test_vms_are_back_home_after_the_hosts_phase(books: Path, tmp_path: Path) -> None:
    """`hosts.restore_vm_placement: true`: in prod-cluster-3 (DRS manual) every VM the tool
    moved is back on its original host at the end (`sim show`), each moved back as soon as
    its host was upgraded and out of maintenance, never onto a host in maintenance; the
    report lists every vMotion, out and back; clusters whose DRS is fully automated are
    left to DRS."""
    book = books / PRODUCTION.name
    book.write_text(book.read_text(encoding="utf-8").replace(
        "  pause_after_each_group: false",
        "  pause_after_each_group: false\n  restore_vm_placement: true"), encoding="utf-8")
    plan = nsxt("plan", book)
    assert "VM placement: VMs the tool moves go back" in plan.stdout
    state = tmp_path / "state"
    proc = nsxt("run", book, "--yes", "--state-dir", state)
    assert proc.returncode == 0, proc.stderr
    snap = world(state)
    units = {u["id"]: u for u in snap["units"]}
    cluster3 = [v for v in snap["vms"] if v["id"].startswith("vm-3")]
    assert len(cluster3) == 31
    for vm in cluster3:
        home = "esx-" + vm["id"].split("-")[1]
        assert vm["host"] == home, vm
        assert len(vm["moves"]) >= 2  # out and back
        back = vm["moves"][-1]
        assert back["to"] == home
        left = units[home]["maintenance"][-1]["end"]
        assert back["at"] > left  # its host was out of maintenance by then
    report = json.loads(nsxt("report", "--state-dir", state, "--format", "json").stdout)
    homebound = [m for m in report["vmotions"] if m["by"] == "nsxt-upgrade (back home)"]
    assert sorted(m["vm"] for m in homebound) == sorted(v["id"] for v in cluster3)
    assert all(m["outcome"] == "done" and m["from"] != m["to"] for m in homebound)
    markdown = nsxt("report", "--state-dir", state, "--format", "markdown").stdout
    assert "nsxt-upgrade (back home)" in markdown


def test_canary_watch_on_the_real_clock(books: Path, tmp_path: Path) -> None:
    """On the real clock (`--speed 3000`) the watch is a real wait: the next host starts
    600 clock seconds after `canary_done`, not before."""
    book = books / "lab-2.1-to-2.3.yaml"
    book.write_text(book.read_text(encoding="utf-8") + "canary: {hosts: 1, watch_s: 600}\n",
                    encoding="utf-8")
    stream = tmp_path / "events.jsonl"
    proc = nsxt("run", book, "--yes", "--state-dir", tmp_path / "state", "--clock", "real",
                "--speed", "3000", "--events", stream, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = events(stream)
    done = next(e for e in lines if e["type"] == "canary_done")
    nxt = next(e for e in lines if e["type"] == "unit_started" and e["unit"] == "esx-02")
    assert nxt["sim_s"] >= done["sim_s"] + 600
