"""Work items: one upgrade unit (or system step) and the pipeline of operations it goes through."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from upgrade.core.engine.machines import Tracked, UnitState
from upgrade.core.model import Op
from upgrade.core.plan import Phase


class Step(Enum):
    """How one pipeline entry is driven."""

    RUN = "run"  #: start the operation, then poll it until it ends
    START = "start"  #: start it and move on (a maintenance entry waiting for evacuation)
    WAIT = "wait"  #: only poll (verification, or the end of a started maintenance entry)

    __hash__ = object.__hash__  #: by identity: Enum's own hash runs Python code


class Waiting(StrEnum):
    """What an item waits for before its pipeline can move."""

    NOTHING = ""  #: nothing: it is not started, or between two stages
    START = "start"  #: the answer to a :class:`~upgrade.core.engine.messages.Start`
    POLL = "poll"  #: the answer to a :class:`~upgrade.core.engine.messages.Poll`
    TIMER = "timer"  #: a :class:`~upgrade.core.engine.messages.Wake` (a retry's backoff)


@dataclass(frozen=True, slots=True)
class Stage:
    """One entry of an item's pipeline."""

    op: Op
    step: Step
    #: the unit's lifecycle state while the stage runs
    state: UnitState


ENTER = Stage(Op.ENTER_MAINTENANCE, Step.RUN, UnitState.ENTERING_MAINTENANCE)
ENTER_THEN_EVACUATE = (
    Stage(Op.ENTER_MAINTENANCE, Step.START, UnitState.ENTERING_MAINTENANCE),
    Stage(Op.EVACUATE, Step.RUN, UnitState.EVACUATING),
    Stage(Op.ENTER_MAINTENANCE, Step.WAIT, UnitState.EVACUATING),
)
UPGRADE = (
    Stage(Op.UPGRADE, Step.RUN, UnitState.UPGRADING),
    Stage(Op.VERIFY, Step.WAIT, UnitState.VERIFYING),
)
EXIT = Stage(Op.EXIT_MAINTENANCE, Step.RUN, UnitState.EXITING_MAINTENANCE)
#: the VMs its evacuation moved come back (the host is out of maintenance by then)
RESTORE = Stage(Op.RESTORE, Step.RUN, UnitState.EXITING_MAINTENANCE)
#: the lifecycle input that moves a unit into each working state
TRIGGER = {
    UnitState.ENTERING_MAINTENANCE: "enter_maintenance",
    UnitState.EVACUATING: "evacuate",
    UnitState.UPGRADING: "upgrade",
    UnitState.VERIFYING: "verify",
    UnitState.EXITING_MAINTENANCE: "exit_maintenance",
}


#: the lifecycle states of an item part-way through its pipeline, and of one done with
#: (frozensets made once: :attr:`Item.active` and :attr:`Item.terminal` are asked per event)
_ACTIVE = frozenset(UnitState) - {UnitState.PENDING, UnitState.DONE, UnitState.FAILED,
                                  UnitState.SKIPPED}
_TERMINAL = frozenset({UnitState.DONE, UnitState.SKIPPED})
_PENDING, _NOTHING = UnitState.PENDING, Waiting.NOTHING  # a member read off its class is slow


class Item(Tracked):
    """A unit (or a system step) being driven through its pipeline."""

    __slots__ = (
        "cluster", "counted", "deadline", "error", "group", "holds_maintenance", "index",
        "moves", "op_started", "phase", "pipeline", "restores", "seen", "skipping",
        "start_attempts", "target", "transient", "waiting",
    )

    def __init__(self, ident: str, phase: Phase, target: str, group: int,
                 cluster: str | None = None, pipeline: tuple[Stage, ...] = ()) -> None:
        # Tracked's two fields set here (no call up: 100,000 items on a big site)
        self.id = ident
        self.state = _PENDING
        self.phase = phase
        #: the unit id the adapter knows (system steps use pseudo-units)
        self.target = target
        self.group = group
        self.cluster = cluster
        self.pipeline = pipeline
        self.index = 0
        self.start_attempts = 0
        self.transient = 0
        self.deadline = 0.0
        self.op_started = 0.0
        #: what the item waits for
        self.waiting = Waiting.NOTHING
        self.error = ""
        self.skipping = False
        self.holds_maintenance = False
        #: the (vm, destination) moves of its evacuation, once chosen
        self.moves: tuple[tuple[str, str], ...] | None = None
        #: the (vm, this host) moves that bring its VMs back, once chosen
        self.restores: tuple[tuple[str, str], ...] | None = None
        #: whether the item takes one of its group's parallel slots
        self.counted = False
        #: what the last poll of the current operation said: (event type, state, detail)
        self.seen: tuple[str, str, str] | None = None

    @property
    def stage(self) -> Stage:
        """The current pipeline entry."""
        return self.pipeline[self.index]

    @property
    def active(self) -> bool:
        """True while the item is part-way through its pipeline."""
        return self.state in _ACTIVE

    @property
    def terminal(self) -> bool:
        """True when done or skipped."""
        return self.state in _TERMINAL


class Group:
    """A group of items with its concurrency limit."""

    __slots__ = ("busy", "cursor", "failed", "finished", "items", "max_parallel", "name",
                 "single_cluster")

    def __init__(self, name: str, items: list[Item], max_parallel: int) -> None:
        self.name = name
        self.items = items
        self.max_parallel = max_parallel
        #: items taking a parallel slot: part-way through, or failed holding maintenance
        self.busy = 0
        #: items done or skipped
        self.finished = 0
        #: items failed
        self.failed = 0
        #: every item before this index has been started at least once, and none is pending
        self.cursor = 0
        self.single_cluster = len({i.cluster for i in items}) <= 1

    def recount(self, item: Item) -> None:
        """Update the counters after ``item`` changed state."""
        state = item.state
        counted = state in _ACTIVE or (item.holds_maintenance and state not in _TERMINAL)
        if counted != item.counted:
            self.busy += 1 if counted else -1
            item.counted = counted

    def complete(self) -> bool:
        """True when every item is done or skipped."""
        return self.finished == len(self.items)

    def startable(self) -> bool:
        """True when an item is pending and waits for nothing (one may start)."""
        if self.complete():
            return False
        items = self.items
        # no item before the cursor is pending: a retry, the one way back to pending,
        # puts the cursor back to 0
        for index in range(self.cursor, len(items)):
            item = items[index]
            if item.state is _PENDING and item.waiting is _NOTHING:
                return True
        return False
