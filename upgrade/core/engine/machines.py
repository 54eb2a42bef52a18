"""The two state machines, declared as data and built with ``transitions``.

* the **unit lifecycle**: pending → entering maintenance → evacuating →
  upgrading → verifying → exiting maintenance → done, with failed and skipped;
* the **phase machine**: precheck → bundle → coordinator → hosts → edges →
  controllers → manager → postcheck → done, with paused and failed.

Each machine is one ``transitions.Machine`` shared by all its models and
driven only through the typed wrappers below, from the engine's single
thread.  An input a state does not accept raises :class:`InvalidTransition`
naming both.
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


_RUN_PHASES = [RunState(p.value) for p in PHASES]


def _phase_transitions() -> list[tuple[str, list[RunState], RunState]]:
    table: list[tuple[str, list[RunState], RunState]] = []
    for here, there in zip(_RUN_PHASES, [*_RUN_PHASES[1:], RunState.DONE], strict=True):
        table.append(("advance", [here], there))
    table.append(("pause", list(_RUN_PHASES), RunState.PAUSED))
    table.append(("fail", list(_RUN_PHASES), RunState.FAILED))
    for phase in _RUN_PHASES:
        table.append((f"resume_{phase.value}", [RunState.PAUSED, RunState.FAILED], phase))
    return table


def _build(states: type[Enum], table: list[tuple[str, list[Enum], Enum]]) -> Machine:
    machine = Machine(model=None, states=states, initial=None, auto_transitions=False,
                      ignore_invalid_triggers=False)
    for trigger, sources, dest in table:
        machine.add_transition(trigger, list[Enum | str | State](sources), dest)
    return machine


class Lifecycles:
    """The unit lifecycle machine, shared by every :class:`Unit`."""

    def __init__(self) -> None:
        self._machine = _build(UnitState, [(t, list(s), d) for t, s, d in UNIT_TRANSITIONS])

    def fire(self, unit: Tracked, trigger: str) -> UnitState:
        """Apply ``trigger`` to ``unit``; :class:`InvalidTransition` if its state refuses."""
        try:
            self._machine.events[trigger].trigger(unit)
        except MachineError:
            raise InvalidTransition(
                f"invalid input {trigger!r} for unit {unit.id} in state {unit.state.value}"
            ) from None
        except KeyError:
            raise InvalidTransition(
                f"unknown input {trigger!r} for unit {unit.id} in state {unit.state.value}"
            ) from None
        state = unit.state
        assert isinstance(state, UnitState)
        return state


class Tracked:
    """Anything with an id and a state the machines drive."""

    __slots__ = ("id", "state")

    def __init__(self, ident: str, state: Enum) -> None:
        self.id = ident
        self.state: Enum = state


class PhaseMachine:
    """The run's phase machine; one per engine."""

    def __init__(self) -> None:
        self._machine = _build(RunState, _phase_transitions())  # type: ignore[arg-type]
        self.model = Tracked("run", RunState.PRECHECK)

    @property
    def state(self) -> RunState:
        """The current state."""
        state = self.model.state
        assert isinstance(state, RunState)
        return state

    @property
    def phase(self) -> Phase | None:
        """The current phase, or None when paused, failed or done."""
        try:
            return Phase(self.state.value)
        except ValueError:
            return None

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

    def resume(self, phase: Phase) -> None:
        """Continue a paused or failed run in ``phase``."""
        self._fire(f"resume_{phase.value}")

    def set_phase(self, phase: Phase) -> None:
        """Start in ``phase`` (only before anything ran)."""
        self.model.state = RunState(phase.value)
