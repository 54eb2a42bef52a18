"""A generated :class:`~tests.sim_helpers.Case` as the files an operator would write, so that
the shipped CLI can run it (``playbook.yaml`` and its simulated ``inventory.yaml``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.sim_helpers import Case
from upgrade.core.model import Playbook
from upgrade.inputs.inventory import dump_inventory
from upgrade.inputs.playbook import load_playbook

INVENTORY = "inventory.yaml"


def playbook_doc(playbook: Playbook) -> dict[str, Any]:
    """The playbook file's content (DESIGN section 4) for the settings the cases vary."""
    hosts = playbook.hosts
    doc: dict[str, Any] = {
        "name": playbook.name,
        "target_version": str(playbook.target_version),
        "bundle": {k: v for k, v in (("path", playbook.bundle.path),
                                      ("url", playbook.bundle.url),
                                      ("sha256", playbook.bundle.sha256)) if v},
        "inventory": {"adapter": "simulated", "source": INVENTORY},
        "hosts": {"mode": hosts.mode.value, "max_parallel": hosts.max_parallel,
                  "max_parallel_groups": hosts.max_parallel_groups,
                  "upgrade_mode": hosts.upgrade_mode.value,
                  "pause_after_each_group": hosts.pause_after_each_group,
                  "restore_vm_placement": hosts.restore_vm_placement},
        "edges": {"mode": playbook.edges_mode.value},
        "on_error": playbook.on_error.value,
        "retries": playbook.retries,
        "max_fail_percentage": {"hosts": playbook.max_fail_hosts_percent},
    }
    if hosts.groups is not None:
        doc["hosts"]["groups"] = [{"name": g.name, "hosts": list(g.hosts)} for g in hosts.groups]
    if playbook.canary is not None:
        canary = playbook.canary
        doc["canary"] = {"hosts": canary.hosts, "then": "pause"} if canary.watch_s is None \
            else {"hosts": canary.hosts, "watch_s": canary.watch_s}
    return doc


def write_case(case: Case, directory: Path) -> Path:
    """Write ``case``'s playbook and inventory into ``directory``; the playbook's path.

    Checks that the playbook reads back as the case's (JSON is YAML: no dumper needed).
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / INVENTORY).write_text(dump_inventory(case.inventory), encoding="utf-8")
    path = directory / "playbook.yaml"
    path.write_text(json.dumps(playbook_doc(case.playbook), indent=1), encoding="utf-8")
    loaded = load_playbook(path)
    want = replace(case.playbook, inventory=loaded.inventory, path=loaded.path)
    assert loaded == want, f"{path} does not read back as the case's playbook:\n" \
        f"{loaded}\n{want}"
    return path
