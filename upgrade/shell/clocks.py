"""Which clock a run keeps: ``--clock`` and ``--speed``, checked against the adapter."""

from __future__ import annotations

from dataclasses import dataclass

from upgrade.clock import Clock, RealClock, VirtualClock, clock_from_json
from upgrade.core.model import Playbook
from upgrade.errors import InputError
from upgrade.shell.journal import Journal


@dataclass
class ClockChoice:
    """``--clock`` and ``--speed`` as given (None: not given)."""

    kind: str | None = None
    speed: float | None = None


def choose_clock(choice: ClockChoice, playbook: Playbook, start: float) -> Clock:
    """The clock ``choice`` asks for (the adapter's default if none), reading ``start``;
    an InputError when the adapter cannot keep it."""
    if choice.kind == "virtual" and choice.speed is not None:
        raise InputError("--speed applies to --clock real: a virtual clock jumps straight to "
                         "the next thing that is due")
    default = "virtual" if playbook.inventory.adapter == "simulated" and choice.speed is None \
        else "real"
    kind = choice.kind or default
    if kind == "virtual":
        if playbook.inventory.adapter != "simulated":
            raise InputError("--clock virtual works only with the simulated adapter: a real "
                             "NSX-T Manager keeps real time")
        return VirtualClock(start)
    return RealClock.starting_at(start, choice.speed or 1.0)


def resumed_clock(journal: Journal, choice: ClockChoice, playbook: Playbook,
                  last_at: float) -> Clock:
    """The clock a resumed run keeps: the one it was started with unless ``choice`` says
    otherwise, reading no earlier than the journal's last record (``last_at``)."""
    stored = journal.get_meta("clock")
    previous = clock_from_json(stored) if stored else VirtualClock(last_at)
    now = max(last_at, previous.now())
    was_real = isinstance(previous, RealClock)
    kind = choice.kind or ("real" if was_real or choice.speed is not None else "virtual")
    speed = choice.speed
    if speed is None and kind == "real":
        speed = previous.speed if isinstance(previous, RealClock) else 1.0
    return choose_clock(ClockChoice(kind, speed), playbook, now)
