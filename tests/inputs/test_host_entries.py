"""A host entry of the inventory: every mistake refused as the general readers refuse it.

Host entries take a faster path (an inventory holds 100,000 of them; issue 23 item 4);
each expected line below is what the general readers (``MapReader``) said before it, in
the same order of checks: the first mistake of an entry is the one reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from upgrade.errors import FileError
from upgrade.inputs.inventory import load_inventory

INVENTORY = """\
nsx:
  version: "2.1.0.0"
  manager: nsx-mgr-01
  controllers: [ctrl-01]
compute:
  clusters:
    - name: cluster-a
      hosts:
        - {id: esx-01, vms: [web-1]}
        - HOST
"""
RULE = ("is not a valid id: use letters, digits and . _ - : @ ( ) + /, single spaces between "
        "words, starting with a letter or digit, at most 255 characters")
TWICE = "; every host, edge, controller and manager needs its own id"


@pytest.mark.parametrize(("entry", "expected"), [
    ("{id: esx-02, vm: [web-2]}",
     "10:24: unknown key 'vm' in a host; did you mean 'vms'? (known keys: id, vms, version)"),
    ("{vms: [web-2]}", "10:11: missing required key 'id'"),
    ("{id: 'esx 02!', vms: [web-2]}", f"10:16: host id 'esx 02!' {RULE}"),
    ("{id: 2, vms: [web-2]}", '10:16: host id must be a string, found 2; quote it: "2"'),
    ("{id: esx-02, vms: web-2}", "10:29: vms must be a list, found a string"),
    ("{id: esx-02, vms: ['web 2!']}", f"10:30: a VM id 'web 2!' {RULE}"),
    ("{id: esx-01, vms: [web-1]}", "10:16: unit id 'esx-01' is used twice (first on line 9)"
     + TWICE),
    ("{id: esx-01, vms: ['bad id!']}", "10:16: unit id 'esx-01' is used twice (first on line "
     "9)" + TWICE),  # the id is checked before the VMs
    ("{id: esx-02, vms: [web-1]}", "10:30: VM 'web-1' is listed twice (first on line 9)"),
    ("{id: esx-02, vms: [web-2, web-2]}", "10:37: VM 'web-2' is listed twice (first on line 10)"),
    ("{id: esx-02, version: 2.3, vms: [web-2]}",
     '10:33: version is an unquoted number (2.3), which YAML reads as 2.3; quote versions: '
     '"2.3"'),
    ('{id: esx-02, version: "2.3.0.0", vms: [web-2, 7]}',
     '10:57: a VM id must be a string, found 7; quote it: "7"'),
    ("[esx-02]", "10:11: expected a mapping for a host, found a list"),
    ("esx-02", "10:11: expected a mapping for a host, found a string"),
    ("{id: esx-02, vms: [~]}", "10:30: a VM id must be a string, found null"),
])
def test_a_bad_host_entry_is_refused_where_it_is(tmp_path: Path, entry: str,
                                                 expected: str) -> None:
    """One FILE:LINE:COL line, the first mistake of the entry."""
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY.replace("HOST", entry), encoding="utf-8")
    with pytest.raises(FileError) as caught:
        load_inventory(path)
    assert str(caught.value) == f"{path}:{expected}"


@pytest.mark.parametrize(("entry", "vms"), [
    ("{id: esx-02, vms: [{id: web-2, powered_on: false}, web-3]}",
     [("web-2", False), ("web-3", True)]),
    ("{id: esx-02, vms: ~}", []),
    ("{id: esx-02}", []),
])
def test_good_host_entries_read_as_written(tmp_path: Path, entry: str,
                                           vms: list[tuple[str, bool]]) -> None:
    """Mappings, powered-off VMs and no VMs at all read as before."""
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY.replace("HOST", entry), encoding="utf-8")
    inventory = load_inventory(path)
    assert [(v.id, v.powered_on) for v in inventory.host("esx-02").vms] == vms
    assert inventory.host("esx-02").cluster == "cluster-a"


TWO_CLUSTERS = INVENTORY + """\
    - name: cluster-b
      hosts:
        - {id: esx-03, vms: [web-3]}
        - OTHER
"""


@pytest.mark.parametrize(("other", "expected"), [
    ("{id: esx-01, vms: [web-4]}", "14:16: unit id 'esx-01' is used twice (first on line 9)"
     + TWICE),
    ("{id: ctrl-01, vms: [web-4]}", "14:16: unit id 'ctrl-01' is used twice (first on line "
     "4)" + TWICE),
    ("{id: esx-04, vms: [web-4, web-2]}", "14:37: VM 'web-2' is listed twice (first on line 10)"),
    ("{id: esx-04, vms: [web-4, 'web 4!']}", f"14:37: a VM id 'web 4!' {RULE}"),
])
def test_ids_are_checked_across_clusters(tmp_path: Path, other: str, expected: str) -> None:
    """A cluster of usual entries (read a cluster at a time) still meets the ids of the
    clusters before it: the first repeated or bad id is the one reported."""
    path = tmp_path / "inventory.yaml"
    path.write_text(TWO_CLUSTERS.replace("HOST", "{id: esx-02, vms: [web-2]}")
                    .replace("OTHER", other), encoding="utf-8")
    with pytest.raises(FileError) as caught:
        load_inventory(path)
    assert str(caught.value) == f"{path}:{expected}"


def test_usual_entries_read_as_written(tmp_path: Path) -> None:
    """Clusters of usual entries keep their hosts, VMs and order."""
    path = tmp_path / "inventory.yaml"
    path.write_text(TWO_CLUSTERS.replace("HOST", "{id: esx-02, vms: [web-2, web-5]}")
                    .replace("OTHER", "{id: esx-04, vms: []}"), encoding="utf-8")
    inventory = load_inventory(path)
    assert [c.hosts for c in inventory.clusters] == [("esx-01", "esx-02"), ("esx-03", "esx-04")]
    assert [(h.id, h.cluster, [v.id for v in h.vms]) for h in inventory.hosts] == [
        ("esx-01", "cluster-a", ["web-1"]), ("esx-02", "cluster-a", ["web-2", "web-5"]),
        ("esx-03", "cluster-b", ["web-3"]), ("esx-04", "cluster-b", [])]
    assert all(v.powered_on for h in inventory.hosts for v in h.vms)
