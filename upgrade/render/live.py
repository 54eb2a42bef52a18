"""What an operator sees during and after a run, and the JSON log in the state directory.

A live rich progress bar when stdout is a terminal; plain lines otherwise
(CI logs, pipes).  Every notice also goes to ``run.log`` as one JSON object
per line (structlog), which is where to look after the fact.

A closed stdout (``nsxt-upgrade run ... | head -2``) never stops an upgrade: the
run goes on, and what it would have printed goes to ``run.log`` instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import structlog
from rich import box
from rich.console import Console
from rich.emoji import Emoji
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.messages import Notice, NoticeKind
from upgrade.core.plan import SYSTEM_ITEMS
from upgrade.render import hms, printable
from upgrade.render.hints import engine_facts, next_command

#: notices that end a unit (the progress bar advances)
_UNIT_ENDS = (NoticeKind.UNIT_DONE, NoticeKind.DRIFT)
#: notices shown only with verbose units
_PER_UNIT = (NoticeKind.UNIT_DONE, NoticeKind.RETRY)
#: notices the closing summary says instead
_SETTLED = (NoticeKind.PAUSED, NoticeKind.FAILED)
_PHASE_EDGES = (NoticeKind.PHASE_STARTED, NoticeKind.PHASE_DONE)


class PipeSafeConsole(Console):
    """A console that goes quiet when its reader goes away, instead of exiting.

    rich's default :meth:`~rich.console.Console.on_broken_pipe` raises ``SystemExit(1)``,
    which would kill an upgrade in the middle because ``| head`` had seen enough.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: set once a write found the reader gone
        self.closed = False
        self._on_closed: Callable[[], None] | None = None

    def set_on_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the reader goes away."""
        self._on_closed = callback

    def on_broken_pipe(self) -> None:
        """Stop writing; point the file descriptor at /dev/null so that Python's own
        flush at exit does not fail on the broken pipe either."""
        self.quiet = True
        self.closed = True
        with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.file.fileno())
            finally:
                os.close(devnull)
        if self._on_closed is not None:
            self._on_closed()


class Display:
    """Progress, notices and the closing summary of one run."""

    def __init__(self, console: Console, log_path: Path | None = None,
                 verbose_units: bool = True, state_dir: Path | None = None) -> None:
        self.console = console
        #: named in the commands the summary suggests
        self.state_dir = state_dir
        self.verbose_units = verbose_units
        self._log_path = log_path
        self._log_file: IO[str] | None = None
        self._log: Any = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._engine: Engine | None = None
        #: units this session found already at the target version (drift)
        self.adopted: list[str] = []

    @property
    def log(self) -> Any:
        """The JSON-lines logger of ``run.log``, opened on first use (so a command that
        is refused before it runs anything leaves no file behind); None without a path."""
        if self._log is None and self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self._log_path.open("a", encoding="utf-8")
            # everything, whatever the process-wide structlog configuration filters out
            self._log = structlog.wrap_logger(
                structlog.WriteLogger(self._log_file),
                processors=[structlog.processors.TimeStamper(fmt="iso", utc=True),
                            structlog.processors.JSONRenderer(sort_keys=True)],
                wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            )
        return self._log

    @property
    def output_closed(self) -> bool:
        """True once stdout's reader went away (output then goes to run.log only)."""
        return isinstance(self.console, PipeSafeConsole) and self.console.closed

    def stdout_closed(self) -> None:
        """Called by the console when its reader goes away: say so where it can be read."""
        if self.log is not None:
            self.log.warning("stdout_closed", text="stdout was closed (its reader went away); "
                             "the run goes on, and its output continues here")

    def line(self, text: str) -> None:
        """A plain message for the operator (and the log)."""
        self._print(text, logged=True)
        if self.log is not None:
            self.log.info("message", text=text)

    def _print(self, text: str, *, logged: bool = False) -> None:
        text = printable(text, newlines=True)
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        elif not write_plain(self.console, text):
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        if self.output_closed and not logged and self.log is not None:
            self.log.info("output", text=text)

    def begin(self, engine: Engine) -> None:
        """Start showing progress for ``engine``'s units."""
        self._engine = engine
        if self.console.is_terminal:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), console=self.console)
            units = [i for i in engine.items.values() if i.id not in SYSTEM_ITEMS]
            done = sum(1 for i in units if i.terminal)
            self._task = self._progress.add_task("upgrading", total=len(units), completed=done)
            self._progress.start()

    def notice(self, notice: Notice, now: float | None = None) -> None:
        """Show one engine notice; ``now``: the engine's time when it was issued (the
        runner tells a notice once it is journaled, maybe later), else the engine's now."""
        kind = notice.kind
        if now is None and self._engine is not None:
            now = self._engine.now
        if self.log is not None:
            self.log.info(kind, message=notice.message, unit=notice.unit or None, at=now)
        at = f"[{hms(now)}] " if now is not None else ""
        if kind == NoticeKind.DRIFT and notice.unit:
            self.adopted.append(notice.unit)
        if kind in _UNIT_ENDS and self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
            self._progress.update(self._task,
                                  description=escape(f"last: {printable(notice.unit)}"))
            if kind == NoticeKind.UNIT_DONE:
                return
        if kind in _PER_UNIT and not self.verbose_units:
            return
        if kind in _SETTLED or (kind == NoticeKind.DONE and self._engine is not None
                                and self._engine.plan.nothing_to_do):
            return  # the closing summary says it, with what to do next
        if kind in _PHASE_EDGES and self._engine is not None and \
                _idle_phase(self._engine, notice.message.split(" ", 1)[0]):
            return  # a phase with nothing to do (its units already at the target)
        text = notice.message
        if kind == NoticeKind.STOPPING:
            text = f"stopping ({text}): nothing new starts, what is in flight finishes"
        elif kind == NoticeKind.UNIT_FAILED:
            text = f"failed: {text}"
        self._print(f"{at}{text}")

    def end(self, engine: Engine) -> None:
        """Stop the progress display and print the closing summary."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        table = summary_table(engine)
        self.console.print(table)
        if self.output_closed and self.log is not None:
            self.log.info("output", text=_plain(table))
        if engine.plan.already_at_target:
            if self.log is not None:
                self.log.info("already_at_target", units=list(engine.plan.already_at_target))
            self._print(f"already at {engine.plan.target_version} when the run was planned "
                        f"(not touched): {', '.join(engine.plan.already_at_target)}")
        if self.adopted:
            self._print("already at the target version before this run upgraded them (left "
                        f"as they are, counted as done): {', '.join(self.adopted)}")
        for line in attention(engine, self.state_dir):
            self._print(line)
        if self.log is not None:
            self.log.info("summary", state=engine.state.value, phase=engine.phase.value)
        self.close()

    def close(self) -> None:
        """Close ``run.log`` (if it was opened); safe to call more than once."""
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_plain(console: Console, text: str) -> bool:
    """Write ``text`` and a newline as ``console.print(text, markup=False, highlight=False,
    soft_wrap=True)`` would, without rich's rendering, when that is sure to give the same
    bytes: a plain console (not a terminal, not recording, not buffering) and printable
    ASCII that no emoji code in it changes.  False (nothing written) otherwise.

    A run prints a line per unit: rich's rendering of each is most of the display's cost.
    """
    if not (text.isascii() and text.isprintable()) or console.is_terminal or console.record \
            or console.is_jupyter or console.legacy_windows \
            or getattr(console, "_buffer_index", 1) != 0:
        return False
    if ":" in text and Emoji.replace(text) != text:
        return False
    if console.quiet:  # as rich does: nothing is written
        return True
    try:
        console.file.write(text + "\n")
        console.file.flush()
    except BrokenPipeError:
        console.on_broken_pipe()
    return True


def _plain(table: Table) -> str:
    """``table`` as plain text, for run.log."""
    table.box = box.ASCII
    console = Console(file=io.StringIO(), width=100, color_system=None)
    with console.capture() as capture:
        console.print(table)
    return capture.get()


def summary_table(engine: Engine) -> Table:
    """Phases with their simulated or real durations, against the plan's estimates."""
    state = engine.state.value if engine.settled else "stopped at once"
    table = Table(title=f"run {state} (phase {engine.phase.value})",
                  title_justify="left")
    for column in ("phase", "took", "estimated", "units"):
        table.add_column(column)
    estimates = {p.name.value: p for p in engine.plan.phases}
    for phase, groups in engine.groups.items():
        start, end = engine.phase_times.get(phase.value, [None, None])
        took = hms(end - start) if start is not None and end is not None else (
            "-" if start is None else "stopped" if engine.settled else "running")
        if not any(g.items for g in groups):
            took = "-"  # nothing to do in it
        units = [i for g in groups for i in g.items if i.id not in SYSTEM_ITEMS]
        done = sum(1 for i in units if i.state is UnitState.DONE)
        current = sum(len(g.current) for g in estimates[phase.value].groups)
        count = f"{done}/{len(units)}" if units else ""
        if current:
            count += f"{' ' if count else ''}({current} already at target)"
        table.add_row(phase.value, took, hms(estimates[phase.value].estimated_duration_s),
                      count)
    return table


