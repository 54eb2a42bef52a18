"""The vCenter side of an inventory, as the spec ``tests/vcsim`` (govmomi's vcsim) builds from.

An emulated NSX-T Manager knows the upgrade units; the vCenter that holds the
hosts must know the same clusters, hosts, VMs and DRS levels, or the ``nsxt``
adapter's discovery and evacuation plans would not match.  :func:`vcsim_spec`
turns an inventory's ``compute`` section into vcsim's ``-spec`` JSON document.
"""

from __future__ import annotations

from typing import Any

from upgrade.core.model import Inventory


def vcsim_spec(inventory: Inventory, datacenter: str = "dc-1") -> dict[str, Any]:
    """``{"datacenter", "clusters": [{"name", "drs", "hosts": [{"name", "vms": [...]}]}]}``."""
    hosts = inventory.host_map
    return {
        "datacenter": datacenter,
        "clusters": [
            {
                "name": cluster.name,
                "drs": cluster.drs.value,
                "hosts": [
                    {"name": h, "vms": [{"name": vm.id, "powered_on": vm.powered_on}
                                        for vm in hosts[h].vms]}
                    for h in cluster.hosts
                ],
            }
            for cluster in inventory.clusters
        ],
    }
