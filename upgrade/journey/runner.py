"""Carry a journey out: NSX-T hops as runs of this engine, gates as the operator's steps.

``journey run`` starts a journey (its path is journaled first), ``journey resume`` goes
on from its journal.  Both then loop: a hop whose run has not ended is started or
resumed in its own state dir (never started twice: the hop's own journal and
reconciliation keep every unit upgraded once); a gate asks Ops Manager (and takes
``--confirm``) whether the operator's upgrade is done, re-checks the new state against
the matrix, and stops (exit 3) saying exactly what to do when it is not.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from upgrade.compat.matrix import Product
from upgrade.compat.path import State, is_supported
from upgrade.core.versions import Version
from upgrade.errors import InputError, JournalError, RefusedError
from upgrade.journey.gates import Reading, check_gates
from upgrade.journey.hops import (
    check_bundle_digest,
    hop_dir,
    hop_state,
    inputs_dir,
    run_hop,
    write_hop_inputs,
)
from upgrade.journey.journal import JourneyJournal, journey_lock
from upgrade.journey.observe import merged, parse_confirms, read_source, readings_of, start_state
from upgrade.journey.planning import (
    Site,
    check_site_version,
    goal_of,
    read_site,
    require_bundles,
)
from upgrade.journey.progress import Progress, progress_of
from upgrade.journey.route import JourneyStep, plan_route
from upgrade.journey.spec import JourneySpec
from upgrade.shell.clocks import ClockChoice

#: exit codes (DESIGN section 3)
DONE, FAILED, WAITING, REFUSED = 0, 1, 3, 4


@dataclass
class Options:
    """What ``journey run`` / ``resume`` were told."""

    choice: ClockChoice = field(default_factory=ClockChoice)
    acks: tuple[str, ...] = ()
    confirms: tuple[str, ...] = ()
    retry_failed: bool = False
    say: Callable[[str], None] = lambda text: print(text, flush=True)  # noqa: T201


def _owner() -> str:
    return " ".join(["nsxt-upgrade", *sys.argv[1:]])[:200]


def run_journey(spec: JourneySpec, state_dir: Path, options: Options, *, new: bool) -> int:
    """``journey run`` (``new``) or ``journey resume``; the exit code."""
    confirmed = parse_confirms(options.confirms)  # a typo fails before anything happens
    if new and confirmed:
        raise InputError("--confirm is for `journey resume`, at a gate")
    with journey_lock(state_dir, _owner()):
        journal = JourneyJournal.read(state_dir)
        if new and journal.started is not None:
            raise InputError(f"{state_dir} already holds journey {spec.name}; continue it "
                             f"with `nsxt-upgrade journey resume {spec.path}`")
        if not new and journal.started is None:
            raise InputError(f"journey {spec.name} has not started in {state_dir}; start it "
                             f"with `nsxt-upgrade journey run {spec.path}`")
        site = read_site(spec, discover=False)
        if journal.started is None:
            _begin(spec, site, journal, options)
        else:
            _same_journey(spec, journal)
        progress = progress_of(journal.records)
        assert progress is not None
        options.choice = _clock_choice(options.choice, journal)
        return _advance(spec, site, state_dir, journal, progress, options, confirmed)


def _begin(spec: JourneySpec, site: Site, journal: JourneyJournal, options: Options) -> None:
    """Find the path, check every hop has a bundle, and journal the start."""
    start = start_state(spec, read_source(spec))
    if site.simulated:
        check_site_version(spec, site)
    result, steps = plan_route(site.matrix, start, goal_of(spec), site.strict)
    if not result.found:
        blocked = result.blocked_by
        raise RefusedError(f"no supported path from {start.describe()} to "
                           f"{result.goal.describe()}"
                           + (f": {blocked.reason}" if blocked is not None else ""))
    require_bundles(spec, steps)
    journal.append("started", journey=spec.name, file=str(spec.path.resolve()),
                   site=str(spec.site.resolve()), **{"from": start.to_json()},
                   goal=_goal_json(spec),
                   clock={"kind": options.choice.kind, "speed": options.choice.speed},
                   steps=[s.to_json() for s in steps])
    options.say(f"journey {spec.name}: {start.describe()} \u2192 {goal_of(spec).describe()} "
                f"in {len(steps)} steps; journal {journal.path}")


def _clock_choice(given: ClockChoice, journal: JourneyJournal) -> ClockChoice:
    """The clock for the hops: as given, else the one the journey was started with."""
    if given.kind is not None or given.speed is not None:
        return given
    recorded = (journal.started or {}).get("clock") or {}
    return ClockChoice(recorded.get("kind"), recorded.get("speed"))


def _goal_json(spec: JourneySpec) -> dict[str, str | None]:
    goal = goal_of(spec)
    return {p.value: (None if goal.get(p) is None else str(goal.get(p))) for p in Product}


def _same_journey(spec: JourneySpec, journal: JourneyJournal) -> None:
    """The journey file still goes where the journaled journey goes (exit 4 if not)."""
    started = journal.started
    assert started is not None
    if started.get("goal") != _goal_json(spec) \
            or Version.parse(started["from"]["nsxt"]) != spec.nsxt:
        raise RefusedError(f"{spec.path} no longer describes the journey in {journal.state_dir} "
                           f"(it set out from {started['from']} to {started.get('goal')}); "
                           "put the file back, or start a new journey with another --state-dir")


def _advance(spec: JourneySpec, site: Site, state_dir: Path, journal: JourneyJournal,
             progress: Progress, options: Options, confirmed: dict[Product, Reading]) -> int:
    while True:
        index = progress.next_index
        if index is None:
            at = progress.at
            options.say(f"journey {spec.name} is done: {at.describe()}")
            return DONE
        step = progress.steps[index]
        if step.is_hop:
            code = _hop(spec, site, state_dir, journal, progress, step, options)
        else:
            code = _gates(spec, site, journal, progress, options, confirmed)
        if code is not None:
            return code
        refreshed = progress_of(journal.records)
        if refreshed is None:
            raise JournalError(f"{journal.path}: the journey's start record is gone")
        progress = refreshed


def _recheck(site: Site, state: State, what: str) -> None:
    if not is_supported(site.matrix, state, site.strict):
        raise RefusedError(f"{what}: {state.describe()} is not supported by the compatibility "
                           "matrix; the journey stops here")


def _hop(spec: JourneySpec, site: Site, state_dir: Path, journal: JourneyJournal,
         progress: Progress, step: JourneyStep, options: Options) -> int | None:
    """Run (or resume) one NSX-T hop; None when it is done, else the exit code."""
    if step.n > 1:
        _recheck(site, step.before, f"before step {step.n}")
    reading = read_source(spec)
    if reading is not None:
        check = check_gates(site.matrix, step.before, (), readings_of(reading), site.strict)
        if check.refused:
            journal.append("refused", n=step.n, reason=check.refusal)
            raise RefusedError(f"before step {step.n} ({step.title()}): "
                               f"{check.refusal}")
    bundle = require_bundles(spec, (step,))[step.n]
    where = hop_dir(state_dir, step)
    check_bundle_digest(bundle, where)
    playbook = write_hop_inputs(inputs_dir(state_dir, step), spec, step, bundle,
                                site.inventory if site.simulated else None)
    if progress.last.get(step.n, {}).get("type") != "step_started":
        journal.append("step_started", n=step.n, state_dir=str(where))
    options.say(f"step {step.n}/{len(progress.steps)}: {step.title()} (state dir {where})")
    try:
        code = run_hop(playbook, where, options.acks, options.choice, options.retry_failed)
    except RefusedError as exc:  # the hop's plan was refused: say so in the journal too
        journal.append("step_ended", n=step.n, code=REFUSED, reason=str(exc))
        raise
    if code == DONE and hop_state(where) != "done":
        code = FAILED
    journal.append("step_ended", n=step.n, code=code)
    if code == DONE:
        options.say(f"step {step.n} done: {step.after.describe()}")
        return None
    what = {WAITING: "paused", REFUSED: "refused"}.get(code, "failed")
    options.say(f"step {step.n} ({step.title()}) {what}; continue with `nsxt-upgrade journey "
                f"resume {spec.path}` (the run's own state: `nsxt-upgrade status --state-dir "
                f"{where}`)")
    return code


def instructions(step: JourneyStep) -> str:
    """Exactly what the operator does for a gate."""
    if step.product is Product.PKS:
        how = (f"Upgrade the PKS tile from {step.old} to {step.new} in Ops Manager: import "
               f"the PKS {step.new} tile, stage it, review its settings, and Apply Changes "
               "with the 'Upgrade all clusters' errand on")
    else:
        how = (f"Upgrade Ops Manager from {step.old} to {step.new}: export the installation "
               f"settings, deploy the Ops Manager {step.new} VM, import the installation into "
               "it, and Apply Changes")
    return f"{how}. Source: {step.source}"


def _gates(spec: JourneySpec, site: Site, journal: JourneyJournal, progress: Progress,
           options: Options, confirmed: dict[Product, Reading]) -> int | None:
    """Pass the gates the site shows are done; None when some passed, else exit 3 or 4."""
    block = progress.block()
    at = progress.at
    reading = read_source(spec)
    readings = merged(readings_of(reading), confirmed)
    check = check_gates(site.matrix, at, block, readings, site.strict)
    if check.refused:
        journal.append("refused", n=block[0].n, reason=check.refusal)
        raise RefusedError(f"step {block[0].n} ({block[0].title()}): {check.refusal}")
    for step in check.passed:
        by = sorted({readings[p].by for p in readings})
        journal.append("confirmed", n=step.n, by=by, versions=step.after.to_json())
        options.say(f"step {step.n} confirmed ({', '.join(by)}): {step.after.describe()}")
    if check.passed:
        return None
    first = block[0]
    if progress.last.get(first.n, {}).get("type") != "waiting":
        journal.append("waiting", n=first.n)
    options.say(f"step {first.n}/{len(progress.steps)} is yours: {first.title()}")
    options.say(f"  {instructions(first)}")
    for later in block[1:]:
        options.say(f"  then step {later.n}: {later.title()}")
    if check.note:
        options.say(f"  note: {check.note}")
    if spec.opsman_source is not None:
        options.say(f"When it is done: `nsxt-upgrade journey resume {spec.path}` (reads the "
                    f"versions from Ops Manager at {spec.opsman_source.url}), or confirm by "
                    f"hand with --confirm {first.kind}={first.new}")
    else:
        options.say(f"When it is done: `nsxt-upgrade journey resume {spec.path} --confirm "
                    f"{first.kind}={first.new}`")
    return WAITING
