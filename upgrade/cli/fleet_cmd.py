"""``nsxt-upgrade fleet run|worker|status|pause|resume FLEET.yaml``: many sites on Temporal."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click

from upgrade.errors import FileError, InputError, UpgradeError
from upgrade.fleet.fleetfile import Fleet, load_fleet
from upgrade.inputs.playbook import load

_CODES = """
    \b
    Exit codes:
      0  every site done      1  a site failed (or Temporal cannot be reached)
      2  invalid fleet file or playbook, or the fleet extra is not installed
      3  a site paused, or sites held back by a fleet pause
      4  a site refused by its plan (compatibility, pre-check findings): it did not start
"""
_FLEET = click.argument("fleet_file", metavar="FLEET.yaml",
                        type=click.Path(dir_okay=False, path_type=Path))


def have_temporal() -> bool:
    """True when the optional temporalio package is installed."""
    return importlib.util.find_spec("temporalio") is not None


def _load(path: Path, playbooks: bool = True) -> Fleet:
    """The fleet file (``playbooks=False``: the sites' playbooks are not checked)."""
    if not have_temporal():
        raise InputError("the fleet commands run on Temporal and need the optional temporalio "
                         "package: pip install 'nsxt-upgrade[fleet]'")
    if not path.is_file():
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a fleet file")
        if path.exists():
            raise InputError(f"{path}: not a regular file (a pipe or a device?); a fleet file "
                             "is a YAML file")
        raise InputError(f"{path}: no such fleet file")
    return load_fleet(path, playbooks=playbooks)


def _finish(work: Callable[[], int]) -> NoReturn:
    """Run ``work`` (which talks to Temporal), report its errors like the CLI does, and exit
    without interpreter teardown: the SDK's Rust threads can abort a finalizing interpreter
    (temporalio/sdk-python#300)."""
    try:
        code = work()
    except UpgradeError as exc:
        click.echo(str(exc) if isinstance(exc, FileError) else f"error: {exc}", err=True)
        code = exc.exit_code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)




def _say(text: str) -> None:
    click.echo(text)


def _warn(text: str) -> None:
    click.echo(text, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def fleet() -> None:
    """Upgrade many NSX-T sites at once, each site a durable Temporal workflow.

    `fleet worker FLEET.yaml` runs the workflows (start one or more, anywhere that reaches
    the sites); `fleet run FLEET.yaml` plans every site and starts and follows them;
    running it again attaches to what already runs. Needs `pip install nsxt-upgrade[fleet]`
    and a Temporal cluster (`temporal server start-dev` for a lab).
    """


@fleet.command(epilog=_CODES)
@_FLEET
def run(fleet_file: Path) -> None:
    """Plan every site, start its workflow as the fleet policy allows, follow to the end."""
    from upgrade.fleet.client import Follower, line

    loaded = _load(fleet_file)
    for site in loaded.sites:  # every playbook valid before anything starts (exit 2)
        load(site.playbook)

    def work() -> int:
        outcome = asyncio.run(Follower(loaded, _say, _warn).run())
        _say(f"fleet {loaded.name}:")
        for site in loaded.sites:
            if site.name in outcome.refused:
                _say(f"  {site.name}: refused (not started)")
            elif site.name in outcome.held:
                _say(f"  {site.name}: not started: {outcome.held[site.name]}")
            else:
                _say("  " + line(site.name, outcome.docs[site.name]))
        return outcome.exit_code

    _finish(work)


@fleet.command()
@_FLEET
@click.option("--max-concurrent-activities", type=click.IntRange(min=1), default=50,
              show_default=True, help="Adapter calls this worker runs at once.")
def worker(fleet_file: Path, max_concurrent_activities: int) -> None:
    """Run the fleet's site workflows and adapter activities until SIGINT or SIGTERM."""
    from upgrade.fleet.worker import run_worker

    loaded = _load(fleet_file)
    def work() -> int:
        asyncio.run(run_worker(loaded, _say, max_concurrent_activities))
        return 0

    _finish(work)


@fleet.command()
@_FLEET
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def status(fleet_file: Path, fmt: str) -> None:
    """Where every site stands, from Temporal (not from local files); a site whose workflow
    ended early (terminated, timed out, failed) with Temporal's reason and its last known
    progress, kept in its state dir."""
    from upgrade.fleet.client import fleet_status, line

    loaded = _load(fleet_file, playbooks=False)

    def work() -> int:
        doc = asyncio.run(fleet_status(loaded))
        if fmt == "json":
            _say(json.dumps(doc, indent=2))
            return 0
        _say(f"fleet {doc['fleet']}:")
        for site in doc["sites"]:
            _say("  " + line(site["name"], site))
        return 0

    _finish(work)


@fleet.command()
@_FLEET
def pause(fleet_file: Path) -> None:
    """Ask every running site to pause at its next safe point; `fleet run` then exits 3."""
    from upgrade.fleet.client import pause_sites

    loaded = _load(fleet_file, playbooks=False)

    def work() -> int:
        asyncio.run(pause_sites(loaded, _say))
        return 0

    _finish(work)


@fleet.command()
@_FLEET
@click.option("--site", "names", multiple=True, metavar="NAME",
              help="Only this site (repeatable); default: every site.")
@click.option("--retry-failed", is_flag=True,
              help="Start the failed units again (of a paused site, or of a site whose "
                   "workflow finished failed).")
def resume(fleet_file: Path, names: tuple[str, ...], retry_failed: bool) -> None:
    """Let paused sites go on (a pause not yet reached is cancelled), and start a site whose
    workflow ended early (terminated, timed out, failed) again as a new run from its last
    checkpoint, asking the target about every operation in flight: nothing is upgraded
    twice. Follow the sites with `fleet run`."""
    from upgrade.fleet.client import resume_sites

    loaded = _load(fleet_file, playbooks=False)
    chosen = []
    for name in names or [s.name for s in loaded.sites]:
        site = loaded.site(name)
        if site is None:
            raise click.BadParameter(
                f"no site {name!r} in {fleet_file} (sites: "
                f"{', '.join(s.name for s in loaded.sites)})", param_hint="--site")
        chosen.append(site)

    def work() -> int:
        asyncio.run(resume_sites(loaded, chosen, _say, retry_failed))
        return 0

    _finish(work)
