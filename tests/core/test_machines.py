"""Every state x every input of the two state machines (STYLE: h2's stream tests).

The expected tables are written out here, independently of
:mod:`upgrade.core.engine.machines`: each (state, input) pair either moves to the
state the table says or raises :class:`InvalidTransition` naming both the
input and the state, and leaves the state as it was.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import MachineError

from upgrade.core.engine.machines import (
    InvalidTransition,
    Lifecycles,
    PhaseMachine,
    RunState,
    Tracked,
    UnitState,
)
from upgrade.core.plan import PHASES, Phase

U = UnitState
P, EM, EV, UP, VE, EX = (U.PENDING, U.ENTERING_MAINTENANCE, U.EVACUATING, U.UPGRADING,
                         U.VERIFYING, U.EXITING_MAINTENANCE)
WORKING = (EM, EV, UP, VE, EX)

#: (input, state) -> next state; every pair not listed is invalid
UNIT_TABLE: dict[tuple[str, UnitState], UnitState] = {
    ("enter_maintenance", P): EM,
    # a retried unit restarts at the stage that failed, from pending
    **{("evacuate", s): EV for s in (P, EM)},
    **{("upgrade", s): UP for s in (P, EM, EV)},
    **{("verify", s): VE for s in (P, UP)},
    **{("exit_maintenance", s): EX for s in (P, EM, EV, UP, VE)},
    **{("finish", s): U.DONE for s in (UP, VE, EX)},
    **{("fail", s): U.FAILED for s in (P, *WORKING)},
    ("retry", U.FAILED): P,
    ("adopt", P): U.DONE,
    **{("skip", s): U.SKIPPED for s in (P, U.FAILED, EX)},
}
UNIT_INPUTS = sorted({i for i, _ in UNIT_TABLE})

R = RunState
RUN_PHASES = [R(p.value) for p in PHASES]
#: (input, state) -> next state for the phase machine
RUN_TABLE: dict[tuple[str, RunState], RunState] = {
    **{("advance", a): b for a, b in zip(RUN_PHASES, [*RUN_PHASES[1:], R.DONE], strict=True)},
    **{("pause", s): R.PAUSED for s in RUN_PHASES},
    **{("fail", s): R.FAILED for s in RUN_PHASES},
    **{(f"resume_{p.value}", s): R(p.value) for p in PHASES for s in (R.PAUSED, R.FAILED)},
}
RUN_INPUTS = ["advance", "pause", "fail", *(f"resume_{p.value}" for p in PHASES)]


def test_tables_cover_every_state() -> None:
    """The expected tables name every state of both machines (so the matrices below are
    really every state x every input)."""
    assert {s for _, s in UNIT_TABLE} | set(UNIT_TABLE.values()) == set(UnitState)
    assert {s for _, s in RUN_TABLE} | set(RUN_TABLE.values()) == set(RunState)


@pytest.mark.parametrize("state", list(UnitState), ids=lambda s: s.value)
@pytest.mark.parametrize("trigger", [*UNIT_INPUTS, "explode"])
def test_unit_lifecycle_every_state_every_input(state: UnitState, trigger: str) -> None:
    """Each input in each unit state moves to the table's state, or raises InvalidTransition
    naming the input and the state and leaves the unit where it was."""
    unit = Tracked("esx-01", state)
    expected = UNIT_TABLE.get((trigger, state))
    if expected is None:
        with pytest.raises(InvalidTransition) as exc:
            Lifecycles().fire(unit, trigger)
        assert trigger in str(exc.value)
        assert state.value in str(exc.value)
        assert unit.state is state
    else:
        assert Lifecycles().fire(unit, trigger) is expected
        assert unit.state is expected


def _run_machine(state: RunState) -> PhaseMachine:
    machine = PhaseMachine()
    machine.model.state = state
    return machine


def _fire(machine: PhaseMachine, trigger: str) -> None:
    if trigger.startswith("resume_"):
        # a run resumes in the phase it stopped in: the machine remembers it
        machine.model.phase = Phase(trigger.removeprefix("resume_"))
        machine.resume()
    else:
        getattr(machine, trigger)()


@pytest.mark.parametrize("state", list(RunState), ids=lambda s: s.value)
@pytest.mark.parametrize("trigger", RUN_INPUTS)
def test_phase_machine_every_state_every_input(state: RunState, trigger: str) -> None:
    """Each input in each run state moves to the table's state, or raises InvalidTransition
    naming the input and the state and leaves the run where it was."""
    machine = _run_machine(state)
    expected = RUN_TABLE.get((trigger, state))
    if expected is None:
        with pytest.raises(InvalidTransition) as exc:
            _fire(machine, trigger)
        assert trigger in str(exc.value)
        assert state.value in str(exc.value)
        assert machine.state is state
    else:
        _fire(machine, trigger)
        assert machine.state is expected


def test_phase_machine_phase_view() -> None:
    """``running`` is true while a phase runs, and false when paused, failed or done."""
    for state in RunState:
        assert _run_machine(state).running is (state in RUN_PHASES)
    assert PhaseMachine().state is RunState.PRECHECK
    assert PhaseMachine().phase is Phase.PRECHECK


def test_phase_machine_owns_the_phase() -> None:
    """The machine records each phase it enters, keeps it through a pause, a failure and
    the end, and resumes in it."""
    machine = PhaseMachine()
    machine.advance()
    machine.advance()
    assert (machine.state, machine.phase) == (RunState.COORDINATOR, Phase.COORDINATOR)
    machine.pause()
    assert (machine.state, machine.phase) == (RunState.PAUSED, Phase.COORDINATOR)
    machine.resume()
    assert (machine.state, machine.phase) == (RunState.COORDINATOR, Phase.COORDINATOR)
    machine.advance()
    machine.fail()
    assert (machine.state, machine.phase) == (RunState.FAILED, Phase.HOSTS)
    machine.resume()
    while machine.state is not RunState.DONE:
        machine.advance()
    assert machine.phase is Phase.POSTCHECK


def test_done_skipped_and_done_run_accept_nothing() -> None:
    """Terminal states are terminal: a done or skipped unit, and a done run, refuse every
    input."""
    for state in (U.DONE, U.SKIPPED):
        assert not [t for t in UNIT_INPUTS if (t, state) in UNIT_TABLE]
    assert not [t for t in RUN_INPUTS if (t, R.DONE) in RUN_TABLE]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(UNIT_INPUTS), max_size=30))
def test_unit_lifecycle_follows_the_table_over_sequences(inputs: list[str]) -> None:
    """Any sequence of inputs from pending: the machine tracks the table exactly, one shared
    machine driving several units without mixing them up."""
    machine = Lifecycles()
    unit, bystander = Tracked("a", P), Tracked("b", P)
    expected = P
    for trigger in inputs:
        nxt = UNIT_TABLE.get((trigger, expected))
        if nxt is None:
            with pytest.raises(InvalidTransition):
                machine.fire(unit, trigger)
        else:
            machine.fire(unit, trigger)
            expected = nxt
        assert unit.state is expected
        assert bystander.state is P


@pytest.mark.parametrize("state", list(UnitState), ids=lambda s: s.value)
@pytest.mark.parametrize("trigger", [*UNIT_INPUTS, "no_such_input"])
def test_lifecycle_fires_as_its_transitions_machine_does(state: UnitState, trigger: str) -> None:
    """The lifecycle fires each input through the table it read from its ``transitions``
    machine: the same state as triggering that machine itself, or a refusal where the
    machine refuses."""
    lifecycles = Lifecycles()
    ours, theirs = Tracked("u", state), Tracked("u", state)
    try:
        lifecycles._machine.events[trigger].trigger(theirs)
    except (MachineError, KeyError):
        with pytest.raises(InvalidTransition):
            lifecycles.fire(ours, trigger)
        assert ours.state is state
    else:
        assert lifecycles.fire(ours, trigger) is theirs.state
