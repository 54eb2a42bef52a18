"""The vSphere client against a real vcsim (govmomi's vCenter simulator): no pyVmomi mocks.

What the client did is checked through a second, independent pyVmomi session.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.vcsim_support import Vcsim, _unavailable
from upgrade.adapters.vsphere.client import OpStatus, VCenterInventory, VSphereClient
from upgrade.core.engine.messages import OpState
from upgrade.core.model import Cluster, Drs, Host, Vm
from upgrade.errors import AdapterError, TransientAdapterError

T = TypeVar("T")
smart_connect: Callable[..., Any] = SmartConnect  # pyVmomi's stubs leave them untyped
disconnect: Callable[..., Any] = Disconnect

LAB = {
    "datacenter": "dc-1",
    "clusters": [
        {
            "name": "cluster-a",
            "drs": "manual",
            "hosts": [
                {"id": "esx-01", "vms": ["web-1", "web-2", {"name": "db-1", "powered_on": False}]},
                {"id": "esx-02", "vms": []},
                {"id": "esx-03", "vms": ["app-1"]},
            ],
        },
        {"name": "cluster-b", "drs": "fully_automated", "hosts": [{"id": "esx-11"}]},
        {"name": "cluster-c", "drs": "off", "hosts": [{"id": "esx-21"}]},
        {"name": "cluster-d", "drs": "partially_automated", "hosts": []},
    ],
}
MOVES = [("web-1", "esx-02"), ("web-2", "esx-03")]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def connect(sim: Vcsim, **options: Any) -> VSphereClient:
    options.setdefault("ca_bundle", sim.ca_bundle)
    return await VSphereClient.connect(sim.url, sim.username, sim.password, **options)


def with_client(sim: Vcsim, body: Callable[[VSphereClient], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        async with await connect(sim) as client:
            return await body(client)

    return run(go())


@contextmanager
def admin(sim: Vcsim) -> Iterator[Any]:
    """An independent pyVmomi session, to check what the client did."""
    url = urlsplit(sim.url)
    context = ssl.create_default_context(cafile=sim.ca_bundle)
    si = smart_connect(
        host=url.hostname, port=url.port, user=sim.username, pwd=sim.password, sslContext=context
    )
    try:
        yield si.content
    finally:
        disconnect(si)


def find(content: Any, kind: Any, name: str) -> Any:
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return next(obj for obj in view.view if obj.name == name)
    finally:
        view.Destroy()


def tasks(content: Any, entity: str, kind: str) -> list[Any]:
    """vCenter's recent tasks of ``kind`` (e.g. enterMaintenanceMode) on ``entity``."""
    return [t for t in content.taskManager.recentTask
            if t.info.entityName and t.info.descriptionId.endswith("." + kind)
            and t.info.entity.name == entity]  # fmt: skip


@pytest.fixture
def lab(vcsim_factory: Callable[..., Vcsim]) -> Vcsim:
    """A fresh simulator with inventory names, for tests that change the world."""
    return vcsim_factory(LAB)


# -- connecting ---------------------------------------------------------------------------


def test_connects_and_reads_the_default_inventory(vcsim: Vcsim) -> None:
    inventory = with_client(vcsim, lambda c: c.inventory())
    assert [c.name for c in inventory.clusters] == ["DC0_C0"]
    (cluster,) = inventory.clusters
    assert cluster.drs == "manual"
    assert cluster.hosts == ("DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2")
    assert [h.id for h in inventory.hosts] == list(cluster.hosts)
    assert inventory.hosts[1] == Host(
        "DC0_C0_H1", "DC0_C0", (Vm("DC0_C0_H1_VM0", True), Vm("DC0_C0_H1_VM1", True))
    )
    assert inventory.in_maintenance == frozenset()


def test_inventory_names_drs_levels_and_power_states(lab: Vcsim) -> None:
    inventory = with_client(lab, lambda c: c.inventory())
    assert [(c.name, c.drs) for c in inventory.clusters] == [
        ("cluster-a", Drs.MANUAL),
        ("cluster-b", Drs.FULLY_AUTOMATED),
        ("cluster-c", Drs.OFF),
        ("cluster-d", Drs.MANUAL),  # partially automated: DRS will not evacuate by itself
    ]
    assert inventory.clusters[0] == Cluster("cluster-a", Drs.MANUAL, ("esx-01", "esx-02", "esx-03"))
    assert inventory.hosts[:3] == (
        Host("esx-01", "cluster-a", (Vm("db-1", False), Vm("web-1", True), Vm("web-2", True))),
        Host("esx-02", "cluster-a", ()),
        Host("esx-03", "cluster-a", (Vm("app-1", True),)),
    )
    assert inventory.clusters[1].hosts == ("esx-11",)
    assert [h.id for h in inventory.hosts[3:]] == ["esx-11", "esx-21"]


