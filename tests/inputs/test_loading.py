"""Invalid playbooks and inventories, as a user meets them through `nsxt-upgrade plan`.

Every problem exits 2 with exactly one line on stderr, ``FILE:LINE:COL: what is
wrong``, pointing at the offending value, and nothing on stdout.  Files are
real files in a temporary directory; positions are 1-based.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from upgrade.cli.main import cli
from upgrade.core.model import Drs
from upgrade.inputs.playbook import load

INVENTORY = """\
nsx:
  version: "2.1.0.0"
  manager: nsx-mgr-01
  controllers: [ctrl-01]
  edge_clusters:
    - {name: edge-cluster-1, edges: [edge-01, edge-02]}
compute:
  clusters:
    - name: cluster-a
      drs: fully_automated
      hosts:
        - {id: esx-01, vms: [web-1]}
        - {id: esx-02, vms: [web-2]}
    - name: cluster-b
      drs: off
      hosts:
        - {id: esx-03, vms: [db-1]}
        - {id: esx-04, vms: []}
"""

PLAYBOOK = """\
name: test-upgrade
target_version: "2.3.0.0"
bundle: {path: bundle.mub}
inventory: {adapter: simulated, source: inventory.yaml}
compatibility: {pks: "1.2.0", opsman: "2.3.1"}
hosts:
  mode: serial
"""


def site(tmp_path: Path, playbook: str = PLAYBOOK, inventory: str = INVENTORY) -> Path:
    """Write a playbook, its inventory and its bundle into ``tmp_path``; the playbook's path."""
    (tmp_path / "bundle.mub").write_bytes(b"not really a bundle")
    (tmp_path / "inventory.yaml").write_text(inventory, encoding="utf-8")
    path = tmp_path / "playbook.yaml"
    path.write_text(playbook, encoding="utf-8")
    return path


def invalid(runner: CliRunner, playbook: Path) -> str:
    """Run `plan` on an invalid input; the one line it prints, after checking exit 2."""
    result = runner.invoke(cli, ["plan", str(playbook)])
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_valid_site_plans(runner: CliRunner, tmp_path: Path) -> None:
    """The base files of these tests are valid: every failure below is the edit's."""
    result = runner.invoke(cli, ["plan", str(site(tmp_path))])
    assert result.exit_code == 0, result.output


def test_yaml_syntax_error(runner: CliRunner, tmp_path: Path) -> None:
    """An unclosed flow list is reported where YAML notices, naming where the list began."""
    text = PLAYBOOK.replace("bundle: {path: bundle.mub}", "bundle: [bundle.mub")
    path = site(tmp_path, text)
    line = invalid(runner, path)
    assert line.startswith(f"{path}:4:10: YAML syntax error: ")
    assert "line 3, column 9" in line


def test_yaml_bad_indentation(runner: CliRunner, tmp_path: Path) -> None:
    """A key indented deeper than its siblings is a syntax error on its line."""
    path = site(tmp_path, PLAYBOOK + "   max_parallel: 2\n")
    assert invalid(runner, path).startswith(f"{path}:8:16: YAML syntax error: ")


def test_empty_playbook(runner: CliRunner, tmp_path: Path) -> None:
    """An empty file says so instead of failing later."""
    path = site(tmp_path, "# nothing yet\n")
    assert invalid(runner, path) == f"{path}:1:1: file is empty: expected a mapping of settings"


def test_missing_playbook(runner: CliRunner, tmp_path: Path) -> None:
    """A playbook that does not exist is invalid input too."""
    path = tmp_path / "nope.yaml"
    assert invalid(runner, path) == f"{path}:1:1: file not found"


def test_duplicate_key(runner: CliRunner, tmp_path: Path) -> None:
    """A key given twice is an error at the second, naming the first line."""
    path = site(tmp_path, PLAYBOOK + "name: again\n")
    assert invalid(runner, path) == (
        f"{path}:8:1: duplicate key 'name' (first given on line 1)"
    )


def test_duplicate_key_in_inventory(runner: CliRunner, tmp_path: Path) -> None:
    """Duplicate keys in the inventory name the inventory file."""
    inventory = INVENTORY.replace("  manager: nsx-mgr-01\n", "  manager: a\n  manager: b\n")
    path = site(tmp_path, inventory=inventory)
    line = invalid(runner, path)
    assert line == (
        f"{tmp_path / 'inventory.yaml'}:4:3: duplicate key 'manager' (first given on line 3)"
    )


