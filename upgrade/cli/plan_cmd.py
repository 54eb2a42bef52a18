"""``nsxt-upgrade plan``: the dry run."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import click

from upgrade.cli.main import exit_quickly_when_done, log_to_stderr
from upgrade.prepare.inputs import read_files, with_inventory, without_connection
from upgrade.prepare.planning import prepare_loaded
from upgrade.render import printable
from upgrade.shell.window_calendar import START_AT

#: exit code of a plan that must not run (DESIGN section 3)
REFUSED = 4
#: exit code of a command stopped by Ctrl-C before it changed anything ("aborted")
INTERRUPTED = 1


@contextlib.contextmanager
def interrupted_planning() -> Iterator[None]:
    """Ctrl-C while reading the inputs or planning: one line saying nothing was changed,
    exit 1 (instead of click's bare "Aborted!")."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("interrupted while planning (Ctrl-C): nothing was written or changed",
                   err=True)
        sys.exit(INTERRUPTED)


def _stdout_writer() -> Callable[[str], object]:
    """Write text to stdout's bytes, as UTF-8: the plan's JSON is ASCII (every string
    escaped), so these are the bytes ``click.echo`` writes, without its pass per piece
    over 44 MB looking for terminal colours to strip."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stdout (a test's StringIO)
        return lambda text: click.echo(text, nl=False)
    sys.stdout.flush()  # what was written as text goes first
    return lambda text: buffer.write(text.encode())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("playbook", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "mermaid"]), default="text",
    show_default=True,
    help="text: a table for people; json: one JSON document; mermaid: a gantt chart of the "
    "estimated schedule for GitHub markdown.",
)
@click.option(
    "--ack", "acks", multiple=True, metavar="ID",
    help="Acknowledge the pre-check warning ID (repeatable), as if the playbook listed it "
    "under prechecks.acknowledge. Errors cannot be acknowledged.",
)
@click.option(
    "--matrix", "site", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
    help="A site's own compatibility rows and hops, laid over the built-in data (after the "
    "playbook's compatibility.matrix).",
)
@click.option(
    "--strict", is_flag=True,
    help="Refuse (exit 4) where vendor documents disagree about the compatibility.",
)
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
    metavar="PLAN.json",
    help="Also write the plan, with fingerprints of the playbook, the inventory and the "
    "compatibility data it was made from, for `nsxt-upgrade run --plan PLAN.json`.",
)
@click.option(
    "--start-at", "start_at", type=START_AT, default=None, metavar="ISO-8601",
    help="When the run would start (default: now), e.g. 2026-12-04T20:00:00+01:00: with a "
    "maintenance window the estimate waits for the windows and says when it finishes.",
)
def plan(playbook: Path, fmt: str, acks: Sequence[str], site: Path | None, strict: bool,
         out: Path | None, start_at: float | None) -> None:
    """Dry run: validate PLAYBOOK and print the ordered upgrade plan.

    Reads the playbook and the inventory it names, checks that PKS and Ops
    Manager stay supported on the current and the target NSX-T version, and
    prints the phases in the order they run (precheck, bundle, coordinator,
    hosts, edges, controllers, manager, postcheck) with their groups, unit
    order, concurrency, pre-check findings and estimated start and duration.

    It changes nothing anywhere and writes no file, except the saved plan that
    --out asks for (only a runnable plan is saved). With the simulated
    adapter it contacts no system; with the nsxt adapter it reads the
    inventory from the NSX Manager (and vCenter) the playbook names, with
    the credentials in NSXT_USERNAME/NSXT_PASSWORD (VSPHERE_USERNAME/
    VSPHERE_PASSWORD), as `run` does: read-only requests.

    \b
    Exit codes:
      0  the plan is runnable
      1  (nsxt) the manager or vCenter could not be read: the error says why
      2  invalid input: one line FILE:LINE:COL: what is wrong
      4  refused: an unacknowledged warning, a pre-check error, evacuation
         that cannot work, or unsupported versions; each reason is printed
         on stderr (the plan itself still goes to stdout)
    """
    with interrupted_planning():
        loaded = read_files(playbook)
        if not without_connection(loaded):  # nsxt: discovered from the manager
            import asyncio

            log_to_stderr()
            loaded = asyncio.run(with_inventory(loaded))
        if start_at is None and loaded.playbook.window is not None:
            start_at = time.time()
        prepared = prepare_loaded(loaded, acks, matrix=site, strict=strict, start_at=start_at)
    the_plan = prepared.plan
    if fmt == "json":
        from upgrade.render.plan_json import write_plan_json

        # written as it is made: a 100,000-host plan is 44 MB of JSON (issue 23 item 4)
        write_plan_json(the_plan, _stdout_writer())
        click.echo()
    elif fmt == "mermaid":
        from upgrade.render.plan_mermaid import plan_to_mermaid

        click.echo(plan_to_mermaid(the_plan), nl=False)
    else:  # rich: imported for the table only
        from rich.console import Console

        from upgrade.render.plan_text import render_plan

        render_plan(the_plan, Console(file=sys.stdout))
    if out is not None and the_plan.runnable:
        from upgrade.shell.savedplan import saved_plan

        out.write_text(json.dumps(saved_plan(prepared, playbook, acks, site), indent=2,
                                  ensure_ascii=False) + "\n", encoding="utf-8")
        click.echo(f"plan saved to {out}; run exactly this plan with "
                   f"`nsxt-upgrade run --plan {out}`", err=True)
    exit_quickly_when_done()  # nothing left open: the output is written (--out closed)
    if the_plan.runnable:
        return
    for refusal in the_plan.refusals:
        click.echo(f"refused: {printable(refusal, newlines=True)}", err=True)
    click.get_current_context().exit(REFUSED)
