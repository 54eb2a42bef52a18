"""``nsxt-upgrade status`` and ``nsxt-upgrade pause``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from upgrade.cli.pipes import quiet_on_closed_stdout
from upgrade.errors import InputError
from upgrade.render import hms, printable
from upgrade.render.hints import next_step
from upgrade.shell.dirstate import Command, is_fleet_site, locate
from upgrade.shell.lock import RunnerLock
from upgrade.shell.statedir import PAUSE_FILE, ROOT, file_in_the_way, find_run
from upgrade.shell.status import not_started, run_status

_STATE_DIR = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The run's state directory (default: the only run under ./.nsxt-upgrade).",
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_STATE_DIR
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one JSON document on stdout.")
@quiet_on_closed_stdout
def status(state_dir: Path | None, fmt: str) -> None:
    """Show where a run stands: state, phase, units, failures and an ETA.

    Reads the journal only; safe to run while the upgrade is running. An
    interrupted run (no runner holds its lock) shows as paused, interrupted. A
    state directory where nothing has run yet shows as not_started (exit 0).
    """
    found = state_dir if state_dir is not None else find_run(None, missing_ok=True)
    doc, engine = run_status(found) if found is not None else (not_started(), None)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    if doc["state"] == "not_started":
        click.echo(_not_started_text(found, doc))
        for warning in doc.get("warnings", []):
            click.echo(f"warning: {warning}")
        return
    assert found is not None
    units = doc["units"]
    state = doc["state"] + (" (interrupted: no runner is active)" if doc.get("interrupted")
                            else "")
    if doc["state"] == "running" and doc.get("runner_pid"):
        state += f" (runner pid {doc['runner_pid']})"
    click.echo(f"run in {found}: {state}, phase {doc['phase']}")
    if not units["total"] and units.get("already_at_target"):
        click.echo("units: none to upgrade")
    else:
        click.echo(printable(
            f"units: {units['done']}/{units['total']} done"
            + (f", in progress: {', '.join(units['in_progress'])}"
               if units["in_progress"] else "")
            + (f", failed: {', '.join(units['failed'])}" if units["failed"] else "")
            + (f", skipped: {', '.join(units['skipped'])}" if units.get("skipped") else "")))
    if units.get("already_at_target"):
        click.echo(printable(f"already at the target when planned (not touched): "
                             f"{', '.join(units['already_at_target'])}"))
    if doc["started_at"]:
        click.echo(f"started at {doc['started_at']}")
    if doc["eta_s"] is not None and doc["state"] != "done":
        click.echo(f"estimated time left: {hms(doc['eta_s'])}")
    for reason in doc.get("reasons", []):
        click.echo(printable(f"why: {reason}"))
    window = doc.get("window")
    if window:
        when = (f"open until {window['closes_at']}" if window["open"]
                else f"closed; the next opens {window['next_opens_local']}")
        click.echo(f"maintenance window: {window['window']}, {when} (as the run's clock "
                   f"last read); units started in {window['windows_used']} window(s)")
    hint = next_step(doc, found, engine)
    if hint:
        click.echo(hint)


def _not_started_text(found: Path | None, doc: dict[str, Any]) -> str:
    if found is None:
        return (f"no run under {ROOT}/ yet: start one with `nsxt-upgrade run PLAYBOOK` "
                "(or name a state directory with --state-dir)")
    if doc.get("runner_pid"):
        return f"run in {found}: starting (runner pid {doc['runner_pid']})"
    blocker = file_in_the_way(found)
    if blocker is not None:
        return (f"no run in {found}: {'it' if blocker == found else blocker} is a file, not a "
                "directory")
    if not found.exists():
        return (f"no run in {found}: the directory does not exist; start one with "
                f"`nsxt-upgrade run PLAYBOOK --state-dir {found}`")
    if doc.get("interrupted_start"):
        return (f"no run in {found} yet: a start was interrupted before its first step, so "
                f"nothing was done; start again with `nsxt-upgrade run PLAYBOOK --state-dir "
                f"{found}`")
    if is_fleet_site(found):
        return f"no run in {found}: it is a fleet site's state dir"
    if doc.get("warnings"):
        return f"no run in {found} that can be resumed: its journal is missing"
    return (f"no run in {found} yet: nothing has started there; start one with "
            f"`nsxt-upgrade run PLAYBOOK --state-dir {found}`")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_STATE_DIR
@click.option("--reason", default="pause requested by an operator", show_default=True,
              help="Recorded in the journal and shown by status.")
def pause(state_dir: Path | None, reason: str) -> None:
    """Ask a running upgrade to pause at the next safe point.

    The runner starts nothing new, lets what is in flight finish (a host in
    maintenance is upgraded and leaves maintenance), then exits 3. Continue
    with `nsxt-upgrade resume`.
    """
    found = locate(state_dir, Command.PAUSE)
    try:
        (found / PAUSE_FILE).write_text(reason + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{found / PAUSE_FILE}: cannot ask for a pause there "
                         f"({exc.strerror or exc})") from exc
    holder = RunnerLock.holder(found)
    if holder is None:
        click.echo(f"no runner is active in {found}: nothing to pause "
                   "(`nsxt-upgrade status` shows where the run stands)")
        (found / PAUSE_FILE).unlink(missing_ok=True)
        return
    click.echo(f"pause requested; the runner (pid {holder.pid}) stops at the next safe point")
