"""``nsxt-upgrade report``, ``history`` and ``abort``: the record around a run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from upgrade.cli.pipes import quiet_on_closed_stdout
from upgrade.render import hms
from upgrade.shell.dirstate import Command, fleet_sites, locate
from upgrade.shell.run_records import abort_run, history_doc, report_doc
from upgrade.shell.statedir import ROOT

_STATE_DIR = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The run's state directory (default: the only run under ./.nsxt-upgrade).",
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_STATE_DIR
@click.option("--format", "fmt", type=click.Choice(["html", "markdown", "json"]),
              default="html", show_default=True,
              help="html: one self-contained page (inline CSS and SVG Gantt, no scripts); "
              "markdown: tables and a mermaid Gantt that render on GitHub; json: the data.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True,
                                                path_type=Path),
              default=None, help="Write the report to FILE instead of stdout.")
@quiet_on_closed_stdout
def report(state_dir: Path | None, fmt: str, output: Path | None) -> None:
    """What happened in a run against what was planned.

    Per phase and per unit: the planned and the actual start, the duration and
    the outcome; retries; pauses and who or what asked for them (an operator
    with Ctrl-C, SIGTERM or `nsxt-upgrade pause`, the playbook's on_error or
    pause_after_each_group); failures and skips; every vMotion; acknowledged
    pre-check findings. Reads the journal only (safe beside a live runner; a
    run in progress is reported as far as it got). Times are the run's clock:
    simulated seconds on the virtual clock.
    """
    found = locate(state_dir, Command.REPORT)
    doc = report_doc(found)
    if fmt == "json":
        text = json.dumps(doc, indent=2) + "\n"
    elif fmt == "markdown":
        from upgrade.render.report_markdown import report_to_markdown

        text = report_to_markdown(doc)
    else:
        from upgrade.render.report_html import report_to_html

        text = report_to_html(doc)
    if output is None or str(output) == "-":
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"report of {found} written to {output}", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=ROOT,
              show_default=True, help="The state root: every state directory under it, and "
              "the runs archived in their runs/ folders.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one JSON document on stdout.")
@quiet_on_closed_stdout
def history(root: Path, fmt: str) -> None:
    """Every run under a state root, newest first.

    Opens every journal read-only. Aborted runs that a new run moved under
    runs/ are listed too. Times are the run's clock: a virtual-clock rehearsal
    ends hours after it started, in simulated time.
    """
    doc = history_doc(root)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    sites = fleet_sites(root)
    if not doc["runs"]:
        click.echo(f"no runs under {root}/")
    for site in sites:  # their runs live in Temporal, not in a journal.sqlite
        click.echo(f"{site}: a fleet site's state dir (its run lives in Temporal); see "
                   "`nsxt-upgrade fleet status FLEET.yaml`")
    for run in doc["runs"]:
        versions = f"{run['source_version']} -> {run['target_version']}" \
            if run["source_version"] else "-"
        click.echo(f"{run['started_at'] or '-':25}  {run['state']:11}  "
                   f"{run['units_done']:>3}/{run['units_total']:<3} units  "
                   f"{hms(run['duration_s']):>8}  {run['name'] or '-'} ({versions})  "
                   f"{run['state_dir']}")
        if run.get("reason"):
            click.echo(f"{'':27}why: {run['reason']}")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_STATE_DIR
@click.option("--reason", default="aborted by an operator", show_default=True,
              help="Recorded in the journal; status, history, report and resume show it.")
def abort(state_dir: Path | None, reason: str) -> None:
    """Close a paused or failed run for good.

    The run's status becomes `aborted`; `resume` then refuses it (exit 1), and
    `nsxt-upgrade run PLAYBOOK --state-dir DIR` starts afresh there, moving the
    aborted run's journal and copies under DIR/runs/<start time>/. Nothing is
    changed in the target system: hosts, edges and VMs stay as the run left
    them (with the simulated adapter the world in DIR stays too, so a new run
    sees the partly upgraded system).

    \b
    Exit codes:
      0  aborted (or aborted already)
      2  nothing to abort: the run is done, or never started
      5  a runner is active: pause it first (`nsxt-upgrade pause`)
    """
    found = locate(state_dir, Command.ABORT)  # refused before the lock is written; again under it
    owner = " ".join(["nsxt-upgrade", *sys.argv[1:]])[:200]
    record = abort_run(found, reason, owner)
    if record.get("already"):
        click.echo(f"the run in {found} was aborted already at {record['at']}: "
                   f"{record['reason']}")
        return
    click.echo(f"aborted the {record['state_before']} run in {found}: {reason}")
    click.echo(f"start afresh with `nsxt-upgrade run PLAYBOOK --state-dir {found}`; this run's "
               f"journal will be kept under {found / 'runs'}/")
