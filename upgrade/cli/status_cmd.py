"""``nsxt-upgrade status`` and ``nsxt-upgrade pause``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from upgrade.journal import RunnerLock
from upgrade.statedir import PAUSE_FILE, find_run
from upgrade.status import run_status
from upgrade.ui import hms

_STATE_DIR = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The run's state directory (default: the only run under ./.nsxt-upgrade).",
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_STATE_DIR
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one JSON document on stdout.")
def status(state_dir: Path | None, fmt: str) -> None:
    """Show where a run stands: state, phase, units, failures and an ETA.

    Reads the journal only; safe to run while the upgrade is running. An
    interrupted run (no runner holds its lock) shows as paused, interrupted.
    """
    found = find_run(state_dir)
    doc, _ = run_status(found)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    units = doc["units"]
    state = doc["state"] + (" (interrupted: no runner)" if doc.get("interrupted") else "")
    click.echo(f"run in {found}: {state}, phase {doc['phase']}")
    click.echo(f"units: {units['done']}/{units['total']} done"
               + (f", in progress: {', '.join(units['in_progress'])}"
                  if units["in_progress"] else "")
               + (f", failed: {', '.join(units['failed'])}" if units["failed"] else ""))
    if doc["started_at"]:
        click.echo(f"started at {doc['started_at']}")
    if doc["eta_s"] is not None and doc["state"] != "done":
        click.echo(f"estimated time left: {hms(doc['eta_s'])}")
    for reason in doc.get("reasons", []):
        click.echo(f"why: {reason}")


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
    found = find_run(state_dir)
    (found / PAUSE_FILE).write_text(reason + "\n", encoding="utf-8")
    holder = RunnerLock.holder(found)
    if holder is None:
        click.echo(f"no runner is active in {found}: nothing to pause "
                   "(`nsxt-upgrade status` shows where the run stands)")
        (found / PAUSE_FILE).unlink(missing_ok=True)
        return
    click.echo(f"pause requested; the runner (pid {holder.pid}) stops at the next safe point")
