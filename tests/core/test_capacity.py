"""The maintenance-capacity rule, the one function the plan and the engine both call."""

from __future__ import annotations

from upgrade.core.capacity import maintenance_capacity
from upgrade.core.model import Cluster, Drs, Host, Vm


def _cluster(*vms: tuple[Vm, ...]) -> tuple[Cluster, dict[str, Host]]:
    hosts = {f"h{i}": Host(f"h{i}", "c", v) for i, v in enumerate(vms)}
    return Cluster("c", Drs.MANUAL, tuple(hosts)), hosts


def test_a_cluster_with_running_vms_keeps_one_host_out_of_maintenance() -> None:
    assert maintenance_capacity(*_cluster((Vm("a"),), (), ())) == 2
    assert maintenance_capacity(*_cluster((), (Vm("b"),))) == 1


def test_a_cluster_without_running_vms_has_no_limit() -> None:
    assert maintenance_capacity(*_cluster((), ())) is None
    assert maintenance_capacity(*_cluster((Vm("off", powered_on=False),), ())) is None


def test_a_lone_host_with_running_vms_has_no_capacity() -> None:
    assert maintenance_capacity(*_cluster((Vm("a"),))) == 0
