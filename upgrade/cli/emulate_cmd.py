"""``nsxt-upgrade emulate nsxt``: an NSX-T Manager 2.x upgrade API over the simulated world."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import structlog

from upgrade.cli.params import MAX_SPEED, MIN_SPEED, SPEED, plain
from upgrade.core.versions import Version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def emulate() -> None:
    """Emulators of the systems nsxt-upgrade drives, for rehearsals and tests."""


def _version(ctx: click.Context, param: click.Parameter, value: str) -> Version:
    try:
        return Version.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@emulate.command("nsxt", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--inventory", "inventory", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Simulated inventory YAML (the format `nsxt-upgrade plan` reads for the "
              "simulated adapter): units, durations, faults.")
@click.option("--state-dir", "state_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the world is kept (world.sqlite, a copy of the inventory, the TLS "
              "certificate); created on first start, continued after.")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--tls", is_flag=True,
              help="Serve HTTPS with a self-signed certificate written to "
              "DIR/emulator-cert.pem (use it as the playbook's ca_bundle).")
@click.option("--speed", default=1.0, show_default=True, type=SPEED,
              help=f"Simulated seconds per real second (600: ten minutes a second; "
              f"{plain(MIN_SPEED)} to {plain(MAX_SPEED)}).")
@click.option("--target-version", "target", default="2.3.0.0", show_default=True,
              callback=_version, help="The version the emulated upgrade bundle carries "
              "(used when the world is created); the coordinator follows the flow of the "
              "hop from the inventory's version to it (upgrade/compat/flows.yaml: 2.4 and "
              "later have no CCP component, 2.5 upgrades edges first); a hop without a flow "
              "is refused.")
@click.option("--api-version", "api", type=click.Choice(["2.3", "2.5"]), default="2.3",
              show_default=True, help="The NSX-T API served: 2.3 exactly (what VMware added "
              "later answers 404), or 2.5 (2.3 plus what 2.5.1 added).")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append every API request and answer to this file, one JSON line each.")
def nsxt(inventory: Path, state_dir: Path, port: int, tls: bool, speed: float,
         target: Version, api: str, record: Path | None) -> None:
    """Serve an NSX-T Manager 2.x upgrade API on 127.0.0.1 over a simulated world.

    VMware's /api/v1/upgrade/... endpoints of the chosen --api-version (bundles,
    upgrade_uc, groups, units, plan, status-summary, history, ...; the contract
    in contracts/nsxt/ is generated from VMware's SDK) run against the simulated world
    kept in --state-dir: uploads take time, the coordinator upgrades the components
    in the order of the hop's flow and pauses at their boundaries, the inventory's
    faults apply, every unit's upgrades are counted
    (`nsxt-upgrade sim show --state-dir DIR`), and during the manager's own
    upgrade the API answers 503 and then refuses connections until it is back.

    Basic authentication accepts the credentials in NSXT_USERNAME and
    NSXT_PASSWORD. The first line on stdout is `listening on URL` once
    connections are accepted; the last, once stopped, says how many API requests
    it answered. Stop it with Ctrl-C or SIGTERM; killed, it loses nothing and
    continues where it stopped when started again on the same DIR.
    """
    from upgrade.adapters.factory import emulator_credentials
    from upgrade.emulator.server import serve
    from upgrade.emulator.site import Site
    from upgrade.emulator.tls import ensure_certificate
    from upgrade.inputs.inventory import load_inventory

    username, password = emulator_credentials()

    load_inventory(inventory)  # errors name the operator's file, before anything is written
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    site = Site.open(state_dir, inventory, target, speed, api)
    cert = ensure_certificate(state_dir) if tls else None

    def ready(url: str) -> None:
        click.echo(f"listening on {url}")
        if cert is not None:
            click.echo(f"certificate {cert[0]}")
        click.echo(f"NSX-T API {api}; upgrading {site.inventory.version} to "
                   f"{site.world.target} in flow {site.flow_id} "
                   f"({', '.join(site.components)}); state dir "
                   f"{state_dir} (nsxt-upgrade sim show --state-dir {state_dir})")
        sys.stdout.flush()

    asyncio.run(serve(site, username, password, port=port, tls=cert, ready=ready,
                      record=record))
    click.echo(f"stopped after answering {site.answered} API requests")


@emulate.command("vcsim-spec", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--inventory", "inventory", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Simulated inventory YAML (the format `nsxt-upgrade plan` reads for the "
              "simulated adapter).")
def vcsim_spec(inventory: Path) -> None:
    """Print the vCenter side of INVENTORY as the JSON spec tests/vcsim builds from.

    The clusters (with their DRS level), hosts and VMs (with their power
    state) of the inventory's compute section, named as the inventory names
    them, so that vcsim (`vcsim -spec FILE`) and the emulator started on the
    same inventory describe one lab. playbooks/rehearse-lab.sh uses it.
    """
    import json

    from upgrade.emulator.vcenter import vcsim_spec as spec_of
    from upgrade.inputs.inventory import load_inventory

    click.echo(json.dumps(spec_of(load_inventory(inventory)), indent=2))


def _add_opsman_commands() -> None:
    """``emulate opsman`` and ``emulate opsman-set`` (upgrade/cli/opsman_emulate_cmd.py)."""
    from upgrade.cli.opsman_emulate_cmd import opsman, opsman_set

    emulate.add_command(opsman)
    emulate.add_command(opsman_set)


_add_opsman_commands()
