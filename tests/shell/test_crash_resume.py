"""Crash test: `nsxt-upgrade run` on a sped-up real clock, SIGKILLed at random moments in
every phase, resumed (and killed again) until it finishes; then the simulated world must
show every safety invariant of DESIGN section 5 held across all the crashes."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import (
    BUNDLE,
    LAB,
    check_world,
    nsxt,
    peek_phase,
    spawn,
    world,
)
from upgrade.inputs.inventory import load_inventory

pytestmark = pytest.mark.slow

PHASES = ("precheck", "bundle", "coordinator", "hosts", "edges", "controllers", "manager",
          "postcheck")

#: hosts in parallel (two clusters at once, two hosts at a time), a manual-DRS cluster
#: and a DRS-off cluster the orchestrator must evacuate itself, two edge clusters in
#: parallel, three controllers
PARALLEL_PLAYBOOK = """\
name: crash-parallel
target_version: "2.3.0.0"
bundle:
  path: bundles/VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub
inventory: {adapter: simulated, source: parallel-inventory.yaml}
compatibility: {pks: "1.2.0", opsman: "2.3.1"}
hosts:
  mode: parallel
  max_parallel: 2
  max_parallel_groups: 2
  upgrade_mode: maintenance
edges: {mode: parallel}
on_error: pause
retries: 2
"""
PARALLEL_INVENTORY = """\
nsx:
  version: "2.1.0.0"
  manager: nsx-mgr-01
  controllers: [ctrl-01, ctrl-02, ctrl-03]
  edge_clusters:
    - {name: ec-1, edges: [edge-11, edge-12]}
    - {name: ec-2, edges: [edge-21, edge-22, edge-23]}
compute:
  clusters:
    - name: auto
      drs: fully_automated
      hosts:
        - {id: esx-a1, vms: [a1-1, a1-2]}
        - {id: esx-a2, vms: [a2-1, {id: a2-2, powered_on: false}]}
        - {id: esx-a3, vms: [a3-1]}
    - name: manual
      drs: manual
      hosts:
        - {id: esx-m1, vms: [m1-1, m1-2, m1-3]}
        - {id: esx-m2, vms: [m2-1]}
        - {id: esx-m3, vms: []}
        - {id: esx-m4, vms: [m4-1, {id: m4-2, powered_on: false}]}
    - name: off
      drs: off
      hosts:
        - {id: esx-o1, vms: [o1-1]}
        - {id: esx-o2, vms: [o2-1, o2-2]}
        - {id: esx-o3, vms: []}
durations: {host_upgrade: 600, edge_upgrade: 400, controller_upgrade: 500, manager_upgrade: 900,
            vmotion: 20, bundle_upload: 600, coordinator_upgrade: 200}
seed: 3
"""


@dataclass
class Crashes:
    """What the kill/resume loop did."""

    #: the phase the journal showed when each kill landed (None: before the first record)
    killed_in: list[str | None] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    resumes: int = 0


def _wait_for_phase(proc: subprocess.Popen[str], state_dir: Path, phase: str,
                    limit: float) -> None:
    """Return once the journal shows ``phase`` (or a later one) started, or the process ended."""
    wanted = PHASES.index(phase)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        seen = peek_phase(state_dir)
        if seen is not None and PHASES.index(seen) >= wanted:
            return
        time.sleep(0.005)


def crash_and_resume(first: list[str | Path], state_dir: Path, plan: dict[str, Any],
                     speed: float, cycles: int, seed: int) -> Crashes:
    """Start ``first`` and SIGKILL it, then `resume` and SIGKILL that, ``cycles`` times in
    all, each kill at a random moment of the next phase in turn; then resume to the end."""
    rng = random.Random(seed)
    crashes = Crashes()
    durations = {p["name"]: p["estimated_duration_s"] / speed for p in plan["phases"]}
    argv = first
    for cycle in range(cycles):
        target = PHASES[cycle * len(PHASES) // cycles]
        proc = spawn(*argv)
        # every kill waits for its phase to be journaled: the first one thus never lands
        # before the run exists; later ones may land in the resume's replay and reconcile
        _wait_for_phase(proc, state_dir, target, 30)
        time.sleep(rng.uniform(0, max(durations[target], 0.05)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            crashes.killed_in.append(peek_phase(state_dir))
        out, err = proc.communicate(timeout=30)
        crashes.outputs.append(out + err)
        if proc.returncode == 0:
            return crashes  # finished before the kill
        assert proc.returncode == -signal.SIGKILL, (
            f"cycle {cycle}: exited {proc.returncode} instead of being killed:\n{out}\n{err}")
        argv = ["resume", "--state-dir", state_dir]
        crashes.resumes += 1
    done = nsxt(*argv, timeout=90)
    crashes.outputs.append(done.stdout + done.stderr)
    crashes.resumes += 1
    assert done.returncode == 0, f"the last resume exited {done.returncode}:\n{done.stdout}" \
        f"\n{done.stderr}"
    return crashes


def _scenario(tmp_path: Path, playbook: Path, speed: float, cycles: int, seed: int) -> Crashes:
    state_dir = tmp_path / "state"
    plan_proc = nsxt("plan", playbook, "--format", "json")
    assert plan_proc.returncode == 0, plan_proc.stderr
    plan = json.loads(plan_proc.stdout)
    crashes = crash_and_resume(["run", playbook, "--yes", "--state-dir", state_dir,
                                "--clock", "real", "--speed", str(speed)],
                               state_dir, plan, speed, cycles, seed)
    status = nsxt("status", "--state-dir", state_dir, "--format", "json")
    assert json.loads(status.stdout)["state"] == "done", status.stdout
    check_world(world(state_dir), json.loads((state_dir / "plan.json").read_text()),
                load_inventory(state_dir / "inventory.yaml"))
    # the kills really were spread over the run, not bunched at its start
    landed = {p for p in crashes.killed_in if p is not None}
    print(f"kills landed in {crashes.killed_in}; {crashes.resumes} resumes")
    assert len(crashes.killed_in) >= cycles // 2, crashes.killed_in
    assert len(landed) >= 4 and "hosts" in landed, crashes.killed_in
    return crashes


def test_lab_survives_random_kills(tmp_path: Path) -> None:
    """The lab upgrade (serial hosts, a DRS-off cluster), SIGKILLed in every phase and
    resumed each time, ends with every unit upgraded exactly once and every invariant held."""
    _scenario(tmp_path, LAB, speed=2000, cycles=9, seed=20240611)


def test_parallel_manual_drs_survives_random_kills(tmp_path: Path) -> None:
    """Parallel host groups with manual-DRS and DRS-off clusters (the orchestrator moves
    the VMs itself) and parallel edge clusters, SIGKILLed in every phase: same invariants."""
    (tmp_path / "bundles").mkdir()
    shutil.copy(BUNDLE, tmp_path / "bundles" / BUNDLE.name)
    (tmp_path / "parallel-inventory.yaml").write_text(PARALLEL_INVENTORY, encoding="utf-8")
    playbook = tmp_path / "parallel.yaml"
    playbook.write_text(PARALLEL_PLAYBOOK, encoding="utf-8")
    _scenario(tmp_path, playbook, speed=1400, cycles=9, seed=7)
