"""``nsxt-upgrade run`` and ``nsxt-upgrade resume``."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from upgrade.cli.confirm import confirm_start
from upgrade.cli.params import MAX_SPEED, MIN_SPEED, SPEED, plain
from upgrade.cli.plan_cmd import interrupted_planning
from upgrade.prepare.planning import Prepared
from upgrade.render import hms
from upgrade.render.live import Display, PipeSafeConsole
from upgrade.shell.dirstate import Command, locate
from upgrade.shell.events import EventLog
from upgrade.shell.session import ClockChoice, plan_for_run, resume_run, start_run
from upgrade.shell.statedir import default_state_dir
from upgrade.shell.window_calendar import START_AT

_CLOCK = click.option(
    "--clock", type=click.Choice(["virtual", "real"]), default=None,
    help="virtual (default with the simulated adapter): simulated time jumps ahead, a "
    "three-hour upgrade takes well under a second. real: wall time times --speed.",
)
_RESUME_CLOCK = click.option(
    "--clock", type=click.Choice(["virtual", "real"]), default=None,
    help="Default: the clock the run was started with (a virtual run stays virtual, a real "
    "one keeps its --speed). virtual: simulated time jumps ahead (simulated adapter only); "
    "real: wall time times --speed.",
)
_SPEED = click.option(
    "--speed", type=SPEED, default=None, metavar="X",
    help=f"Simulated seconds per real second on the real clock (600: ten minutes a second; "
    f"{plain(MIN_SPEED)} to {plain(MAX_SPEED)}); --speed alone means --clock real.",
)
_STATE_DIR = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where the journal, the copies of the playbook and plan, and the simulated world "
    "live. Default: ./.nsxt-upgrade/<playbook name>.",
)
_RESUME_STATE_DIR = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The state directory of the run to continue. Default: the only run under "
    "./.nsxt-upgrade (if there are several, the error lists them).",
)
_EVENTS = click.option(
    "--events", "events", type=click.Path(dir_okay=False, allow_dash=True), default=None,
    metavar="FILE",
    help="Append the run's events to FILE as JSON lines, as they happen (run_started, "
    "phase_started, unit_done, paused, ...). '-' writes them to stdout, and everything else "
    "the command prints goes to stderr.",
)
_CODES = """
    \b
    Exit codes:
      0  done             1  failed or aborted      2  invalid input
      3  paused, waiting for an operator (resume continues)
      4  refused (compatibility, pre-check findings)
      5  another runner holds the state directory's lock
