"""``--events FILE``: the run as a stream of JSON lines, written as things happen.

One JSON object per line, appended to FILE (``-``: stdout) and flushed at once::

    {"at": "2026-12-01T07:00:00+00:00", "sim_s": 2160.0, "type": "unit_started",
     "phase": "hosts", "unit": "esx-01"}

``type`` is one of ``run_started``, ``phase_started``, ``phase_done``,
``unit_started``, ``unit_done``, ``unit_failed``, ``unit_retry``, ``paused``,
``resumed``, ``run_done`` and ``run_failed``; keys that do not apply are absent.
Units are the hosts, edges, controllers and the manager (one ``unit_done``
each, also for a unit skipped or found already at the target); the pre-check,
bundle, coordinator and post-check appear as phases (their retries and
failures carry ``phase`` and no ``unit``).  ``sim_s`` is the run's clock in
seconds since the run began (simulated seconds on the virtual clock) and ``at``
the calendar time of that clock: the run's start plus ``sim_s``.

Each process reports what happens while it runs, and the stream is derivable
from the journal: a crash (kill -9) between journaling a step and writing its
line loses that line, so ``resume`` into the same file first writes what the
journal holds and the file lacks (:meth:`EventLog.catch_up`), then
``resumed`` and what is new, never a line twice.  A consumer that goes away
(a closed pipe) stops the stream, not the upgrade.

The stream is built from what the runner journals in each step (the event
and the actions it caused), with the same rules as :mod:`upgrade.core.chronicle`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from upgrade.core.engine.core import Engine
from upgrade.core.engine.messages import (
    Action,
    Begin,
    Event,
    Notice,
    NoticeKind,
    Resumed,
    Start,
    encode,
)
from upgrade.core.steps import Step, done_detail, phase_of_notice, steps, stop_source
from upgrade.errors import InputError
from upgrade.shell.run_records import iso

#: engine notices written as events of the same name (DESIGN section 3)
PASSTHROUGH = (NoticeKind.WINDOW_CLOSED, NoticeKind.WINDOW_OPENED, NoticeKind.CANARY_DONE)
#: every event type of DESIGN section 3
TYPES = ("run_started", "phase_started", "phase_done", "unit_started", "unit_done",
         "unit_failed", "unit_retry", "paused", "resumed", "run_done", "run_failed",
         *PASSTHROUGH)


class EventLog:
    """Writes one run's events to a file (or stdout) as JSON lines."""

    def __init__(self, target: str | Path,
                 sink: Callable[[dict[str, Any]], None] | None = None) -> None:
        """``target``: a path, or ``"-"`` for stdout. The file is opened on first use.
        ``sink``: where the lines go instead (the lines a journal makes, unwritten)."""
        self.target = str(target)
        self._sink = sink
        self._out: IO[str] | None = None
        self._broken = False
        self._origin: dt.datetime | None = None
        self._clock_origin = 0.0
        self._phase_of: dict[str, str] = {}
        self._started: set[str] = set()
        self._by: list[str] = []
        self._target_version = ""

    @property
    def to_stdout(self) -> bool:
        """True when the events go to stdout (which then carries nothing else)."""
        return self.target == "-"

    def attach(self, started_at: str | None, engine: Engine, origin: float = 0.0) -> None:
        """Follow ``engine`` (fresh, or replayed from the journal) of a run started then.

        ``origin``: the clock's reading when the run began (not 0 when a new run goes on
        in a simulated world that an aborted run left); ``sim_s`` counts from there.
        """
        self._clock_origin = origin
        self._origin = (dt.datetime.fromisoformat(started_at) if started_at
                        else dt.datetime.now(dt.UTC))
        self._phase_of = {unit: phase.name.value for phase in engine.plan.phases
                          for group in phase.groups for unit in group.units}
        # units an earlier process started already: no second unit_started on resume
        self._started = set(engine.unit_times)
        self._target_version = str(engine.plan.target_version)

    def catch_up(self, records: Iterable[tuple[str, float, Mapping[str, Any]]]) -> int:
        """Write the lines the journal's ``records`` make that the file lacks (a crash
        lost them); returns how many.  Call after :meth:`attach`, before the run goes on.

        The stream is read again from the journal by a scratch log with this one's
        origin, and compared line by line (by type, phase, unit and time) with what the
        file holds, as multisets: each missing line is written once, in journal order.
        A torn last line (killed in mid-write) is cut off first.  On stdout nothing is
        known of what a reader got, so nothing is written again there.
        """
        if self.to_stdout:
            return 0
        path = Path(self.target)
        had: Counter[tuple[Any, ...]] = Counter()
        if path.is_file() and path.stat().st_size:
            _cut_torn_line(path)
            with path.open(encoding="utf-8", errors="replace") as existing:
                for text in existing:
                    try:
                        line = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(line, dict):
                        had[_key(line)] += 1
        derived: list[dict[str, Any]] = []
        scratch = EventLog(self.target, sink=derived.append)
        scratch._origin, scratch._clock_origin = self._origin, self._clock_origin
        scratch._phase_of, scratch._target_version = self._phase_of, self._target_version
        for step in steps(records):
            scratch.replay_step(step.event, step.actions, step.at)
        missing = []
        for line in derived:
            key = _key(line)
            if had[key] > 0:
                had[key] -= 1
            else:
                missing.append(line)
        for line in missing:
            self._write(line)
        return len(missing)

    def step(self, event: Event, actions: Sequence[Action]) -> None:
        """Report one journaled step: ``event`` and the actions the engine issued for it."""
        wanted = [a for a in actions if isinstance(a, Notice) or (
            isinstance(a, Start) and a.unit in self._phase_of and a.unit not in self._started)]
        if wanted or isinstance(event, Begin | Resumed):  # most steps are polls: skip fast
            self.replay_step(encode(event), [encode(a) for a in wanted], event.at)

    def replay_step(self, event: Mapping[str, Any], actions: Sequence[Mapping[str, Any]],
                    at: float) -> None:
        """:meth:`step` on journal payloads (as :mod:`upgrade.core.chronicle` reads them)."""
        step = Step(at, event, tuple(actions))
        kind = event.get("type")
        if kind == "Begin":
            self.emit("run_started", at, detail="the run starts")
        elif kind == "Resumed":
            self._by = []
            self.emit("resumed", at, detail=_resumed_detail(event))
        for action in actions:
            if action.get("type") == "Start":
                unit = str(action.get("unit"))
                if unit in self._phase_of and unit not in self._started:
                    self._started.add(unit)
                    self.emit("unit_started", at, phase=self._phase_of[unit], unit=unit,
                              detail=str(action.get("op")))
            elif action.get("type") == "Notice":
                self._notice(step, action)

    def _notice(self, step: Step, notice: Mapping[str, Any]) -> None:
        at, kind = step.at, notice.get("kind")
        unit, message = str(notice.get("unit", "")), str(notice.get("message", ""))
        where = self._where(unit)
        if kind in (NoticeKind.PHASE_STARTED, NoticeKind.PHASE_DONE):
            phase = phase_of_notice(notice)
            self.emit(str(kind), at, phase=phase.value if phase else None, detail=message)
        elif kind in (NoticeKind.UNIT_DONE, NoticeKind.DRIFT) and unit in self._phase_of:
            self.emit("unit_done", at, **where,
                      detail=done_detail(notice, self._target_version))
        elif kind == NoticeKind.UNIT_FAILED:
            self.emit("unit_failed", at, **where, detail=message.removeprefix(f"{unit}: "))
        elif kind == NoticeKind.RETRY:
            self.emit("unit_retry", at, **where, detail=message)
        elif kind == NoticeKind.STOPPING:
            self._by.append(stop_source(step))
        elif kind == NoticeKind.CONTINUING:
            self._by = []
        elif kind == NoticeKind.PAUSED:
            self.emit("paused", at, detail=self._why(message))
        elif kind == NoticeKind.FAILED:
            self.emit("run_failed", at, detail=self._why(message))
        elif kind == NoticeKind.DONE:
            self.emit("run_done", at, detail=message)
        elif kind in PASSTHROUGH:
            self.emit(str(kind), at, **where, detail=message)

    def _where(self, unit: str) -> dict[str, str]:
        if unit in self._phase_of:
            return {"phase": self._phase_of[unit], "unit": unit}
        return {"phase": unit} if unit else {}

    def _why(self, reason: str) -> str:
        by = ", ".join(dict.fromkeys(self._by)) or "engine"
        self._by = []
        return f"{reason} (asked by: {by})"

    def stopped_at_once(self, at: float) -> None:
        """The runner stopped at once (a second signal): what is in flight goes on."""
        self.emit("paused", at, detail="stopped at once by a second signal; operations "
                  "already started go on in the target system (asked by: operator)")

    def emit(self, kind: str, at: float, *, phase: str | None = None, unit: str | None = None,
             detail: str | None = None) -> None:
        """Write one event line now (flushed)."""
        if self._broken:
            return
        origin = self._origin or dt.datetime.now(dt.UTC)
        at -= self._clock_origin
        line: dict[str, Any] = {"at": iso(origin + dt.timedelta(seconds=at)),
                                "sim_s": round(at, 3), "type": kind}
        if phase is not None:
            line["phase"] = phase
        if unit is not None:
            line["unit"] = unit
        if detail:
            line["detail"] = detail
        self._write(line)

    def _write(self, line: dict[str, Any]) -> None:
        """Append one event line and flush it (a closed consumer stops the stream)."""
        if self._sink is not None:
            self._sink(line)
            return
        if self._broken:
            return
        text = json.dumps(line, ensure_ascii=False) + "\n"
        try:
            out = self._open()
            out.write(text)
            out.flush()
        except (BrokenPipeError, OSError) as exc:
            self._broken = True  # the consumer went away; the upgrade goes on
            sys.stderr.write(f"--events {self.target}: stopped writing events: {exc}\n")

    def check_writable(self) -> None:
        """Open the file now (creating it, never a directory), so a path that cannot be
        written is an input error (exit 2) before the run starts, not a stream that
        silently stops or a process that blocks."""
        try:
            self._open()
        except OSError as exc:
            raise InputError(f"--events {self.target}: cannot write it: "
                             f"{exc.strerror or exc}") from None

    def _open(self) -> IO[str]:
        if self._out is None:
            self._out = sys.stdout if self.to_stdout else open_events_file(Path(self.target))
        return self._out

    def close(self) -> None:
        """Close the file (never stdout)."""
        if self._out is not None and not self.to_stdout:
            with contextlib.suppress(OSError):  # a full disk on the last flush
                self._out.close()
        self._out = None


