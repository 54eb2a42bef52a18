"""One NSX-T hop of a journey: its own inputs and state dir, run by this engine in-process.

A hop's playbook is the site playbook with ``target_version``, ``bundle`` and
``compatibility`` (the PKS and Ops Manager versions the journey has reached) set for the
hop, and every path made absolute; with the simulated adapter its inventory is the
site's with every unit at the hop's starting version.  Both are written under the
journey's state dir (``inputs/NN-nsxt-V/``) before the hop starts and never change
after, so a resumed hop finds exactly what it started from.  The hop runs in
``steps/NN-nsxt-V/`` through the shell's public functions, as ``nsxt-upgrade run`` and
``resume`` would run it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from upgrade.core.model import Inventory
from upgrade.errors import InputError
from upgrade.inputs.inventory import dump_inventory
from upgrade.inputs.yamlio import Node, load_yaml
from upgrade.journey.route import JourneyStep
from upgrade.journey.spec import BundleEntry, JourneySpec
from upgrade.render.live import Display, PipeSafeConsole
from upgrade.shell.bundle import digest_of, remember
from upgrade.shell.clocks import ClockChoice
from upgrade.shell.session import plan_for_run, resume_run, start_run
from upgrade.shell.status import run_status

HOP_PLAYBOOK = "playbook.yaml"
HOP_INVENTORY = "inventory.yaml"


def hop_dir(state_dir: Path, step: JourneyStep) -> Path:
    """The hop's own state dir under the journey's."""
    return state_dir / "steps" / step.slug


def inputs_dir(state_dir: Path, step: JourneyStep) -> Path:
    """Where the hop's playbook (and simulated inventory) are written."""
    return state_dir / "inputs" / step.slug


def _plain(node: Node) -> Any:
    if isinstance(node.value, dict):
        return {k: _plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v) for v in node.value]
    return node.value


class _QuotedDumper(yaml.SafeDumper):
    """Every string double-quoted: versions stay strings under YAML 1.2 and 1.1 alike."""


_QuotedDumper.add_representer(
    str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"'))


def hop_playbook_text(spec: JourneySpec, step: JourneyStep, bundle: BundleEntry,
                      simulated: bool) -> str:
    """The hop's playbook: the site's, with the hop's target, bundle and compatibility."""
    data = _plain(load_yaml(spec.site))
    base = spec.site.parent.resolve()
    data["name"] = f"{spec.name}-{step.slug}"[:128]
    data["target_version"] = str(step.new)
    hop_bundle: dict[str, str] = (
        {"path": str(bundle.path.resolve())} if bundle.path is not None
        else {"url": str(bundle.url)})
    if bundle.sha256:
        hop_bundle["sha256"] = bundle.sha256
    data["bundle"] = hop_bundle
    inventory = dict(data.get("inventory") or {})
    if simulated:
        inventory["source"] = HOP_INVENTORY
    if inventory.get("ca_bundle"):
        inventory["ca_bundle"] = str(base / inventory["ca_bundle"])
    data["inventory"] = inventory
    compat = dict(data.get("compatibility") or {})
    for key in ("opsman_url", "opsman_ca_bundle"):  # the journey reads Ops Manager itself
        compat.pop(key, None)
    compat["pks"] = str(step.before.pks)
    if step.before.opsman is not None:
        compat["opsman"] = str(step.before.opsman)
    else:
        compat.pop("opsman", None)
    if compat.get("matrix"):
        compat["matrix"] = str(base / compat["matrix"])
    data["compatibility"] = compat
    head = (f"# Written by `nsxt-upgrade journey` for step {step.n} of {spec.name} "
            f"({step.title()}) from {spec.site}; do not edit.\n")
    return head + yaml.dump(data, Dumper=_QuotedDumper, sort_keys=False,
                            default_flow_style=False, allow_unicode=True)


def hop_inventory(inventory: Inventory, step: JourneyStep) -> Inventory:
    """The site's simulated inventory with every unit at the hop's starting version."""
    return dataclasses.replace(inventory, version=step.old, unit_versions=())


def write_hop_inputs(target: Path, spec: JourneySpec, step: JourneyStep, bundle: BundleEntry,
                     inventory: Inventory | None) -> Path:
    """Write the hop's playbook (and inventory) into ``target``, durably; the playbook's path.

    Files already there are kept: a hop resumed after a crash uses what it started from.
    """
    target.mkdir(parents=True, exist_ok=True)
    playbook = target / HOP_PLAYBOOK
    if inventory is not None and not (target / HOP_INVENTORY).is_file():
        _write_durably(target / HOP_INVENTORY, dump_inventory(hop_inventory(inventory, step)))
    if not playbook.is_file():
        _write_durably(playbook, hop_playbook_text(spec, step, bundle, inventory is not None))
    return playbook


def _write_durably(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with temp.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    temp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_bundle_digest(bundle: BundleEntry, cache: Path) -> None:
    """Hash a local bundle (streamed; cached in ``cache`` by size and mtime) and compare it
    with the journey's sha256: a mismatch is exit 2 at the journey's ``sha256`` line."""
    if bundle.path is None or bundle.sha256 is None:
        return
    digest = digest_of(bundle.path, cache if cache.is_dir() else None)
    if digest.sha256 != bundle.sha256:
        where = bundle.sha_where or bundle.where
        raise where.error(f"bundle sha256 mismatch: expected {bundle.sha256}, got "
                          f"{digest.sha256} for {bundle.path} (is it the bundle you meant, "
                          "completely downloaded?)")
    cache.mkdir(parents=True, exist_ok=True)
    remember(cache, digest)


def _display(state_dir: Path) -> Display:
    console = PipeSafeConsole(file=sys.stdout)
    display = Display(console, state_dir / "run.log", state_dir=state_dir)
    console.set_on_closed(display.stdout_closed)
    return display


def hop_state(state_dir: Path) -> str:
    """The hop run's state as ``status`` gives it (``not_started`` when none began)."""
    doc, _ = run_status(state_dir)
    return str(doc["state"])


def run_hop(playbook: Path, state_dir: Path, acks: tuple[str, ...], choice: ClockChoice,
            retry_failed: bool = False) -> int:
    """Start the hop's run in ``state_dir``, or resume it if it began; its exit code.

    A run that has begun is never started again: resume replays its journal and asks the
    target about every operation in flight, so no unit is upgraded twice.
    """
    state = hop_state(state_dir)
    with _display(state_dir) as display:
        if state in ("not_started",):
            prepared = plan_for_run(playbook, acks, choice)
            return start_run(prepared, state_dir, acks, choice, display)
        if state == "aborted":
            raise InputError(f"the NSX-T run in {state_dir} was aborted; the journey cannot go "
                             "on past it: plan a new journey from where the site is")
        return resume_run(state_dir, (), retry_failed, choice, display)