def test_wrong_password_is_a_clear_error_without_the_password(vcsim: Vcsim) -> None:
    wrong = "not-" + vcsim.password
    with pytest.raises(AdapterError) as caught:
        run(VSphereClient.connect(vcsim.url, vcsim.username, wrong, ca_bundle=vcsim.ca_bundle))
    message = str(caught.value)
    assert "refused the login" in message and vcsim.username in message
    assert "wrong user name or password" in message
    assert wrong not in message and vcsim.password not in message
    assert not isinstance(caught.value, TransientAdapterError)
    assert isinstance(caught.value.__cause__, vim.fault.InvalidLogin)


def test_only_the_configured_user_can_log_in(vcsim: Vcsim) -> None:
    with pytest.raises(AdapterError, match="refused the login of user 'root'"):
        run(VSphereClient.connect(vcsim.url, "root", vcsim.password, ca_bundle=vcsim.ca_bundle))


def test_tls_verification_fails_without_a_ca_or_insecure(vcsim: Vcsim) -> None:
    with pytest.raises(AdapterError) as caught:
        run(VSphereClient.connect(vcsim.url, vcsim.username, vcsim.password))
    message = str(caught.value)
    assert "TLS certificate of vCenter https://127.0.0.1:" in message
    assert "cannot be verified" in message and "insecure: true" in message
    assert not isinstance(caught.value, TransientAdapterError)
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


def test_insecure_skips_verification(vcsim: Vcsim) -> None:
    async def go() -> VCenterInventory:
        client = await VSphereClient.connect(vcsim.url, vcsim.username, vcsim.password,
                                             insecure=True)  # fmt: skip
        async with client:
            return await client.inventory()

    assert [c.name for c in run(go()).clusters] == ["DC0_C0"]


def test_a_missing_ca_bundle_is_a_clear_error(vcsim: Vcsim, tmp_path: Any) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(AdapterError, match=r"cannot read the vCenter CA bundle .*nope\.pem"):
        run(VSphereClient.connect(vcsim.url, vcsim.username, vcsim.password, ca_bundle=missing))


def test_an_unreachable_vcenter_is_transient() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"https://127.0.0.1:{port}/sdk"
    with pytest.raises(
        TransientAdapterError, match=f"cannot reach vCenter https://127.0.0.1:{port}"
    ):
        run(VSphereClient.connect(url, "u", "p", insecure=True))


def test_a_vcenter_that_does_not_answer_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never speaks TLS
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/sdk"

    async def go() -> None:
        try:
            with pytest.raises(TransientAdapterError, match=r"did not answer within 0\.5s"):
                await VSphereClient.connect(url, "u", "p", insecure=True, timeout_s=0.5)
        finally:
            listener.close()  # resets the connection the worker thread still waits on

    run(go())


def test_a_closed_client_says_so(vcsim: Vcsim) -> None:
    async def go() -> None:
        client = await connect(vcsim)
        await client.close()
        await client.close()
        await client.inventory()

    with pytest.raises(AdapterError, match="is closed"):
        run(go())


def test_an_expired_session_is_renewed(vcsim: Vcsim) -> None:
    async def go() -> VCenterInventory:
        async with await connect(vcsim) as client:
            await asyncio.to_thread(client.session.si.content.sessionManager.Logout)
            return await client.inventory()

    assert "DC0_C0_H0" in run(go()).host_map


def test_a_missing_host_is_named(vcsim: Vcsim) -> None:
    async def go(call: Callable[[VSphereClient], Coroutine[Any, Any, object]]) -> None:
        async with await connect(vcsim) as client:
            await call(client)

    calls: list[Callable[[VSphereClient], Coroutine[Any, Any, object]]] = [
        lambda c: c.start_enter_maintenance("esx-99", 60),
        lambda c: c.maintenance_status("esx-99"),
        lambda c: c.start_exit_maintenance("esx-99"),
        lambda c: c.evacuate_status("esx-99", []),
    ]
    for call in calls:
        with pytest.raises(AdapterError, match=r"host 'esx-99' is not in the inventory of vCenter"):
            run(go(call))


