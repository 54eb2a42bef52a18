"""``nsxt-upgrade journey plan|run|resume|status JOURNEY.yaml``: a whole upgrade path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from upgrade.cli.confirm import confirm_start
from upgrade.cli.params import SPEED
from upgrade.journey.spec import JourneySpec, load_journey
from upgrade.shell.clocks import ClockChoice
from upgrade.shell.statedir import ROOT

_HELP = {"help_option_names": ["-h", "--help"]}
_CODES = """
    \b
    Exit codes:
      0  done             1  a step failed          2  invalid input
      3  waiting for the operator (a PKS / Ops Manager step) or a run paused
      4  refused (no supported path, an unsupported state, pre-check findings)
      5  another runner holds the journey's lock
"""
_JOURNEY = click.argument("journey_file", metavar="JOURNEY.yaml",
                          type=click.Path(dir_okay=False, path_type=Path))
_STATE_DIR = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The journey's state dir: its journal, each step's inputs, and each NSX-T run's own "
    "state dir under steps/. Default: ./.nsxt-upgrade/journeys/<journey name>.")
_CLOCK = click.option(
    "--clock", type=click.Choice(["virtual", "real"]), default=None,
    help="The NSX-T runs' clock, as for `nsxt-upgrade run` (virtual by default with the "
    "simulated adapter).")
_SPEED = click.option("--speed", type=SPEED, default=None, metavar="X",
                      help="Simulated seconds per real second on the real clock.")
_ACK = click.option("--ack", "acks", multiple=True, metavar="ID",
                    help="Acknowledge a pre-check warning ID for every NSX-T run (repeatable).")


def _state_dir(spec: JourneySpec, given: Path | None) -> Path:
    return given if given is not None else ROOT / "journeys" / spec.name


@click.group(context_settings=_HELP)
def journey() -> None:
    """Carry out a whole upgrade path: NSX-T upgrades run here, PKS and Ops Manager
    upgrades as operator steps confirmed from Ops Manager or by hand (--confirm).

    \b
    JOURNEY.yaml:
      name: dc-berlin-to-1.3.5
      site: upgrade.yaml      # the playbook of the NSX-T runs
      from: {pks: "1.1.4", nsxt: "2.1.0.0", opsman: "2.1.3"}
      to:   {pks: "1.3.5", nsxt: "2.3.1.0"}
      bundles: {"2.2.0.0": {path: b/nsx-2.2.mub, sha256: "..."}}
    """


@journey.command("plan", context_settings=_HELP, epilog=_CODES)
@_JOURNEY
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@_ACK
def plan_cmd(journey_file: Path, fmt: str, acks: tuple[str, ...]) -> None:
    """Print every step of the journey with its estimate, sources and warnings.

    The steps are `compat path`'s; each NSX-T hop is planned and estimated by
    this engine (as `nsxt-upgrade plan` would plan it), each PKS or Ops Manager
    step is an operator step. A hop without a bundle is exit 2 naming the
    `bundles` line. Changes nothing anywhere.
    """
    from upgrade.journey.observe import read_source, start_state
    from upgrade.journey.planning import plan_journey, read_site
    from upgrade.journey.render import plan_json, plan_text

    spec = load_journey(journey_file)
    site = read_site(spec)
    plan = plan_journey(spec, site, start_state(spec, read_source(spec)), acks)
    if fmt == "json":
        click.echo(json.dumps(plan_json(plan), indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(plan_text(plan), nl=False)
    if plan.refusals:
        for refusal in plan.refusals:
            click.echo(f"refused: {refusal}", err=True)
        sys.exit(4)


@journey.command("run", context_settings=_HELP, epilog=_CODES)
@_JOURNEY
@_STATE_DIR
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_CLOCK
@_SPEED
@_ACK
def run_cmd(journey_file: Path, state_dir: Path | None, yes: bool, clock: str | None,
            speed: float | None, acks: tuple[str, ...]) -> None:
    """Start the journey: run its NSX-T upgrades, stop at each operator step.

    The path is journaled first. Each NSX-T hop is a full run of this engine in
    its own state dir (steps/NN-nsxt-V/ under the journey's), with its own bundle
    (sha256-checked); at each PKS or Ops Manager step the journey stops (exit 3)
    saying exactly what to do; `journey resume` goes on once the new version
    is confirmed (from Ops Manager's API, or --confirm).
    """
    from upgrade.journey.runner import Options, run_journey

    spec = load_journey(journey_file)
    target = _state_dir(spec, state_dir)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("confirmation needed and stdin is not a terminal: pass --yes")
        confirm_start(f"Start journey {spec.name} (state in {target})? There is no rollback "
                      "in NSX-T 2.x", f"journey {spec.name}")
    sys.exit(run_journey(spec, target, Options(ClockChoice(clock, speed), acks), new=True))


@journey.command("resume", context_settings=_HELP, epilog=_CODES)
@_JOURNEY
@_STATE_DIR
@click.option("--confirm", "confirms", multiple=True, metavar="PRODUCT=VERSION",
              help="Confirm by hand that PRODUCT (pks or opsman) now runs VERSION "
              "(repeatable), e.g. --confirm pks=1.2.5. With an Ops Manager in the journey "
              "its API is asked too, and must agree.")
@click.option("--retry-failed", is_flag=True,
              help="Try a failed NSX-T run's failed units again (as `resume --retry-failed`).")
@_CLOCK
@_SPEED
@_ACK
def resume_cmd(journey_file: Path, state_dir: Path | None, confirms: tuple[str, ...],
               retry_failed: bool, clock: str | None, speed: float | None,
               acks: tuple[str, ...]) -> None:
    """Continue the journey from its journal.

    At an operator step it goes on only once the new versions are confirmed
    and the state they make is supported by the compatibility matrix (an
    unsupported or unexpected state is refused, exit 4). An interrupted NSX-T
    run is resumed, never started again: no unit is upgraded twice.
    """
    from upgrade.journey.runner import Options, run_journey

    spec = load_journey(journey_file)
    options = Options(ClockChoice(clock, speed), acks, confirms, retry_failed)
    sys.exit(run_journey(spec, _state_dir(spec, state_dir), options, new=False))


@journey.command("status", context_settings=_HELP)
@_JOURNEY
@_STATE_DIR
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def status_cmd(journey_file: Path, state_dir: Path | None, fmt: str) -> None:
    """Where the journey stands: each step's state, the versions now, what it waits for."""
    from upgrade.journey.render import status_text
    from upgrade.journey.status import journey_status

    spec = load_journey(journey_file)
    doc = journey_status(spec, _state_dir(spec, state_dir))
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(status_text(doc), nl=False)
