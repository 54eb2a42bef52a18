"""The two state machines, declared as data and built with ``transitions``.

* the **unit lifecycle**: pending → entering maintenance → evacuating →
  upgrading → verifying → exiting maintenance → done, with failed and skipped;
* the **phase machine**: precheck → bundle → coordinator → the unit phases in the
  order of the plan's flow (NSX-T 2.1-2.3: hosts → edges → controllers → manager; 2.4:
  no controllers) → postcheck → done, with paused and failed.

Each machine is one ``transitions.Machine`` shared by all its models and
driven only through the typed wrappers below, from the engine's single
thread.  An input a state does not accept raises :class:`InvalidTransition`
naming both.  The phase machine is the one owner of the run's phase: entering a
phase state records it (a callback of the machine), so a paused or failed run
still knows the phase it resumes in.
"""

from __future__ import annotations

from enum import Enum

from transitions import Machine, MachineError, State

from upgrade.core.plan import PHASES, Phase


class InvalidTransition(Exception):
    """An input that the current state does not accept."""


class UnitState(Enum):
    """Where one upgrade unit is in its lifecycle."""

    PENDING = "pending"  #: not started (or reset for a retry)
    ENTERING_MAINTENANCE = "entering_maintenance"  #: maintenance mode requested
    EVACUATING = "evacuating"  #: the orchestrator is moving powered-on VMs off
    UPGRADING = "upgrading"  #: the upgrade (or a system step) runs
    VERIFYING = "verifying"  #: waiting for the unit to report the target version
    EXITING_MAINTENANCE = "exiting_maintenance"  #: leaving maintenance mode
    DONE = "done"  #: at the target version, out of maintenance
    FAILED = "failed"  #: an operation failed; an operator decides
    SKIPPED = "skipped"  #: an operator chose to leave it as it is

    #: by identity (members are singletons): Enum's own hash runs Python code, and the
    #: engine looks states up in tables on every event
    __hash__ = object.__hash__


_ACTIVE = [UnitState.ENTERING_MAINTENANCE, UnitState.EVACUATING, UnitState.UPGRADING,
           UnitState.VERIFYING, UnitState.EXITING_MAINTENANCE]

#: (trigger, sources, destination): the whole unit lifecycle
UNIT_TRANSITIONS: tuple[tuple[str, list[UnitState], UnitState], ...] = (
    ("enter_maintenance", [UnitState.PENDING], UnitState.ENTERING_MAINTENANCE),
    ("evacuate", [UnitState.PENDING, UnitState.ENTERING_MAINTENANCE], UnitState.EVACUATING),
    ("upgrade", [UnitState.PENDING, UnitState.ENTERING_MAINTENANCE, UnitState.EVACUATING],
     UnitState.UPGRADING),
    ("verify", [UnitState.PENDING, UnitState.UPGRADING], UnitState.VERIFYING),
    ("exit_maintenance", [UnitState.PENDING, UnitState.VERIFYING, UnitState.ENTERING_MAINTENANCE,
                          UnitState.EVACUATING, UnitState.UPGRADING],
     UnitState.EXITING_MAINTENANCE),
    ("finish", [UnitState.UPGRADING, UnitState.VERIFYING, UnitState.EXITING_MAINTENANCE],
     UnitState.DONE),
    ("fail", [UnitState.PENDING, *_ACTIVE], UnitState.FAILED),
    ("retry", [UnitState.FAILED], UnitState.PENDING),
    ("adopt", [UnitState.PENDING], UnitState.DONE),
    ("skip", [UnitState.PENDING, UnitState.FAILED, UnitState.EXITING_MAINTENANCE],
     UnitState.SKIPPED),
)


class RunState(Enum):
    """The phase machine's states: the phases, then how the run ended or waits."""

    PRECHECK = "precheck"  #: checking health
    BUNDLE = "bundle"  #: uploading the bundle
    COORDINATOR = "coordinator"  #: upgrading the Upgrade Coordinator
    HOSTS = "hosts"  #: upgrading host transport nodes
    EDGES = "edges"  #: upgrading edges
    CONTROLLERS = "controllers"  #: upgrading controllers
    MANAGER = "manager"  #: upgrading the manager
    POSTCHECK = "postcheck"  #: checking the result
    DONE = "done"  #: finished
    PAUSED = "paused"  #: waiting for an operator
    FAILED = "failed"  #: stopped by a failure under on_error: abort (or a failed check)

    __hash__ = object.__hash__  #: by identity, as :class:`UnitState`


#: the run state of each phase, and back
_STATE_OF: dict[Phase, RunState] = {p: RunState(p.value) for p in PHASES}
_PHASE_OF: dict[RunState, Phase] = {s: p for p, s in _STATE_OF.items()}


def _phase_transitions(order: tuple[Phase, ...]) -> list[tuple[str, list[RunState], RunState]]:
    """The phase machine's table for the phases ``order`` names, in that order."""
    run_phases = [_STATE_OF[p] for p in order]
    table: list[tuple[str, list[RunState], RunState]] = []
    for here, there in zip(run_phases, [*run_phases[1:], RunState.DONE], strict=True):
        table.append(("advance", [here], there))
    table.append(("pause", list(run_phases), RunState.PAUSED))
    table.append(("fail", list(run_phases), RunState.FAILED))
    for phase in run_phases:
        table.append((f"resume_{phase.value}", [RunState.PAUSED, RunState.FAILED], phase))
    return table


