"""VMs moved back to their host (``restore_vm_placement``) through the vSphere client
against a real vcsim: vm.runtime.host back to the original host, refusals, idempotence."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pyVmomi import vim

from tests.adapters.test_vsphere_adapter import LAB, MOVES, admin, find, with_client
from tests.vcsim_support import Vcsim
from upgrade.adapters.vsphere.client import OpStatus, VSphereClient
from upgrade.core.engine.messages import OpState
from upgrade.errors import AdapterError, TransientAdapterError

BACK = [("web-1", "esx-01"), ("web-2", "esx-01")]


@pytest.fixture
def lab(vcsim_factory: Callable[..., Vcsim]) -> Vcsim:
    """A fresh simulator with inventory names."""
    return vcsim_factory(LAB)


def test_vms_go_back_to_their_host_once_it_left_maintenance(lab: Vcsim) -> None:
    """Evacuate esx-01 (web-1 to esx-02, web-2 to esx-03), upgrade-time in maintenance,
    exit, then the restore: not_started before, done after, every VM's runtime.host is
    esx-01 again; starting it again moves nothing more."""
    async def go(c: VSphereClient) -> list[OpStatus]:
        await c.start_enter_maintenance("esx-01", timeout_s=600)
        await c.start_evacuate("esx-01", MOVES)
        await c.start_exit_maintenance("esx-01")
        seen = [await c.restore_status("esx-01", BACK)]
        await c.start_restore("esx-01", BACK)
        seen.append(await c.restore_status("esx-01", BACK))
        await c.start_restore("esx-01", BACK)  # again: everything is home, nothing starts
        seen.append(await c.restore_status("esx-01", BACK))
        return seen

    before, after, again = with_client(lab, go)
    assert before == OpStatus(OpState.NOT_STARTED, "not back yet: web-1, web-2")
    assert after == OpStatus(OpState.DONE, "every VM moved off host esx-01 is back on it")
    assert again == after
    with admin(lab) as content:
        for vm in ("web-1", "web-2", "db-1"):
            assert find(content, vim.VirtualMachine, vm).runtime.host.name == "esx-01"


def test_no_vm_goes_back_to_a_host_in_maintenance(lab: Vcsim) -> None:
    """While esx-01 is in maintenance mode the restore is refused as transient (retried
    later), and no VM moves."""
    async def go(c: VSphereClient) -> None:
        await c.start_enter_maintenance("esx-01", timeout_s=600)
        await c.start_evacuate("esx-01", MOVES)
        await c.start_restore("esx-01", BACK)

    with pytest.raises(TransientAdapterError, match="esx-01 is in maintenance mode"):
        with_client(lab, go)
    with admin(lab) as content:
        assert find(content, vim.VirtualMachine, "web-1").runtime.host.name == "esx-02"


@pytest.mark.parametrize(("moves", "message"), [
    ([("web-1", "esx-02")], "cannot move VM web-1 back to host esx-02: it is not esx-01"),
    ([("web-9", "esx-01")], "VM 'web-9' is not in the inventory of vCenter"),
])
def test_a_bad_move_back_starts_nothing(lab: Vcsim, moves: list[tuple[str, str]],
                                        message: str) -> None:
    """A move whose destination is not the host, or whose VM is unknown, is an error."""
    with pytest.raises(AdapterError, match=message):
        with_client(lab, lambda c: c.start_restore("esx-01", moves))