"""


def _display(state_dir: Path, events: EventLog | None = None) -> Display:
    out = sys.stderr if events is not None and events.to_stdout else sys.stdout
    console = PipeSafeConsole(file=out)
    display = Display(console, state_dir / "run.log", state_dir=state_dir)
    console.set_on_closed(display.stdout_closed)
    return display


def _events(target: str | None) -> EventLog | None:
    if target is None:
        return None
    stream = EventLog(target)
    stream.check_writable()
    return stream


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               epilog=_CODES)
@click.argument("playbook", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="PLAN.json",
              help="Run exactly the plan `nsxt-upgrade plan --out` saved; refused (exit 4, "
              "naming what differs) if the playbook, the inventory or the compatibility data "
              "changed since. PLAYBOOK may then be left out.")
@_STATE_DIR
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_CLOCK
@_SPEED
@click.option("--ack", "acks", multiple=True, metavar="ID",
              help="Acknowledge the pre-check warning ID (repeatable).")
@click.option("--matrix", "site", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="A site's own compatibility rows and hops, laid over the "
              "built-in data (after the playbook's compatibility.matrix).")
@click.option("--strict", is_flag=True,
              help="Refuse (exit 4) where vendor documents disagree about the compatibility.")
@click.option("--start-at", "start_at", type=START_AT, default=None, metavar="ISO-8601",
              help="Virtual clock: the calendar instant the run starts at (default: now), "
              "e.g. 2026-12-04T20:00:00+01:00; with a maintenance window, simulated time "
              "jumps from one window to the next.")
@_EVENTS
def run(playbook: Path | None, plan_file: Path | None, state_dir: Path | None, yes: bool,
        clock: str | None, speed: float | None, acks: Sequence[str], site: Path | None,
        strict: bool, start_at: float | None, events: str | None) -> None:
    """Run the upgrade PLAYBOOK describes, journaling every step.

    Plans first, exactly like `nsxt-upgrade plan`, and refuses (exit 4) what
    plan refuses. Then runs the phases in order, starting each unit as soon as
    the limits allow. Ctrl-C (or SIGTERM, or `nsxt-upgrade pause` from another
    terminal) pauses at the next safe point: nothing new starts, what is in
    flight finishes, and the run exits 3; a second Ctrl-C stops at once.
    Either way `nsxt-upgrade resume` continues exactly where it stopped.

    With --plan PLAN.json (from `nsxt-upgrade plan PLAYBOOK --out PLAN.json`)
    it runs exactly that reviewed plan, and refuses (exit 4) if a host was
    added or removed, a version or a DRS level changed, the playbook was
    edited or the compatibility data differs since the plan was saved.

    With a maintenance window in the playbook no unit starts outside it. On
    the real clock, when the window closes, what is in flight finishes and
    the run pauses (exit 3) saying when the next window opens; `resume
    --wait` sleeps until then. On the virtual clock simulated time jumps to
    the next window, and --start-at sets the calendar start.
    """
    matches: Callable[[Prepared], None] | None = None
    saved_plan: Mapping[str, Any] | None = None
    if plan_file is not None:
        from upgrade.shell.savedplan import for_run

        saved = for_run(plan_file, playbook, acks, site)
        playbook, acks, site, matches = saved.playbook, saved.acks, saved.site, saved.matches
        saved_plan = saved.estimates  # the estimates the plan computed, not driven again
    if playbook is None:
        raise click.UsageError("name the PLAYBOOK to run, or a saved plan with --plan")
    origin = start_at if start_at is not None else time.time()
    with interrupted_planning():
        prepared = plan_for_run(playbook, acks, ClockChoice(clock, speed), site, strict,
                                matches, start_at=start_at, calendar_start=origin,
                                saved_plan=saved_plan)
    plan = prepared.plan
    target_dir = state_dir or default_state_dir(plan.name)
    stream = _events(events)
    quiet = stream is not None and stream.to_stdout  # stdout carries the events only
    if plan.nothing_to_do:  # no question to ask: the run changes nothing
        click.echo(f"{plan.name}: nothing to do: every unit already reports "
                   f"{plan.target_version}; recording that in {target_dir}", err=quiet)
    elif not yes:
        click.echo(f"{plan.name}: NSX-T {plan.source_version} -> {plan.target_version}, "
                   f"{plan.unit_count()} units, estimated {hms(plan.estimated_duration_s)}; "
                   f"state in {target_dir}", err=quiet)
        if not sys.stdin.isatty():
            raise click.UsageError("confirmation needed and stdin is not a terminal: pass --yes")
        confirm_start("Start the upgrade? There is no rollback in NSX-T 2.x", "the upgrade",
                      err=quiet)
    with _interruptible(target_dir), _display(target_dir, stream) as display:
        code = start_run(prepared, state_dir, acks, ClockChoice(clock, speed),
                         display, events=stream, start_at=start_at, calendar_start=origin,
                         site=site, strict=strict)
    sys.exit(code)


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               epilog=_CODES)
@_RESUME_STATE_DIR
@click.option("--skip", multiple=True, metavar="UNIT",
              help="Leave UNIT as it is (repeatable): a failed or pending unit is counted as "
              "skipped; a host we put in maintenance leaves maintenance first.")
@click.option("--retry-failed", is_flag=True, help="Try the failed units again, from the "
              "operation that failed.")
@click.option("--wait", is_flag=True, help="If the run's maintenance window is closed now, "
              "sleep until it opens, then continue (without --wait a closed window pauses "
              "the run again at once, exit 3).")
@_RESUME_CLOCK
@_SPEED
@_EVENTS
def resume(state_dir: Path | None, skip: Sequence[str], retry_failed: bool, wait: bool,
           clock: str | None, speed: float | None, events: str | None) -> None:
    """Continue an interrupted, paused or failed run from its journal.

    Replays the journal, then asks the target system about every operation
    that was started but has no recorded outcome: one already done is taken
    as done, one still running is followed, one that never started is
    started. No unit is ever upgraded twice, none is skipped unless you say so.

    A run closed with `nsxt-upgrade abort` is not resumed (exit 1): start
    afresh with `nsxt-upgrade run`. --events FILE appends `resumed` and then
    what happens from here on (never again what an earlier process reported).
    """
    found = locate(state_dir, Command.RESUME)  # refused before anything is written there
    stream = _events(events)
    with _interruptible(found), _display(found, stream) as display:
        code = resume_run(found, skip, retry_failed, ClockChoice(clock, speed), display,
                          events=stream, wait=wait)
    sys.exit(code)


@contextlib.contextmanager
def _interruptible(state_dir: Path) -> Iterator[None]:
    """Ctrl-C before the runner's loop has taken over signals: exit 3, and say so plainly."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"interrupted while starting, before any operation was in flight; "
                   f"`nsxt-upgrade status --state-dir {state_dir}` shows where the run stands",
                   err=True)
        sys.exit(3)