# -- maintenance mode and evacuation ------------------------------------------------------


def test_enter_maintenance_with_explicit_evacuation_then_exit(lab: Vcsim) -> None:
    async def go(c: VSphereClient) -> list[OpStatus]:
        seen = [await c.maintenance_status("esx-01"), await c.evacuate_status("esx-01", MOVES)]
        await c.start_enter_maintenance("esx-01", timeout_s=600)
        await c.start_evacuate("esx-01", MOVES)
        seen += [await c.maintenance_status("esx-01"), await c.evacuate_status("esx-01", MOVES)]
        seen.append(await c.exit_status("esx-01"))
        return seen

    before, evac_before, entered, evacuated, exit_before = with_client(lab, go)
    assert before == OpStatus(OpState.NOT_STARTED, "host esx-01 is not in maintenance mode")
    assert evac_before == OpStatus(OpState.NOT_STARTED, "not moved yet: web-1, web-2")
    assert entered == OpStatus(OpState.DONE, "host esx-01 is in maintenance mode")
    assert evacuated == OpStatus(OpState.DONE, "no powered-on VM is left on host esx-01")
    assert exit_before.state == "not_started"
    with admin(lab) as content:
        assert find(content, vim.HostSystem, "esx-01").runtime.inMaintenanceMode
        assert find(content, vim.VirtualMachine, "web-1").runtime.host.name == "esx-02"
        assert find(content, vim.VirtualMachine, "web-2").runtime.host.name == "esx-03"
        assert find(content, vim.VirtualMachine, "db-1").runtime.host.name == "esx-01"  # off
        (enter,) = tasks(content, "esx-01", "enterMaintenanceMode")
        assert enter.info.state == "success"

    inventory = with_client(lab, lambda c: c.inventory())
    assert inventory.host_map["esx-01"] == Host("esx-01", "cluster-a", (Vm("db-1", False),))
    assert inventory.in_maintenance == {"esx-01"}

    async def leave(c: VSphereClient) -> OpStatus:
        await c.start_exit_maintenance("esx-01")
        return await c.exit_status("esx-01")

    assert with_client(lab, leave) == OpStatus(OpState.DONE,
                                               "host esx-01 is not in maintenance mode")
    with admin(lab) as content:
        assert not find(content, vim.HostSystem, "esx-01").runtime.inMaintenanceMode


def test_starting_twice_starts_one_task(lab: Vcsim) -> None:
    async def go(c: VSphereClient) -> None:
        for _ in range(2):
            await c.start_enter_maintenance("esx-01", 600)
            await c.start_evacuate("esx-01", MOVES)
        for _ in range(2):
            await c.start_exit_maintenance("esx-01")

    with_client(lab, go)
    with admin(lab) as content:
        assert len(tasks(content, "esx-01", "enterMaintenanceMode")) == 1
        assert len(tasks(content, "esx-01", "exitMaintenanceMode")) == 1
        assert len(tasks(content, "web-1", "relocateVm")) == 1
        assert len(tasks(content, "web-2", "relocateVm")) == 1


def test_a_task_in_flight_is_not_started_again_and_its_failure_is_reported(lab: Vcsim) -> None:
    # Another process (an orchestrator that was killed) started the task; it still runs.
    key = lab.task("running", entity="esx-01", op="enterMaintenanceMode")

    async def attempt(c: VSphereClient) -> OpStatus:
        await c.start_enter_maintenance("esx-01", 600)
        return await c.maintenance_status("esx-01")

    running = with_client(lab, attempt)
    assert running.state == "running"
    assert running.detail.startswith("entering maintenance mode on host esx-01: task running")
    with admin(lab) as content:
        assert len(tasks(content, "esx-01", "enterMaintenanceMode")) == 1
        assert not find(content, vim.HostSystem, "esx-01").runtime.inMaintenanceMode

    lab.task("error", task=key, message="Operation timed out.")
    failed = with_client(lab, lambda c: c.maintenance_status("esx-01"))
    assert failed == OpStatus(
        OpState.FAILED, "entering maintenance mode on host esx-01 failed: Operation timed out."
    )
    # Starting again after a failure is a retry: a new task, and this one succeeds.
    assert with_client(lab, attempt).state == "done"
    with admin(lab) as content:
        assert len(tasks(content, "esx-01", "enterMaintenanceMode")) == 2


