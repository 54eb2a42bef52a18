"""``nsxt-upgrade fleet run|worker|status|pause|resume FLEET.yaml``: many sites on Temporal."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import click

from upgrade.errors import InputError
from upgrade.fleet.fleetfile import Fleet, load_fleet

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


def _load(path: Path) -> Fleet:
    if not have_temporal():
        raise InputError("the fleet commands run on Temporal and need the optional temporalio "
                         "package: pip install 'nsxt-upgrade[fleet]'")
    if not path.is_file():
        raise InputError(f"{path}: no such fleet file")
    return load_fleet(path)


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
    outcome = asyncio.run(Follower(loaded, _say, _warn).run())
    _say(f"fleet {loaded.name}:")
    for site in loaded.sites:
        if site.name in outcome.refused:
            _say(f"  {site.name}: refused (not started)")
        elif site.name in outcome.held:
            _say(f"  {site.name}: not started: {outcome.held[site.name]}")
        else:
            _say("  " + line(site.name, outcome.docs[site.name]))
    raise SystemExit(outcome.exit_code)


@fleet.command()
@_FLEET
@click.option("--max-concurrent-activities", type=click.IntRange(min=1), default=50,
              show_default=True, help="Adapter calls this worker runs at once.")
def worker(fleet_file: Path, max_concurrent_activities: int) -> None:
    """Run the fleet's site workflows and adapter activities until SIGINT or SIGTERM."""
    from upgrade.fleet.worker import run_worker

    loaded = _load(fleet_file)
    asyncio.run(run_worker(loaded, _say, max_concurrent_activities))


@fleet.command()
@_FLEET
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def status(fleet_file: Path, fmt: str) -> None:
    """Where every site stands, from Temporal (not from local files)."""
    from upgrade.fleet.client import fleet_status, line

    loaded = _load(fleet_file)
    doc = asyncio.run(fleet_status(loaded))
    if fmt == "json":
        _say(json.dumps(doc, indent=2))
        return
    _say(f"fleet {doc['fleet']}:")
    for site in doc["sites"]:
        _say("  " + line(site["name"], site))


@fleet.command()
@_FLEET
def pause(fleet_file: Path) -> None:
    """Ask every running site to pause at its next safe point; `fleet run` then exits 3."""
    from upgrade.fleet.client import signal_sites

    asyncio.run(signal_sites(_load(fleet_file), "pause", _say))


@fleet.command()
@_FLEET
def resume(fleet_file: Path) -> None:
    """Let every paused site go on (follow it again with `fleet run`)."""
    from upgrade.fleet.client import signal_sites

    asyncio.run(signal_sites(_load(fleet_file), "resume", _say))