def test_unknown_key_suggests_the_nearest(runner: CliRunner, tmp_path: Path) -> None:
    """A misspelt key is an error at the key, suggesting the known key it resembles."""
    path = site(tmp_path, PLAYBOOK + "  max_paralel: 2\n")
    line = invalid(runner, path)
    assert line.startswith(
        f"{path}:8:3: unknown key 'max_paralel' in hosts; did you mean 'max_parallel'?"
    )


def test_unknown_top_level_key(runner: CliRunner, tmp_path: Path) -> None:
    """Unknown keys at the top are errors too, listing the known ones."""
    path = site(tmp_path, PLAYBOOK + "on_eror: pause\n")
    line = invalid(runner, path)
    assert line.startswith(
        f"{path}:8:1: unknown key 'on_eror' in the playbook; did you mean 'on_error'?"
    )
    assert "known keys: name, target_version" in line


@pytest.mark.parametrize(
    ("edit", "position", "message"),
    [
        ("retries: two\n", "8:10", "retries must be a whole number, found two"),
        ("retries: 1.5\n", "8:10", "retries must be a whole number, found 1.5"),
        ("on_error: true\n", "8:11", "on_error must be one of pause, abort, found true"),
        ("edges: parallel\n", "8:8", "expected a mapping for edges, found a string"),
        (
            "prechecks: {acknowledge: warning-1}\n", "8:26",
            "acknowledge must be a list, found a string",
        ),
    ],
)
def test_wrong_types(
    runner: CliRunner, tmp_path: Path, edit: str, position: str, message: str
) -> None:
    """A value of the wrong type is reported at the value."""
    path = site(tmp_path, PLAYBOOK + edit)
    assert invalid(runner, path) == f"{path}:{position}: {message}"


def test_number_where_a_string_belongs(runner: CliRunner, tmp_path: Path) -> None:
    """A name that YAML reads as a number must be quoted, and the message says how."""
    path = site(tmp_path, PLAYBOOK.replace("name: test-upgrade", "name: 2018"))
    assert invalid(runner, path) == (
        f'{path}:1:7: name must be a string, found 2018; quote it: "2018"'
    )


def test_unquoted_numeric_version(runner: CliRunner, tmp_path: Path) -> None:
    """`target_version: 2.30` is refused, never silently read as 2.3."""
    path = site(tmp_path, PLAYBOOK.replace('target_version: "2.3.0.0"', "target_version: 2.30"))
    assert invalid(runner, path) == (
        f"{path}:2:17: target_version is an unquoted number (2.30), which YAML reads as 2.3; "
        'quote versions: "2.30"'
    )


def test_unquoted_version_in_compatibility_and_inventory(
    runner: CliRunner, tmp_path: Path
) -> None:
    """The same holds for the PKS version and the inventory's NSX-T version."""
    path = site(tmp_path, PLAYBOOK.replace('pks: "1.2.0"', "pks: 1.2"))
    assert invalid(runner, path).startswith(f"{path}:5:22: pks is an unquoted number (1.2)")
    path = site(tmp_path, inventory=INVENTORY.replace('version: "2.1.0.0"', "version: 2.1"))
    assert invalid(runner, path).startswith(
        f"{tmp_path / 'inventory.yaml'}:2:12: version is an unquoted number (2.1)"
    )


def test_malformed_version(runner: CliRunner, tmp_path: Path) -> None:
    """A quoted string that is not a version is an error at the value."""
    path = site(tmp_path, PLAYBOOK.replace('"2.3.0.0"', '"2.3-beta"'))
    assert invalid(runner, path).startswith(
        f"{path}:2:17: target_version: '2.3-beta' is not a version"
    )


def test_drs_off_is_the_string_off(runner: CliRunner, tmp_path: Path) -> None:
    """YAML 1.2: `drs: off` is the string "off", a valid DRS level, not the boolean false."""
    path = site(tmp_path)
    inventory = load(path).inventory
    assert inventory is not None
    assert inventory.clusters[1].drs is Drs.OFF
    assert runner.invoke(cli, ["plan", str(path)]).exit_code == 0


