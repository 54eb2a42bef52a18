"""An Inventory's maps (units, versions, hosts by id), built by C loops for 100,000 hosts:
the units in the inventory's order, each with its own version or the system's (a version
for a unit the inventory does not hold is no unit)."""

from __future__ import annotations

from upgrade.core.model import Cluster, Drs, EdgeCluster, Host, Inventory, UnitKind, Vm
from upgrade.core.versions import Version

OLD = Version.parse("2.3.0")
NEWER = Version.parse("2.3.1")


def _inventory() -> Inventory:
    return Inventory(
        version=OLD, manager="mgr", controllers=("c1", "c2", "c3"),
        edge_clusters=(EdgeCluster("ec", ("e1", "e2")),),
        clusters=(Cluster("cl", Drs.MANUAL, ("h1", "h2")),),
        hosts=(Host("h1", "cl", (Vm("v1"),)), Host("h2", "cl")),
        unit_versions=(("e2", NEWER), ("gone", NEWER), ("h2", NEWER)),
    )


def test_the_maps_are_those_of_the_fields() -> None:
    inventory = _inventory()
    kinds = {"h1": UnitKind.HOST, "h2": UnitKind.HOST, "e1": UnitKind.EDGE,
             "e2": UnitKind.EDGE, "c1": UnitKind.CONTROLLER, "c2": UnitKind.CONTROLLER,
             "c3": UnitKind.CONTROLLER, "mgr": UnitKind.MANAGER}
    assert list(inventory.units().items()) == list(kinds.items())
    assert inventory.versions() == {u: NEWER if u in ("e2", "h2") else OLD for u in kinds}
    assert list(inventory.versions()) == list(kinds)
    assert inventory.host_map == {"h1": inventory.hosts[0], "h2": inventory.hosts[1]}
    assert inventory.host("h2") is inventory.hosts[1]
    assert inventory.cluster_of("h1") is inventory.clusters[0]
