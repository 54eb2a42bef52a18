"""Saved plans as an operator meets them: `plan --out PLAN.json`, then `run --plan
PLAN.json` runs exactly that plan, or refuses (exit 4) naming what changed since."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.run_support import LAB, edit, nsxt


def save(books: Path, tmp_path: Path) -> Path:
    """`plan --out` for the lab playbook in ``books``; the saved plan's path."""
    out = tmp_path / "plan.json"
    proc = nsxt("plan", books / LAB.name, "--out", out, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "lab-2.1-to-2.3"  # stdout is still the plan
    return out


def test_saved_plan_runs_exactly_as_planned(books: Path, tmp_path: Path) -> None:
    """The saved plan holds the plan JSON plus the fingerprints of what it was made from;
    `run --plan` without a PLAYBOOK runs it, and the run records that very plan."""
    out = save(books, tmp_path)
    doc = json.loads(out.read_text())
    prints = doc["saved_plan"]["fingerprints"]
    assert set(prints) == {"playbook", "inventory", "compat", "document"}
    assert all(len(v) == 64 for v in prints.values())
    state_dir = tmp_path / "state"
    run = nsxt("run", "--plan", out, "--yes", "--state-dir", state_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    recorded = json.loads((state_dir / "plan.json").read_text())
    del doc["saved_plan"]
    assert recorded == doc


@pytest.mark.parametrize(("change", "named"), [
    (lambda b: edit(b / "lab-inventory.yaml", "        - {id: esx-02, vms: [pks-worker-2]}\n",
                    "        - {id: esx-02, vms: [pks-worker-2]}\n        - {id: esx-05}\n"),
     "host added: esx-05 (cluster compute-cluster-a)"),
    (lambda b: edit(b / "lab-inventory.yaml", "        - {id: esx-02, vms: [pks-worker-2]}\n",
                    ""),
     "host removed: esx-02 (cluster compute-cluster-a)"),
    (lambda b: edit(b / "lab-inventory.yaml", 'version: "2.1.0.0"', 'version: "2.1.5.0"'),
     "NSX-T version changed: 2.1.0.0 -> 2.1.5.0"),
    (lambda b: edit(b / "lab-inventory.yaml", "drs: off", "drs: manual"),
     "DRS of cluster compute-cluster-b changed: off -> manual"),
    (lambda b: edit(b / LAB.name, "retries: 2", "retries: 3"),
     "lab-2.1-to-2.3.yaml was edited"),
    (lambda b: edit(b / "lab-inventory.yaml", "host_upgrade: 900", "host_upgrade: 1000"),
     "the inventory changed (durations, faults or other details)"),
])
def test_run_plan_refuses_what_changed(books: Path, tmp_path: Path, change: object,
                                       named: str) -> None:
    """A host added or removed, a version or DRS level changed, the playbook edited or
    another inventory detail: `run --plan` exits 4 naming it, and writes nothing."""
    out = save(books, tmp_path)
    assert callable(change)
    change(books)
    state_dir = tmp_path / "state"
    proc = nsxt("run", "--plan", out, "--yes", "--state-dir", state_dir)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert named in proc.stderr and "no longer matches" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not state_dir.exists()


def test_run_plan_refuses_other_compat_data(books: Path, tmp_path: Path) -> None:
    """Compatibility data other than the plan was made with (here a site --matrix laid
    over it at run time): exit 4 naming it, nothing written."""
    out = save(books, tmp_path)
    state_dir = tmp_path / "state"
    proc = nsxt("run", "--plan", out, "--yes", "--state-dir", state_dir, "--matrix",
                _site(tmp_path))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "compatibility data is different" in proc.stderr
    assert not state_dir.exists()


#: widens PKS 1.2.0's Ops Manager list to 2.4.0, which the built-in data does not support
SITE_240 = """\
pks_matrix:
  - pks: "1.2.0"
    opsman: "v2.2.2+, v2.3.1+, v2.4.0"
    source: "site policy OPS-9"
"""


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site.yaml"
    site.write_text(SITE_240, encoding="utf-8")
    return site


def test_a_plan_saved_with_a_matrix_runs_with_it(books: Path, tmp_path: Path) -> None:
    """Issue 21 item 15: `plan --matrix SITE --out` then `run --plan` (no --matrix) used to
    plan again without the site data (refused, exit 4, or worse: run on other data than
    reviewed), the compat fingerprint ignoring it. The plan records its --matrix, run
    --plan lays it over again, and an edited site file is a difference (exit 4)."""
    edit(books / LAB.name, 'opsman: "2.3.1"', 'opsman: "2.4.0"')
    site = _site(tmp_path)
    out = tmp_path / "plan.json"
    saved = nsxt("plan", books / LAB.name, "--matrix", site, "--out", out)
    assert saved.returncode == 0, saved.stderr
    assert json.loads(out.read_text())["saved_plan"]["matrix"] == str(site.resolve())
    state_dir = tmp_path / "state"
    run = nsxt("run", "--plan", out, "--yes", "--state-dir", state_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    site.write_text(SITE_240.replace("OPS-9", "OPS-10"), encoding="utf-8")
    again = nsxt("run", "--plan", out, "--yes", "--state-dir", tmp_path / "again")
    assert again.returncode == 4 and "compatibility data is different" in again.stderr


def test_a_run_records_its_matrix_and_planning_again_uses_it(books: Path,
                                                              tmp_path: Path) -> None:
    """Issue 21 item 15: whatever plans a `run --matrix SITE` run again (a resume of a
    state dir written by an earlier version, which has no recorded engine inputs) lays
    the same site data over the built-in data: the verdict stays "supported"."""
    from tests.run_support import as_earlier_version
    from upgrade.shell.journal import Journal
    from upgrade.shell.start_record import load_run

    edit(books / LAB.name, 'opsman: "2.3.1"', 'opsman: "2.4.0"')
    edit(books / LAB.name, "pause_after_each_group: false", "pause_after_each_group: true")
    state_dir = tmp_path / "state"
    run = nsxt("run", books / LAB.name, "--yes", "--state-dir", state_dir, "--matrix",
               _site(tmp_path))
    assert run.returncode == 3, run.stdout + run.stderr
    as_earlier_version(state_dir)
    with Journal.open_readonly(state_dir) as journal:
        prepared = load_run(state_dir, journal)
    assert prepared.verdict.ok and prepared.plan.runnable
    resumed = nsxt("resume", "--state-dir", state_dir)
    assert resumed.returncode in (0, 3), resumed.stdout + resumed.stderr


def test_run_plan_input_errors(books: Path, tmp_path: Path) -> None:
    """Not a saved plan, a PLAYBOOK other than the plan's, neither: exit 2; a refused plan
    is not saved."""
    junk = tmp_path / "junk.json"
    junk.write_text('{"name": "x"}')
    proc = nsxt("run", "--plan", junk, "--yes")
    assert proc.returncode == 2 and "not a saved plan" in proc.stderr
    out = save(books, tmp_path)
    other = nsxt("run", LAB, "--plan", out, "--yes")
    assert other.returncode == 2 and "was made from" in other.stderr
    assert nsxt("run", "--yes").returncode == 2
    refused_out = tmp_path / "refused.json"
    refused = nsxt("plan", books / LAB.name, "--out", refused_out, "--ack", "nope")
    assert refused.returncode != 0 and not refused_out.exists()
    edit(books / LAB.name, "acknowledge: [edge-connectivity-degraded]", "acknowledge: []")
    unacked = nsxt("plan", books / LAB.name, "--out", refused_out)
    assert unacked.returncode == 4 and not refused_out.exists()


def test_run_plan_reuses_the_saved_estimate(books: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23 item 2: `run --plan PLAN.json` takes the estimates (and the schedule) the
    plan computed instead of driving the engine for them again; the run still records
    exactly the saved plan. A saved plan with a maintenance window is estimated again (its
    estimate waits for the windows from when the run starts)."""
    from click.testing import CliRunner

    import upgrade.prepare.planning as planning
    from tests.run_support import ENV
    from upgrade.cli.main import cli
    from upgrade.shell.savedplan import reusable

    calls: list[str] = []
    original = planning.estimate

    def counted(*args: object, **kwargs: object) -> object:
        calls.append("estimate")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(planning, "estimate", counted)
    out = tmp_path / "plan.json"
    saved = CliRunner().invoke(cli, ["plan", str(books / LAB.name), "--out", str(out)],
                               env=ENV)
    assert saved.exit_code == 0, saved.output
    assert calls == ["estimate"]
    state_dir = tmp_path / "state"
    run = CliRunner().invoke(cli, ["run", "--plan", str(out), "--yes", "--state-dir",
                                   str(state_dir)], env=ENV)
    assert run.exit_code == 0, run.output
    assert calls == ["estimate"], "run --plan estimated the plan again"
    doc = json.loads(out.read_text())
    assert doc["schedule"] and doc["estimated_duration_s"] > 0
    del doc["saved_plan"]
    assert json.loads((state_dir / "plan.json").read_text()) == doc
    # what the run took is what the plan estimated (the simulated adapter, fault-free)
    assert "upgrade complete" in run.output
    window = {**doc, "window": "Sat 22:00-06:00 Europe/Berlin", "saved_plan": {
        "made_by": json.loads(out.read_text())["saved_plan"]["made_by"],
        "fingerprints": {"document": "0" * 64}}}
    assert not reusable(window)
    other = {**window, "saved_plan": {**window["saved_plan"], "made_by": "0.0.1"}}
    del other["window"]
    assert not reusable(other)