def test_exit_in_flight_and_failed(lab: Vcsim) -> None:
    with_client(lab, lambda c: c.start_enter_maintenance("esx-02", 60))
    key = lab.task("running", entity="esx-02", op="exitMaintenanceMode")
    assert with_client(lab, lambda c: c.exit_status("esx-02")).state == "running"
    with_client(lab, lambda c: c.start_exit_maintenance("esx-02"))
    with admin(lab) as content:
        assert len(tasks(content, "esx-02", "exitMaintenanceMode")) == 1
    lab.task("error", task=key, message="host busy")
    assert with_client(lab, lambda c: c.exit_status("esx-02")) == OpStatus(
        OpState.FAILED, "exiting maintenance mode on host esx-02 failed: host busy"
    )


def test_vmotions_in_flight_and_failed(lab: Vcsim) -> None:
    key = lab.task("running", entity="web-1", op="relocateVm")
    with_client(lab, lambda c: c.start_evacuate("esx-01", MOVES))
    with admin(lab) as content:  # web-1 is being moved already; only web-2 was started
        assert len(tasks(content, "web-1", "relocateVm")) == 1
        assert find(content, vim.VirtualMachine, "web-1").runtime.host.name == "esx-01"
        assert find(content, vim.VirtualMachine, "web-2").runtime.host.name == "esx-03"
    assert with_client(lab, lambda c: c.evacuate_status("esx-01", MOVES)) == OpStatus(
        OpState.RUNNING, "moving VMs off host esx-01: web-1"
    )
    lab.task("error", task=key, message="vMotion failed: network unreachable")
    assert with_client(lab, lambda c: c.evacuate_status("esx-01", MOVES)) == OpStatus(
        OpState.FAILED,
        "moving VMs off host esx-01 failed: web-1: vMotion failed: network unreachable")
    with_client(lab, lambda c: c.start_evacuate("esx-01", MOVES))  # retry
    assert with_client(lab, lambda c: c.evacuate_status("esx-01", MOVES)).state == "done"


def test_powered_on_vms_no_move_covers_fail_the_evacuation(lab: Vcsim) -> None:
    async def go(c: VSphereClient) -> OpStatus:
        await c.start_evacuate("esx-01", MOVES[:1])
        return await c.evacuate_status("esx-01", MOVES[:1])

    assert with_client(lab, go) == OpStatus(
        OpState.FAILED, "powered-on VMs that no move covers are still on host esx-01: web-2"
    )


@pytest.mark.parametrize(
    ("moves", "message"),
    [
        ([("web-1", "esx-02"), ("web-2", "esx-11")],
         "cannot move VM web-2 to host esx-11: it is not another host of the cluster of host"),
        ([("web-1", "esx-01")],
         "cannot move VM web-1 to host esx-01: it is not another host of the cluster"),
        ([("web-1", "esx-02"), ("web-2", "esx-77")],
         "cannot move VM web-2 to host esx-77: it is not in the inventory of vCenter"),
        ([("web-1", "esx-02"), ("web-9", "esx-03")],
         "VM 'web-9' is not in the inventory of vCenter"),
        ([("web-1", "esx-02"), ("web-2", "esx-03")],
         "cannot move VM web-2 to host esx-03: it is in maintenance mode"),
    ],
)  # fmt: skip
def test_a_bad_move_starts_nothing(lab: Vcsim, moves: list[tuple[str, str]], message: str) -> None:
    with_client(lab, lambda c: c.start_enter_maintenance("esx-03", 60))
    with pytest.raises(AdapterError, match=message):
        with_client(lab, lambda c: c.start_evacuate("esx-01", moves))
    with admin(lab) as content:
        assert tasks(content, "web-1", "relocateVm") == []
        assert tasks(content, "web-2", "relocateVm") == []


def test_evacuate_status_names_a_vm_that_is_gone(lab: Vcsim) -> None:
    status = with_client(lab, lambda c: c.evacuate_status("esx-01", [("ghost", "esx-02")]))
    assert status == OpStatus(OpState.FAILED, "VM 'ghost' is not in the inventory of vCenter "
                                        + lab.url.removesuffix("/sdk"))  # fmt: skip


# -- the fixture itself -------------------------------------------------------------------


def test_missing_go_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="vcsim unavailable: no go"):
        _unavailable("no go")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="vcsim is required in CI but no go"):
        _unavailable("no go")