def _idle_phase(engine: Engine, name: str) -> bool:
    """True when phase ``name`` has no work item (nothing to do in it)."""
    return not any(g.items for phase, groups in engine.groups.items()
                   if phase.value == name for g in groups)


def attention(engine: Engine, state_dir: Path | None = None) -> list[str]:
    """Lines about what needs an operator: failures, skips, slow units, the next command."""
    lines = []
    for item in engine.items.values():
        if item.state is UnitState.FAILED:
            lines.append(f"needs attention: {item.id}: {item.error}")
        elif item.state is UnitState.SKIPPED:
            left = "" if item.id in SYSTEM_ITEMS else " (left at its old version)"
            lines.append(f"skipped by an operator: {item.id}{left}")
    slow = _slow_units(engine)
    if slow:
        lines.append("slower than expected: " + ", ".join(slow))
    hint = next_command(engine_facts(engine), state_dir)
    if engine.state is RunState.PAUSED:
        reasons = "; ".join(engine.stop_reasons) or "paused"
        lines.append(f"paused: {reasons}")
        lines += [hint] if hint else []
    elif engine.state is RunState.FAILED:
        lines.append(f"failed: {'; '.join(engine.stop_reasons)}")
        lines += [hint] if hint else []
    elif engine.state is RunState.DONE:
        units = [i for i in engine.items.values() if i.id not in SYSTEM_ITEMS]
        done = sum(1 for i in units if i.state is UnitState.DONE)
        skipped = len(units) - done
        target = engine.plan.target_version
        current = engine.plan.already_at_target
        if engine.plan.nothing_to_do:
            lines.append(f"nothing to do: all {len(current)} units already report {target}; "
                         "nothing was changed")
        else:
            lines.append(f"upgrade complete: {done} units at {target}"
                         + (f", {skipped} skipped" if skipped else "")
                         + (f", {len(current)} already there" if current else ""))
    return lines


def _slow_units(engine: Engine) -> list[str]:
    durations = engine.inventory.durations
    kinds = engine.inventory.units()
    slow = []
    for unit, (start, end) in engine.unit_times.items():
        if unit in SYSTEM_ITEMS or start is None or end is None or unit not in kinds:
            continue
        expected = durations.upgrade(kinds[unit])
        if expected and end - start > 1.5 * expected + 600:
            slow.append(f"{unit} ({hms(end - start)} against {hms(expected)} expected)")
    return slow