def _build(states: type[Enum], table: list[tuple[str, list[Enum], Enum]],
           after_state_change: str | None = None) -> Machine:
    machine = Machine(model=None, states=states, initial=None, auto_transitions=False,
                      ignore_invalid_triggers=False, after_state_change=after_state_change)
    for trigger, sources, dest in table:
        machine.add_transition(trigger, list[Enum | str | State](sources), dest)
    return machine


class Lifecycles:
    """The unit lifecycle machine, shared by every :class:`Unit`.

    The machine is a ``transitions.Machine`` built from :data:`UNIT_TRANSITIONS`; it has
    no callbacks, so firing an input is only finding its destination, which is read once
    from the machine's own transition table (no per-input event object: units change
    state tens of thousands of times in a big run).
    """

    def __init__(self) -> None:
        self._machine = _build(UnitState, [(t, list(s), d) for t, s, d in UNIT_TRANSITIONS])
        #: (input, state) -> the state it leads to, as the machine declares it (read-only:
        #: :meth:`.state.Ledger.fire` looks a move up here and comes to :meth:`fire` only
        #: for an input the state refuses)
        self.moves: dict[tuple[str, Enum], UnitState] = {}
        for trigger, event in self._machine.events.items():
            for source, (move, *_) in event.transitions.items():
                assert move.dest is not None and not move.conditions  # a plain table
                self.moves[(trigger, UnitState[source])] = UnitState[move.dest]

    def fire(self, unit: Tracked, trigger: str) -> UnitState:
        """Apply ``trigger`` to ``unit``; :class:`InvalidTransition` if its state refuses."""
        state = self.moves.get((trigger, unit.state))
        if state is None:
            known = "invalid" if trigger in self._machine.events else "unknown"
            raise InvalidTransition(
                f"{known} input {trigger!r} for unit {unit.id} in state {unit.state.value}")
        unit.state = state
        return state


class Tracked:
    """Anything with an id and a state the machines drive."""

    __slots__ = ("id", "state")

    def __init__(self, ident: str, state: Enum) -> None:
        self.id = ident
        self.state: Enum = state


class RunModel(Tracked):
    """The run as the phase machine drives it: its state, and the phase it is (or was) in."""

    __slots__ = ("phase",)

    def __init__(self) -> None:
        super().__init__("run", RunState.PRECHECK)
        #: the phase running now, or the one the run paused, failed or finished in
        self.phase = Phase.PRECHECK

    def track_phase(self) -> None:
        """Record the phase just entered (called by the machine after every transition)."""
        state = self.state
        if isinstance(state, RunState) and state in _PHASE_OF:
            self.phase = _PHASE_OF[state]


class PhaseMachine:
    """The run's phase machine; one per engine, and the one owner of the run's phase.

    Built from ``order``, the plan's phases (the flow's order; default: every phase, the
    order of NSX-T 2.1-2.3): a phase the order leaves out is no state it can reach, so a
    2.4 run has no controller phase to enter.  The first phase must be the pre-check.
    """

    def __init__(self, order: tuple[Phase, ...] = PHASES) -> None:
        if not order or order[0] is not Phase.PRECHECK:
            raise ValueError(f"a run's phases begin with the pre-check, not {order[:1]}")
        self.order = order
        self._machine = _build(RunState, _phase_transitions(order),  # type: ignore[arg-type]
                               after_state_change="track_phase")
        self.model = RunModel()

    @property
    def state(self) -> RunState:
        """The current state."""
        state = self.model.state
        assert isinstance(state, RunState)
        return state

    @property
    def phase(self) -> Phase:
        """The phase running now, or the one the run paused, failed or finished in."""
        return self.model.phase

    @property
    def running(self) -> bool:
        """True while a phase runs (not paused, failed or done)."""
        return self.model.state in _PHASE_OF

    def _fire(self, trigger: str) -> None:
        try:
            self._machine.events[trigger].trigger(self.model)
        except MachineError:
            raise InvalidTransition(
                f"invalid input {trigger!r} in run state {self.state.value}"
            ) from None

    def advance(self) -> None:
        """Move to the next phase (or done after the post-check)."""
        self._fire("advance")

    def pause(self) -> None:
        """Wait for an operator."""
        self._fire("pause")

    def fail(self) -> None:
        """Stop as failed."""
        self._fire("fail")

    def resume(self) -> None:
        """Continue a paused or failed run in the phase it stopped in."""
        self._fire(f"resume_{self.phase.value}")

    def begin(self) -> None:
        """Start in the first phase (only before anything ran)."""
        self.model.state = RunState.PRECHECK
        self.model.phase = Phase.PRECHECK

    def restore(self, state: RunState, phase: Phase) -> None:
        """Put the machine back in ``state`` in ``phase`` (a snapshot's)."""
        self.model.state = state
        self.model.phase = phase