def open_events_file(path: Path) -> IO[str]:
    """``path`` opened to append, refusing (InputError, exit 2) what would surprise:
    a directory that does not exist (it is not created), a parent that is a file, a
    dangling symbolic link (its target would be created), and a FIFO no reader has open
    (the run would block on it forever).  A FIFO with a reader, or a character device
    such as /dev/null, is written like a file."""
    where = f"--events {path}: cannot write it"
    if path.is_symlink() and not path.exists():
        raise InputError(f"{where}: it is a symbolic link to {path.readlink()}, which does "
                         "not exist; name the file itself")
    parent = path.parent
    if not parent.exists():
        raise InputError(f"{where}: the directory {parent} does not exist (it is not "
                         "created for you); create it or name another file")
    if not parent.is_dir():
        raise InputError(f"{where}: {parent} is a file, not a directory")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO without a reader
            raise InputError(f"{where}: it is a FIFO that no process reads; start its "
                             "reader first") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
            raise InputError(f"{where}: not a file, a FIFO or a character device")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "a", encoding="utf-8")


def _key(line: Mapping[str, Any]) -> tuple[Any, ...]:
    """What identifies an event line of one run (its detail may be worded differently by
    another process, e.g. who asked for a pause)."""
    return (line.get("type"), line.get("phase"), line.get("unit"), line.get("sim_s"),
            line.get("at"))


def _cut_torn_line(path: Path) -> None:
    """Cut a last line without its newline (the writer was killed mid-line)."""
    with path.open("rb+") as data:
        size = data.seek(0, 2)
        data.seek(max(0, size - 1))
        if data.read(1) == b"\n":
            return
        keep = 0
        position = size
        while position > 0:
            start = max(0, position - 65536)
            data.seek(start)
            chunk = data.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        data.truncate(keep)


def _resumed_detail(event: Mapping[str, Any]) -> str:
    parts = ["resumed"]
    if event.get("retry_failed"):
        parts.append("retrying the failed units")
    skip = list(event.get("skip", []))
    if skip:
        parts.append("skipping " + ", ".join(skip))
    return "; ".join(parts)
