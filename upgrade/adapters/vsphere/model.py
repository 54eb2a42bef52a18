"""What the vSphere client reports about vCenter, in the core model's types.

No pyVmomi here: the ``nsxt`` adapter reads this without loading the vSphere client.
Clusters, hosts and VMs are :mod:`upgrade.core.model` types.  The one thing the core
model leaves out is which hosts are in maintenance mode *now*: it describes the system
before a run (and a saved plan hashes its every field), so that live flag travels
beside it here instead of becoming a field of :class:`~upgrade.core.model.Host`.
"""

from __future__ import annotations

from dataclasses import dataclass

from upgrade.core.model import Cluster, Host

__all__ = ["VCenterInventory"]


@dataclass(frozen=True, slots=True)
class VCenterInventory:
    """vCenter's compute clusters, their hosts and VMs, and the hosts in maintenance mode."""

    #: every compute cluster with its DRS level and host names, sorted by name
    clusters: tuple[Cluster, ...]
    #: every host of those clusters, cluster by cluster, then by name; VMs sorted by name
    hosts: tuple[Host, ...]
    #: the names of the hosts in maintenance mode
    in_maintenance: frozenset[str] = frozenset()

    @property
    def host_map(self) -> dict[str, Host]:
        """Hosts by name."""
        return {h.id: h for h in self.hosts}
