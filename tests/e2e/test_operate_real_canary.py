"""The canary, the failure budget and VM placement restored with the nsxt adapter on the
real clock: the lab rehearsed against the NSX-T emulator and vcsim (the `rehearsal`
fixture of tests/e2e/test_e2e_real.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_e2e_real import APIS, Lab, rehearsal  # noqa: F401 - the fixture, by name
from upgrade.core.model import Fault, FaultKind, Op

pytestmark = pytest.mark.slow


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur) by ``new`` in the playbook."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize("api", APIS)
def test_canary_then_pause_and_vms_back_home_against_the_emulator(
        rehearsal: Callable[..., Lab], api: str) -> None:  # noqa: F811
    """`canary: {hosts: 1, then: pause}` with `restore_vm_placement`: the run upgrades
    esx-01 alone and pauses (exit 3, status "canary done: resume to continue"); `resume`
    finishes; in vcsim the VMs of the DRS-off cluster are back on their hosts
    (vm.runtime.host), and the report lists the moves out and back."""
    lab = rehearsal(api=api)
    edit(lab.playbook, "  pause_after_each_group: false\n",
         "  pause_after_each_group: false\n  restore_vm_placement: true\n")
    edit(lab.playbook, "on_error: pause\n", "on_error: pause\ncanary: {hosts: 1, then: pause}\n")
    first = lab.nsxt(*lab.run_args())
    assert first.returncode == 3, first.stdout + first.stderr
    assert "canary done: resume to continue" in lab.nsxt(
        "status", "--state-dir", lab.state_dir).stdout
    counts = lab.counts()
    assert [u for u, n in counts.items() if n and u.startswith("esx-")] == ["esx-01"]

    done = lab.nsxt(*lab.resume_args())
    assert done.returncode == 0, done.stdout + done.stderr
    on = {vm.id: h.id for h in lab.vcenter_inventory().hosts for vm in h.vms}
    assert on["pks-worker-3"] == "esx-03" and on["ops-manager"] == "esx-04"
    doc = json.loads(lab.nsxt("report", "--state-dir", lab.state_dir,
                              "--format", "json").stdout)
    back = {(m["vm"], m["to"]) for m in doc["vmotions"]
            if m["by"] == "nsxt-upgrade (back home)"}
    assert back == {("pks-worker-3", "esx-03"), ("ops-manager", "esx-04")}
    assert all(m["outcome"] == "done" for m in doc["vmotions"])


@pytest.mark.parametrize("api", APIS)
def test_failure_budget_against_the_emulator(rehearsal: Callable[..., Lab],  # noqa: F811
                                             api: str) -> None:
    """`max_fail_percentage: {hosts: 25}` (1 of 4 hosts), host groups in parallel: esx-01's
    upgrade fails, its group waits, the other cluster's hosts are still upgraded; then the
    run pauses naming esx-01 before any edge starts, and `resume --retry-failed` finishes."""
    lab = rehearsal(Fault("esx-01", Op.UPGRADE, FaultKind.FAIL, 1), api=api)
    edit(lab.playbook, "  mode: serial\n", "  mode: parallel\n")
    edit(lab.playbook, "on_error: pause\n", "on_error: pause\nmax_fail_percentage: {hosts: 25}\n")
    first = lab.nsxt(*lab.run_args())
    assert first.returncode == 3, first.stdout + first.stderr
    status = json.loads(lab.nsxt("status", "--state-dir", lab.state_dir,
                                 "--format", "json").stdout)
    assert status["units"]["failed"] == ["esx-01"]
    counts = lab.counts()
    assert counts["esx-03"] == 1 and counts["esx-04"] == 1  # the other cluster went on
    assert counts["edge-01"] == 0 and counts["edge-02"] == 0
    done = lab.nsxt(*lab.resume_args("--retry-failed"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(n >= 1 for n in lab.counts().values())