def test_insecure_yes_is_not_a_boolean(runner: CliRunner, tmp_path: Path) -> None:
    """YAML 1.2: `insecure: yes` is the string "yes", so it is an error, not true."""
    text = PLAYBOOK.replace("source: inventory.yaml}", "source: inventory.yaml, insecure: yes}")
    path = site(tmp_path, text)
    assert invalid(runner, path) == f"{path}:4:67: insecure must be true or false, found yes"


def test_powered_on_no_is_not_a_boolean(runner: CliRunner, tmp_path: Path) -> None:
    """`powered_on: no` in the inventory is refused the same way."""
    inventory = INVENTORY.replace("vms: [web-1]", "vms: [{id: web-1, powered_on: no}]")
    path = site(tmp_path, inventory=inventory)
    assert invalid(runner, path) == (
        f"{tmp_path / 'inventory.yaml'}:12:54: powered_on must be true or false, found no"
    )


def test_missing_inventory_file(runner: CliRunner, tmp_path: Path) -> None:
    """An inventory that does not exist is reported at `source`, relative to the playbook."""
    path = site(tmp_path, PLAYBOOK.replace("source: inventory.yaml", "source: other.yaml"))
    assert invalid(runner, path) == (
        f"{path}:4:41: inventory file {tmp_path / 'other.yaml'} does not exist "
        "(paths are relative to the playbook)"
    )


def test_missing_bundle_file(runner: CliRunner, tmp_path: Path) -> None:
    """A bundle that does not exist is reported at its path."""
    path = site(tmp_path, PLAYBOOK.replace("path: bundle.mub", "path: bundles/missing.mub"))
    assert invalid(runner, path) == (
        f"{path}:3:16: bundle file {tmp_path / 'bundles/missing.mub'} does not exist "
        "(paths are relative to the playbook)"
    )


