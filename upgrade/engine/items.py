"""Work items: one upgrade unit (or system step) and the pipeline of operations it goes through."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from upgrade.engine.machines import Tracked, UnitState
from upgrade.model import Op
from upgrade.plan import Phase


class Step(Enum):
    """How one pipeline entry is driven."""

    RUN = "run"  #: start the operation, then poll it until it ends
    START = "start"  #: start it and move on (a maintenance entry waiting for evacuation)
    WAIT = "wait"  #: only poll (verification, or the end of a started maintenance entry)


@dataclass(frozen=True, slots=True)
class Stage:
    """One entry of an item's pipeline."""

    op: Op
    step: Step
    #: the unit lifecycle input fired when the stage begins (None: stay)
    trigger: str | None


ENTER = Stage(Op.ENTER_MAINTENANCE, Step.RUN, "enter_maintenance")
ENTER_THEN_EVACUATE = (
    Stage(Op.ENTER_MAINTENANCE, Step.START, "enter_maintenance"),
    Stage(Op.EVACUATE, Step.RUN, "evacuate"),
    Stage(Op.ENTER_MAINTENANCE, Step.WAIT, None),
)
UPGRADE = (Stage(Op.UPGRADE, Step.RUN, "upgrade"), Stage(Op.VERIFY, Step.WAIT, "verify"))
EXIT = Stage(Op.EXIT_MAINTENANCE, Step.RUN, "exit_maintenance")


class Item(Tracked):
    """A unit (or a system step) being driven through its pipeline."""

    __slots__ = (
        "cluster", "deadline", "error", "group", "holds_maintenance", "index", "op_started",
        "phase", "pipeline", "skipping", "start_attempts", "target", "transient", "waiting",
    )

    def __init__(self, ident: str, phase: Phase, target: str, group: int) -> None:
        super().__init__(ident, UnitState.PENDING)
        self.phase = phase
        #: the unit id the adapter knows (system steps use pseudo-units)
        self.target = target
        self.group = group
        self.cluster: str | None = None
        self.pipeline: tuple[Stage, ...] = ()
        self.index = 0
        self.start_attempts = 0
        self.transient = 0
        self.deadline = 0.0
        self.op_started = 0.0
        #: what the item waits for: "start", "poll", "timer" or "" (nothing)
        self.waiting = ""
        self.error = ""
        self.skipping = False
        self.holds_maintenance = False

    @property
    def stage(self) -> Stage:
        """The current pipeline entry."""
        return self.pipeline[self.index]

    @property
    def active(self) -> bool:
        """True while the item is part-way through its pipeline."""
        return self.state not in (UnitState.PENDING, UnitState.DONE, UnitState.FAILED,
                                  UnitState.SKIPPED)

    @property
    def terminal(self) -> bool:
        """True when done or skipped."""
        return self.state in (UnitState.DONE, UnitState.SKIPPED)


class Group:
    """A group of items with its concurrency limit."""

    __slots__ = ("done", "items", "max_parallel", "name", "next_pending", "single_cluster")

    def __init__(self, name: str, items: list[Item], max_parallel: int) -> None:
        self.name = name
        self.items = items
        self.max_parallel = max_parallel
        self.next_pending = 0
        self.done = False
        self.single_cluster = len({i.cluster for i in items}) <= 1

    def running(self) -> int:
        """Items part-way through, plus failed ones still holding a host in maintenance."""
        return sum(1 for i in self.items if i.active or (i.holds_maintenance and not i.terminal))

    def complete(self) -> bool:
        """True when every item is done or skipped."""
        return all(i.terminal for i in self.items)
