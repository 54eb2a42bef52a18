"""The plan's estimate against a real run (hypothesis): each generated case is written as a
playbook and inventory and run by the shipped CLI (``run``, then ``resume`` at once after
each pause the playbook asks for) on the simulated adapter's virtual clock; the simulated
world's clock when the run is done (``sim show``) is the makespan the estimate promised.

The estimate drives the engine in memory (:func:`upgrade.sim.drive.drive`); the run goes
through the session, the asyncio runner, the journal and the simulated adapter's stored
world: two drivers that must agree to the second.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given

from tests.case_files import write_case
from tests.crash_support import FAST_TMP
from tests.sim_helpers import SETTINGS, Case, cases
from upgrade.cli.main import cli
from upgrade.core.plan import Phase
from upgrade.sim.estimate import estimate


def run_to_the_end(case: Case, directory: Path) -> dict[str, object]:
    """``nsxt-upgrade run`` of ``case`` resumed until done; the world as ``sim show`` has it."""
    playbook = write_case(case, directory)
    state = directory / "state"
    cli_runner = CliRunner()
    done = cli_runner.invoke(cli, ["run", str(playbook), "--yes", "--state-dir", str(state)])
    for _ in range(len(case.plan.phase(Phase.HOSTS).groups)):
        if done.exit_code != 3:
            break
        done = cli_runner.invoke(cli, ["resume", "--state-dir", str(state)])
    assert done.exit_code == 0, done.output
    shown = cli_runner.invoke(cli, ["sim", "show", "--state-dir", str(state), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    world: dict[str, object] = json.loads(shown.stdout)
    world["plan"] = json.loads((state / "plan.json").read_text(encoding="utf-8"))
    return world


@SETTINGS
@given(cases())
def test_estimate_is_the_makespan_of_a_real_run(case: Case) -> None:
    """A fault-free run of the CLI ends, on the virtual clock, exactly when the estimate
    said (group pauses resumed at once), and the run recorded that same estimate."""
    estimated = estimate(case.plan, case.inventory, case.playbook)
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp:
        world = run_to_the_end(case, Path(tmp))
    assert world["time"] == estimated.estimated_duration_s
    assert sum(p.estimated_duration_s for p in estimated.phases) == world["time"]
    plan = world["plan"]
    assert isinstance(plan, dict)
    assert plan["estimated_duration_s"] == estimated.estimated_duration_s
