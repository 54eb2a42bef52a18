"""The maintenance-capacity rule: one host of a cluster with running VMs stays out of
maintenance to receive them.

The plan caps a host group's ``max_parallel`` with it, and the engine holds a host back
with it while the run goes on; both call :func:`maintenance_capacity`.
"""

from __future__ import annotations

from collections.abc import Mapping

from upgrade.core.model import Cluster, Host


def maintenance_capacity(cluster: Cluster, hosts: Mapping[str, Host]) -> int | None:
    """How many hosts of ``cluster`` may be in (or entering) maintenance at once: all but
    one when its hosts run powered-on VMs, None (no limit) when they run none.

    ``hosts`` maps host ids to hosts as the run began.  A one-host cluster with running
    VMs gets 0: nowhere to move them (the plan refuses it with a finding).
    """
    if any(hosts[h].running_vms for h in cluster.hosts):
        return len(cluster.hosts) - 1
    return None
