"""``nsxt-upgrade sim show``: the simulated world of a state directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.render import printable
from upgrade.sim.store import load_snapshot


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def sim() -> None:
    """Look at simulated worlds (of simulated runs and of the NSX-T emulator)."""


@sim.command("show", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--state-dir", "state_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="A state dir holding a simulated world and its inventory.yaml: a run's "
              "(the world is in journal.sqlite; world.sqlite in runs of earlier versions) "
              "or `emulate nsxt`'s (world.sqlite).")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="json",
              show_default=True, help="json: one JSON document (time, units with their version, "
              "maintenance and upgrade intervals, VMs with their host); text: tables for "
              "people.")
def show(state_dir: Path, fmt: str) -> None:
    """Print the simulated world kept in DIR: units, versions, upgrades, maintenance, VMs.

    Times are simulated seconds; `upgrade_count` counts every upgrade a unit
    went through (exactly one each after a complete upgrade). Exit code 2 when
    DIR holds no world.
    """
    snapshot = load_snapshot(state_dir)
    if fmt == "json":
        click.echo(json.dumps(snapshot, indent=2))
        return
    console = Console(soft_wrap=True)
    units = Table(title=f"simulated world at t={snapshot['time']:.0f}s "
                  f"(target {snapshot.get('target_version', '?')})")
    for column in ("unit", "kind", "group", "version", "maintenance", "upgrades", "last upgrade"):
        units.add_column(column)
    for u in snapshot["units"]:
        last = u["upgrades"][-1] if u["upgrades"] else None
        units.add_row(_cell(u["id"]), u["kind"], _cell(u["group"]), u["version"],
                      "yes" if u["in_maintenance"] else "", str(u["upgrade_count"]),
                      _interval(last) if last else "")
    console.print(units)
    if snapshot["vms"]:
        vms = Table(title="VMs")
        for column in ("vm", "host", "powered on", "moves"):
            vms.add_column(column)
        for v in snapshot["vms"]:
            vms.add_row(_cell(v["id"]), _cell(v["host"]), "yes" if v["powered_on"] else "no",
                        str(len(v.get("moves", []))))
        console.print(vms)


def _cell(name: str | None) -> Text:
    """A name as a table cell: control characters visible, ``[`` never markup."""
    return Text(printable(name or ""))


def _interval(span: dict[str, Any]) -> str:
    end = "running" if span["end"] is None else f"{span['end']:.0f}s"
    return f"{span['start']:.0f}s - {end}"