def test_paths_are_relative_to_the_playbook(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning from another directory finds the inventory and bundle beside the playbook."""
    home = tmp_path / "site"
    home.mkdir()
    path = site(home)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert runner.invoke(cli, ["plan", str(path)]).exit_code == 0


GROUPS = PLAYBOOK + "  groups:\n    - {name: first, hosts: [esx-01, esx-03]}\n"


def test_group_host_not_in_inventory(runner: CliRunner, tmp_path: Path) -> None:
    """A host named in `groups` that the inventory lacks is an error at that host."""
    path = site(tmp_path, GROUPS + "    - {name: second, hosts: [esx-02, esx-99]}\n")
    assert invalid(runner, path) == (
        f"{path}:10:38: host 'esx-99' in group 'second' is not in the inventory"
    )


def test_group_host_in_two_groups(runner: CliRunner, tmp_path: Path) -> None:
    """A host in two groups is an error at its second mention, naming both groups."""
    path = site(tmp_path, GROUPS + "    - {name: second, hosts: [esx-02, esx-03]}\n")
    assert invalid(runner, path) == (
        f"{path}:10:38: host 'esx-03' is in two groups: 'first' and 'second'; "
        "a host belongs to one group"
    )


def test_group_host_twice_in_one_group(runner: CliRunner, tmp_path: Path) -> None:
    """A host listed twice in one group says exactly that."""
    path = site(tmp_path, PLAYBOOK + "  groups:\n    - {name: g, hosts: [esx-01, esx-01]}\n")
    assert invalid(runner, path) == f"{path}:9:33: host 'esx-01' is listed twice in group 'g'"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("  max_parallel: 0\n", "max_parallel must be at least 1, found 0"),
        ("  max_parallel: 6\n", "max_parallel must be at most 5, found 6"),
        ("  max_parallel_groups: 0\n", "max_parallel_groups must be at least 1, found 0"),
        ("  max_parallel_groups: 6\n", "max_parallel_groups must be at most 5, found 6"),
    ],
)
def test_max_parallel_within_the_product_limit(
    runner: CliRunner, tmp_path: Path, edit: str, message: str
) -> None:
    """Concurrency must be 1 to 5, the NSX-T Upgrade Coordinator's limit."""
    path = site(tmp_path, PLAYBOOK + edit)
    column = edit.index(":") + 3
    assert invalid(runner, path) == f"{path}:8:{column}: {message}"


def test_unknown_adapter(runner: CliRunner, tmp_path: Path) -> None:
    """An unknown adapter lists the known ones and suggests the nearest."""
    path = site(tmp_path, PLAYBOOK.replace("adapter: simulated", "adapter: simulator"))
    assert invalid(runner, path) == (
        f"{path}:4:22: adapter must be one of simulated, nsxt, found 'simulator'; "
        "did you mean 'simulated'?"
    )


def test_inventory_without_manager(runner: CliRunner, tmp_path: Path) -> None:
    """An inventory with no manager is an error at its `nsx` section."""
    path = site(tmp_path, inventory=INVENTORY.replace("  manager: nsx-mgr-01\n", ""))
    assert invalid(runner, path) == (
        f"{tmp_path / 'inventory.yaml'}:2:3: the inventory has no manager: "
        "add nsx.manager: <manager id>"
    )


@pytest.mark.parametrize(
    ("edit", "position"),
    [("", "2:3"), ("  controllers: []\n", "4:16")],
    ids=["absent", "empty"],
)
def test_inventory_without_controllers(
    runner: CliRunner, tmp_path: Path, edit: str, position: str
) -> None:
    """An inventory with no controllers (absent or an empty list) is an error."""
    inventory = INVENTORY.replace("  controllers: [ctrl-01]\n", edit)
    path = site(tmp_path, inventory=inventory)
    assert invalid(runner, path) == (
        f"{tmp_path / 'inventory.yaml'}:{position}: the inventory has no controllers: "
        "list them in nsx.controllers"
    )


def test_inventory_durations_are_optional(runner: CliRunner, tmp_path: Path) -> None:
    """An inventory without `durations` uses the defaults (it was wrongly required)."""
    path = site(tmp_path)
    inventory = load(path).inventory
    assert inventory is not None
    assert inventory.durations.host_upgrade == 900


def test_duplicate_edge_cluster(runner: CliRunner, tmp_path: Path) -> None:
    """Two edge clusters of one name are an error at the second name."""
    inventory = INVENTORY.replace(
        "    - {name: edge-cluster-1, edges: [edge-01, edge-02]}\n",
        "    - {name: edge-cluster-1, edges: [edge-01]}\n"
        "    - {name: edge-cluster-1, edges: [edge-02]}\n",
    )
    path = site(tmp_path, inventory=inventory)
    assert invalid(runner, path) == (
        f"{tmp_path / 'inventory.yaml'}:7:14: edge cluster 'edge-cluster-1' is listed twice"
    )


def test_empty_groups_mean_default_groups(tmp_path: Path) -> None:
    """`groups: []` is the default grouping, one group per cluster, without a note."""
    loaded = load(site(tmp_path, PLAYBOOK + "  groups: []\n"))
    assert loaded.playbook.hosts.groups is None


def test_null_timeout_means_the_default(tmp_path: Path) -> None:
    """`timeouts: {host_upgrade: ~}` means "the default", not a zero-second timeout."""
    loaded = load(site(tmp_path, PLAYBOOK + "timeouts: {host_upgrade: ~, edge_upgrade: 900}\n"))
    assert loaded.playbook.timeouts.host_upgrade is None
    assert loaded.playbook.timeouts.edge_upgrade == 900

TWICE = "; every host, edge, controller and manager needs its own id"


@pytest.mark.parametrize(("old", "new", "expected"), [
    # a host with the controller's id: named where the host gives it, first where it was
    ("{id: esx-03, vms: [db-1]}", "{id: ctrl-01, vms: [db-1]}",
     "17:16: unit id 'ctrl-01' is used twice (first on line 4)" + TWICE),
    # a host with the id of a host before it
    ("{id: esx-04, vms: []}", "{id: esx-02, vms: []}",
     "18:16: unit id 'esx-02' is used twice (first on line 13)" + TWICE),
    # an edge with the manager's id
    ("edges: [edge-01, edge-02]", "edges: [edge-01, nsx-mgr-01]",
     "6:47: unit id 'nsx-mgr-01' is used twice (first on line 3)" + TWICE),
    # a VM on two hosts
    ("{id: esx-04, vms: []}", "{id: esx-04, vms: [web-2]}",
     "18:30: VM 'web-2' is listed twice (first on line 13)"),
])
def test_an_id_given_twice_names_both_places(runner: CliRunner, tmp_path: Path, old: str,
                                             new: str, expected: str) -> None:
    """Unit ids are unique across kinds and VM ids across hosts: the second is refused at
    its own position, naming the line of the first."""
    path = site(tmp_path, inventory=INVENTORY.replace(old, new))
    assert invalid(runner, path) == f"{tmp_path / 'inventory.yaml'}:{expected}"
