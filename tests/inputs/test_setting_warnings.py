"""Settings that are valid but cannot work on this inventory are warned about, as plan
findings (issue 21 item 14): ``canary: {hosts: 99}`` on 4 hosts (every host is the
canary: nothing waits for it) and ``restore_vm_placement: true`` with ``upgrade_mode:
in_place`` (no VM is moved, so none goes back).  Advisory: shown, never blocking,
acknowledgeable with ``--ack``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.run_support import copy_playbooks, edit, nsxt
from upgrade.prepare.warnings import CANARY_ALL_HOSTS, RESTORE_WITHOUT_MOVES

ROOT = Path(__file__).resolve().parents[2]


def _book(tmp_path: Path, canary: int | None, in_place_restore: bool) -> Path:
    book = copy_playbooks(tmp_path) / "lab-2.1-to-2.3.yaml"
    if canary is not None:
        edit(book, "retries: 2\n", f"retries: 2\ncanary: {{hosts: {canary}, then: pause}}\n")
    if in_place_restore:
        edit(book, "upgrade_mode: maintenance\n",
             "upgrade_mode: in_place\n  restore_vm_placement: true\n")
    return book


def _findings(book: Path, *args: str) -> dict[str, dict[str, object]]:
    proc = nsxt("plan", book, "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return {f["id"]: f for f in json.loads(proc.stdout)["findings"]}


def test_a_canary_as_large_as_the_hosts_phase_and_a_restore_without_moves_are_warned(
        tmp_path: Path) -> None:
    book = _book(tmp_path, 99, True)
    found = _findings(book)
    canary, restore = found[CANARY_ALL_HOSTS], found[RESTORE_WITHOUT_MOVES]
    assert "canary: {hosts: 99}" in str(canary["message"]) and "(4)" in str(canary["message"])
    assert "in_place" in str(restore["message"])
    for finding in (canary, restore):
        assert finding["severity"] == "warning" and finding["acknowledged"] is False
    text = nsxt("plan", book)
    assert text.returncode == 0 and "Verdict: runnable" in text.stdout
    assert f"warning {CANARY_ALL_HOSTS}" in text.stdout
    assert f"warning {RESTORE_WITHOUT_MOVES}" in text.stdout
    acked = _findings(book, "--ack", CANARY_ALL_HOSTS)
    assert acked[CANARY_ALL_HOSTS]["acknowledged"] is True
    # the warnings do not stop a run; the canary is every host, so nothing is left to wait
    ran = nsxt("run", book, "--yes", "--state-dir", tmp_path / "state")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "no other host is left" in ran.stdout
    report = json.loads(nsxt("report", "--state-dir", tmp_path / "state",
                             "--format", "json").stdout)
    assert {CANARY_ALL_HOSTS, RESTORE_WITHOUT_MOVES} <= {f["id"] for f in report["findings"]}


def test_sensible_settings_plan_without_these_warnings(tmp_path: Path) -> None:
    found = _findings(_book(tmp_path, 1, False))
    assert CANARY_ALL_HOSTS not in found and RESTORE_WITHOUT_MOVES not in found
    found = _findings(_book(tmp_path / "b", 3, False))
    assert CANARY_ALL_HOSTS not in found
    found = _findings(_book(tmp_path / "c", 4, False))
    assert CANARY_ALL_HOSTS in found


def test_the_hosts_to_upgrade_count_hosts_at_their_own_versions() -> None:
    """The canary warning counts the hosts the plan upgrades: a host already at the target
    is not one, a host behind a system at the target is."""
    from dataclasses import replace

    from upgrade.core.versions import Version
    from upgrade.inputs.playbook import load
    from upgrade.prepare.warnings import _hosts_to_upgrade

    loaded = load(ROOT / "playbooks" / "lab-2.1-to-2.3.yaml")
    book, inventory = loaded.playbook, loaded.inventory
    assert inventory is not None and len(inventory.hosts) == 4
    target, first = book.target_version, inventory.hosts[0].id
    assert _hosts_to_upgrade(book, inventory) == 4
    assert _hosts_to_upgrade(book, replace(inventory, unit_versions=((first, target),))) == 3
    behind = replace(inventory, version=target, unit_versions=((first, Version.parse("2.1")),))
    assert _hosts_to_upgrade(book, behind) == 1
