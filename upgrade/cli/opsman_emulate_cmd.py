"""``nsxt-upgrade emulate opsman`` and ``emulate opsman-set``: an Ops Manager API to rehearse
against, and the operator's tile upgrade that moves its versions."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from upgrade.core.versions import Version
from upgrade.errors import InputError
from upgrade.opsman_emulator.app import Accounts

_HELP = {"help_option_names": ["-h", "--help"]}


def _version(ctx: click.Context, param: click.Parameter, value: str | None) -> Version | None:
    if value is None:
        return None
    try:
        return Version.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


_STATE_DIR = click.option(
    "--state-dir", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Where the emulated Ops Manager keeps its versions (opsman.json) and its TLS "
    "certificate.")


@click.command("opsman", context_settings=_HELP)
@_STATE_DIR
@click.option("--opsman", "opsman", callback=_version, metavar="V",
              help="Ops Manager's version when the state is created (e.g. 2.1.3).")
@click.option("--pks", "pks", callback=_version, metavar="V",
              help="The deployed PKS tile's version when the state is created (e.g. 1.1.4).")
@click.option("--info-format", type=click.Choice(["minor", "patch"]), default="minor",
              show_default=True, help="How GET /api/v0/info writes the version: minor "
              "(2.3-build.123, as Ops Manager 2.x does) or patch (2.3.1-build.123).")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a self-signed certificate written "
              "to DIR/emulator-cert.pem (use it as the journey's opsman ca_bundle).")
def opsman(state_dir: Path, opsman: Version | None, pks: Version | None, info_format: str,
           port: int, tls: bool) -> None:
    """Serve an Ops Manager API on 127.0.0.1: UAA token, /api/v0/info, deployed products.

    POST /uaa/oauth/token accepts the password grant for client `opsman`
    (empty secret) with OPSMAN_USERNAME/OPSMAN_PASSWORD, and the
    client-credentials grant with OPSMAN_CLIENT_ID/OPSMAN_CLIENT_SECRET when
    those are set; anything else gets 401. GET /api/v0/info and GET
    /api/v0/deployed/products answer from DIR/opsman.json, read on every
    request: `nsxt-upgrade emulate opsman-set` moves a version as an
    operator's upgrade would. The first stdout line is `listening on URL`.
    """
    from upgrade.emulator.tls import ensure_certificate
    from upgrade.opsman_emulator.server import serve
    from upgrade.opsman_emulator.state import OpsmanState, load_state, save_state, state_path

    accounts = _accounts()
    if not state_path(state_dir).is_file():
        if opsman is None:
            raise InputError(f"{state_dir} holds no Ops Manager state yet: give --opsman V "
                             "(and --pks V for a deployed PKS tile)")
        save_state(state_dir, OpsmanState(opsman, pks, info_format=info_format))
    elif opsman is not None or pks is not None:
        raise InputError(f"{state_dir} already holds an Ops Manager state; move its versions "
                         "with `nsxt-upgrade emulate opsman-set`")
    state = load_state(state_dir)
    cert = ensure_certificate(state_dir) if tls else None

    def ready(url: str) -> None:
        click.echo(f"listening on {url}")
        if cert is not None:
            click.echo(f"certificate {cert[0]}")
        click.echo(f"Ops Manager {state.opsman}, PKS {state.pks or 'not deployed'}; state "
                   f"{state_path(state_dir)}")
        sys.stdout.flush()

    asyncio.run(serve(state_dir, accounts, port=port, tls=cert, ready=ready))


@click.command("opsman-set", context_settings=_HELP)
@_STATE_DIR
@click.option("--opsman", "opsman", callback=_version, metavar="V",
              help="Ops Manager's new version (an upgrade of the Ops Manager VM).")
@click.option("--pks", "pks", callback=_version, metavar="V",
              help="The PKS tile's new version (the tile upgraded and its changes applied).")
def opsman_set(state_dir: Path, opsman: Version | None, pks: Version | None) -> None:
    """Move the emulated Ops Manager's versions, as an operator's upgrade would.

    The running emulator reports the new versions from its next answer on.
    """
    import dataclasses

    from upgrade.opsman_emulator.state import load_state, save_state

    if opsman is None and pks is None:
        raise InputError("give --opsman V and/or --pks V")
    state = load_state(state_dir)
    changes: dict[str, object] = {}
    if opsman is not None:
        changes.update(opsman=opsman, build=state.build + 1)
    if pks is not None:
        changes.update(pks=pks, pks_build=state.pks_build + 1)
    new = dataclasses.replace(state, **changes)  # type: ignore[arg-type]
    save_state(state_dir, new)
    click.echo(f"Ops Manager {new.opsman}, PKS {new.pks or 'not deployed'}")


def _accounts() -> Accounts:
    user, password = os.environ.get("OPSMAN_USERNAME"), os.environ.get("OPSMAN_PASSWORD")
    client, secret = os.environ.get("OPSMAN_CLIENT_ID"), os.environ.get("OPSMAN_CLIENT_SECRET")
    if not (user and password) and not (client and secret):
        raise InputError("set OPSMAN_USERNAME and OPSMAN_PASSWORD (and/or OPSMAN_CLIENT_ID and "
                         "OPSMAN_CLIENT_SECRET): the emulator accepts those credentials")
    return Accounts(user or None, password or None, client or None, secret or None)
