"""Playbook settings that are valid but do nothing here: warnings the plan shows.

A setting that cannot have its effect on this inventory is not an error (the
playbook may be shared between sites), but an operator must not believe it
protects them.  Each becomes an advisory plan finding: shown by ``plan`` and in the
run's report, never blocking, acknowledgeable like any other warning.  Pure.
"""

from __future__ import annotations

from collections.abc import Collection

from upgrade.core.model import Finding, Inventory, Playbook, Severity, UpgradeMode

#: ``canary.hosts`` covers every host the plan upgrades: there is nothing left to protect
CANARY_ALL_HOSTS = "canary-covers-all-hosts"
#: ``restore_vm_placement: true`` with ``upgrade_mode: in_place``: no VM is moved
RESTORE_WITHOUT_MOVES = "restore-vm-placement-without-moves"
#: every id this module can report (``--ack`` accepts them)
IDS = (CANARY_ALL_HOSTS, RESTORE_WITHOUT_MOVES)


def setting_warnings(playbook: Playbook, inventory: Inventory,
                     acknowledged: Collection[str] = ()) -> list[Finding]:
    """The advisory findings about ``playbook``'s settings on ``inventory``."""
    found: list[Finding] = []
    canary = playbook.canary
    hosts = _hosts_to_upgrade(playbook, inventory) if canary is not None else 0
    if canary is not None and hosts and canary.hosts >= hosts:
        found.append(Finding(
            CANARY_ALL_HOSTS, Severity.WARNING,
            f"canary: {{hosts: {canary.hosts}}} asks for at least as many hosts as the plan "
            f"upgrades ({hosts}): every host is in the canary, so no host is left for it to "
            "protect and the run does not stop after it; use fewer canary hosts (e.g. 1)",
            advisory=True))
    h = playbook.hosts
    if h.restore_vm_placement and h.upgrade_mode is UpgradeMode.IN_PLACE:
        found.append(Finding(
            RESTORE_WITHOUT_MOVES, Severity.WARNING,
            "hosts.restore_vm_placement: true does nothing with hosts.upgrade_mode: in_place: "
            "hosts are upgraded without maintenance mode, so no VM is moved and none goes "
            "back; remove it or use upgrade_mode: maintenance",
            advisory=True))
    acks = set(acknowledged) | set(playbook.acknowledge)
    return [Finding(f.id, f.severity, f.message, f.unit, f.id in acks, f.advisory)
            for f in found]


def _hosts_to_upgrade(playbook: Playbook, inventory: Inventory) -> int:
    """Hosts not at the target version yet (those the hosts phase upgrades)."""
    target = playbook.target_version
    own = dict(inventory.unit_versions)  # the few units not at the system's version
    system = inventory.version != target
    return sum(1 for host in inventory.hosts
               if (own[host.id] != target if host.id in own else system))
