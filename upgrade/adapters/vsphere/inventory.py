"""vCenter's compute clusters, hosts and VMs read as one :class:`VCenterInventory`."""

from __future__ import annotations

from typing import Any

from upgrade.adapters.vsphere.collector import Collector, Obj, moid
from upgrade.adapters.vsphere.model import VCenterInventory
from upgrade.core.model import Cluster, Drs, Host, Vm

__all__ = ["read_inventory"]


def read_inventory(vcenter: Collector) -> VCenterInventory:
    """Every compute cluster with its DRS level, hosts and their VMs, sorted by name."""
    hosts, vms = vcenter.hosts(), vcenter.vms()
    clusters: list[tuple[Cluster, tuple[Host, ...]]] = []
    for cluster in vcenter.clusters():
        name = str(cluster.get("name"))
        members = [h for h in hosts if moid(h.get("parent")) == cluster.id]
        described = sorted((_host(h, name, vms) for h in members), key=lambda h: h.id)
        drs = _drs(getattr(cluster.get("configurationEx"), "drsConfig", None))
        clusters.append((Cluster(name, drs, tuple(h.id for h in described)), tuple(described)))
    clusters.sort(key=lambda c: c[0].name)
    listed = tuple(h for _, members in clusters for h in members)
    maintenance = {str(h.get("name")) for h in hosts if h.get("runtime.inMaintenanceMode")}
    return VCenterInventory(tuple(c for c, _ in clusters), listed,
                            frozenset(h.id for h in listed if h.id in maintenance))


def _host(host: Obj, cluster: str, vms: list[Obj]) -> Host:
    on_host = [
        Vm(str(vm.get("name")), vm.get("runtime.powerState") == "poweredOn")
        for vm in vms
        if moid(vm.get("runtime.host")) == host.id
    ]
    return Host(str(host.get("name")), cluster, tuple(sorted(on_host, key=lambda v: v.id)))


def _drs(config: Any) -> Drs:
    if config is None or not config.enabled:
        return Drs.OFF
    return Drs.FULLY_AUTOMATED if config.defaultVmBehavior == "fullyAutomated" else Drs.MANUAL
