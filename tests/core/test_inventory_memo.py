"""An Inventory builds its maps (units, versions, hosts by id) once and hands out copies:
the answers are those of its fields, whatever a caller does to a copy, and the memo is no
part of its value (equality, hashing, pickling, the journal's encoding, ``replace()``)."""

from __future__ import annotations

import copy
import dataclasses
import pickle

from upgrade.core.engine import tagged
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
        unit_versions=(("e2", NEWER), ("h2", NEWER)),
    )


def test_the_maps_are_those_of_the_fields() -> None:
    inventory = _inventory()
    kinds = {"h1": UnitKind.HOST, "h2": UnitKind.HOST, "e1": UnitKind.EDGE,
             "e2": UnitKind.EDGE, "c1": UnitKind.CONTROLLER, "c2": UnitKind.CONTROLLER,
             "c3": UnitKind.CONTROLLER, "mgr": UnitKind.MANAGER}
    for _ in range(2):  # built, then from the memo
        assert list(inventory.units().items()) == list(kinds.items())
        assert inventory.versions() == {u: NEWER if u in ("e2", "h2") else OLD for u in kinds}
        assert list(inventory.versions()) == list(kinds)
        assert inventory.host_map == {"h1": inventory.hosts[0], "h2": inventory.hosts[1]}
        assert inventory.host("h2") is inventory.hosts[1]
        assert inventory.cluster_of("h1") is inventory.clusters[0]


def test_a_caller_changing_its_copy_changes_nothing() -> None:
    inventory = _inventory()
    inventory.units().clear()
    inventory.versions()["h1"] = NEWER
    inventory.host_map.pop("h1")
    assert len(inventory.units()) == 8
    assert inventory.versions()["h1"] == OLD
    assert "h1" in inventory.host_map


def test_the_memo_is_no_part_of_the_value() -> None:
    used, fresh = _inventory(), _inventory()
    used.units(), used.versions(), used.host_map  # fills the memo
    assert used == fresh and hash(used) == hash(fresh)
    assert tagged.enc(used) == tagged.enc(fresh)
    assert pickle.dumps(used) == pickle.dumps(fresh)
    assert pickle.loads(pickle.dumps(used)).versions() == used.versions()
    assert copy.deepcopy(used).units() == used.units()


def test_replace_answers_for_the_new_fields() -> None:
    used = _inventory()
    used.units(), used.versions(), used.host_map  # fills the memo
    fewer = dataclasses.replace(used, hosts=used.hosts[:1], unit_versions=())
    assert "h2" not in fewer.units() and "h2" not in fewer.host_map
    assert set(fewer.versions().values()) == {OLD}
    quiet = dataclasses.replace(used, faults=())
    assert quiet.versions() == used.versions() and quiet.units() == used.units()
