"""What the safe YAML reader still accepts, its limits at their edges, and names shown escaped.

The hostile files themselves are in ``tests/inputs/hostile`` (``test_hostile.py``); these
tests make sure the limits do not refuse what operators legitimately write:
anchors and aliases, a UTF-8 BOM, FQDNs, IPv6 addresses, VM names with spaces,
and a 100,000-host inventory.  They also check that names a real manager
reports, which no file rule vets, reach the terminal escaped.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from tests.inputs.test_loading import INVENTORY, PLAYBOOK, site
from upgrade.cli.main import cli
from upgrade.core.engine.messages import Notice
from upgrade.core.plan import Plan
from upgrade.errors import FileError
from upgrade.inputs.inventory import load_inventory
from upgrade.inputs.yamlread import MAX_ALIAS_NODES, load_yaml
from upgrade.inputs.yamltext import MAX_FILE_BYTES
from upgrade.prepare.planning import prepare
from upgrade.render import printable
from upgrade.render.live import Display
from upgrade.render.plan_json import plan_to_json
from upgrade.render.plan_mermaid import plan_to_mermaid
from upgrade.render.plan_text import render_plan

ROOT = Path(__file__).resolve().parents[2]


def test_anchors_and_aliases_keep_working(runner: CliRunner, tmp_path: Path) -> None:
    """An operator's DRY inventory (a shared message, a shared list) plans as written."""
    inventory = INVENTORY + (
        "health:\n"
        "  warnings:\n"
        "    - {id: nic-a, unit: edge-01, message: &nic \"a NIC is unplugged\"}\n"
        "    - {id: nic-b, unit: edge-02, message: *nic}\n"
    )
    playbook = PLAYBOOK + "prechecks: {acknowledge: &acks [nic-a, nic-b]}\n"
    path = site(tmp_path, playbook, inventory)
    result = runner.invoke(cli, ["plan", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)["findings"]
    health = [f["message"] for f in findings if f["id"] in ("nic-a", "nic-b")]
    assert health == ["a NIC is unplugged"] * 2


def test_the_alias_budget_is_exact(tmp_path: Path) -> None:
    """Aliases adding exactly the budget load; one node more is refused at that alias."""
    per_alias = 1000  # a list of 999 scalars: 1000 nodes
    count = MAX_ALIAS_NODES // per_alias
    items = ", ".join(["x"] * (per_alias - 1))
    text = f"base: &b [{items}]\nuses:\n" + "".join("  - *b\n" for _ in range(count))
    path = tmp_path / "budget.yaml"
    path.write_text(text, encoding="utf-8")
    root = load_yaml(path)
    assert isinstance(root.value, dict)
    uses = root.value["uses"].value
    assert isinstance(uses, list) and len(uses) == count
    path.write_text(text + "  - x\n  - [*b]\n", encoding="utf-8")
    with pytest.raises(FileError) as caught:
        load_yaml(path)
    assert (caught.value.line, caught.value.column) == (count + 4, 6)
    assert "refused as an alias bomb" in caught.value.reason


def test_a_utf8_bom_is_fine(runner: CliRunner, tmp_path: Path) -> None:
    """Editors on Windows save a BOM first; it is not part of the first key."""
    path = site(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = runner.invoke(cli, ["plan", str(path)])
    assert result.exit_code == 0, result.output


def test_real_world_names_are_valid_ids(tmp_path: Path) -> None:
    """FQDNs, IPv4 and IPv6 addresses, VM names with spaces and accents all load."""
    text = (INVENTORY.replace("esx-01", "esx-01.lab.example.com")
            .replace("esx-02", "10.20.30.42")
            .replace("esx-03", "fd00:10::42")
            .replace("web-1", "web server (old)")
            .replace("db-1", "Prüfung-DB_01"))
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    inventory = load_inventory(path)
    assert [h.id for h in inventory.hosts][:3] == [
        "esx-01.lab.example.com", "10.20.30.42", "fd00:10::42"]
    assert inventory.hosts[0].vms[0].id == "web server (old)"


def test_the_playbook_name_is_one_path_segment(runner: CliRunner, tmp_path: Path) -> None:
    """The name names the default state dir: `../x` would write outside it."""
    path = site(tmp_path, PLAYBOOK.replace("name: test-upgrade", "name: ../../etc"))
    result = runner.invoke(cli, ["plan", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:1:7: name '../../etc' is not a valid id: ")


def test_a_100000_host_inventory_is_under_the_size_limit(tmp_path: Path) -> None:
    """The benchmark's inventory format at 100,000 hosts is far below the file limit."""
    spec = importlib.util.spec_from_file_location("bench_common",
                                                  ROOT / "benchmarks" / "common.py")
    assert spec is not None and spec.loader is not None
    common = importlib.util.module_from_spec(spec)  # a script folder, not a package
    spec.loader.exec_module(common)
    common.write_site(tmp_path, 1000, 100, 50)
    size = (tmp_path / "inventory.yaml").stat().st_size
    assert size < MAX_FILE_BYTES / 2


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    """The limit is on bytes read: at the limit a file is read; one byte more is refused."""
    path = tmp_path / "limit.yaml"
    filler = b"#" * (MAX_FILE_BYTES - len(b"a: 1\n") - 1) + b"\n"
    path.write_bytes(b"a: 1\n" + filler)
    assert load_yaml(path).value is not None
    path.write_bytes(b"a: 1\n" + filler + b"\n")
    with pytest.raises(FileError, match="more than the 16 MiB"):
        load_yaml(path)


def test_printable_shows_control_characters() -> None:
    """Escapes, newlines and direction overrides become visible text."""
    assert printable("esx-01\x1b[31mred\n") == "esx-01\\x1b[31mred\\n"
    assert printable("a\u202eb\x9bc") == "a\\u202eb\\x9bc"
    assert printable("line one\nline two", newlines=True) == "line one\nline two"
    assert printable("esx-01.lab (old) Prüfung") == "esx-01.lab (old) Prüfung"


MANAGER_NAME = "esx-02\x1b[2J[bold]x\u202e"


def _manager_named_plan(tmp_path: Path) -> Plan:
    """A plan over an inventory as a real manager reported it (names not vetted)."""
    path = site(tmp_path)
    copy = tmp_path / "discovered.yaml"
    copy.write_text(INVENTORY.replace("esx-02", json.dumps(MANAGER_NAME)), encoding="utf-8")
    inventory = load_inventory(copy, discovered=True)
    assert MANAGER_NAME in [h.id for h in inventory.hosts]
    return prepare(path, (), inventory).plan


def test_manager_names_are_escaped_in_the_plan(tmp_path: Path) -> None:
    """Text, mermaid and JSON plans carry no raw escape, override or markup of a name."""
    plan = _manager_named_plan(tmp_path)
    out = io.StringIO()
    render_plan(plan, Console(file=out, width=200, force_terminal=True))
    text = out.getvalue()
    assert "esx-02\\x1b[2J[bold]x\\u202e" in text
    assert "\x1b[2J" not in text and "\u202e" not in text
    mermaid = plan_to_mermaid(plan)
    assert "\x1b" not in mermaid and "\u202e" not in mermaid
    document = json.dumps(plan_to_json(plan))
    assert "\x1b" not in document and "\u202e" not in document
    assert MANAGER_NAME in json.loads(document)["phases"][3]["groups"][0]["units"]


def test_manager_names_are_escaped_in_run_output() -> None:
    """Progress lines and the progress bar's label show a name's escapes as text."""
    out = io.StringIO()
    display = Display(Console(file=out, width=200))
    display.notice(Notice("unit_failed", f"{MANAGER_NAME}: upgrade failed", MANAGER_NAME))
    display.line(f"resuming {MANAGER_NAME}")
    text = out.getvalue()
    assert "\x1b[2J" not in text and "\u202e" not in text
    assert text.count("esx-02\\x1b[2J[bold]x\\u202e") == 2


def test_manager_text_is_escaped_in_stderr_logs(capsys: pytest.CaptureFixture[str]) -> None:
    """An adapter's warning carrying a manager's error text shows its escapes as text."""
    import structlog

    from upgrade.cli.main import _log_to_stderr

    _log_to_stderr()
    structlog.get_logger().warning("nsxt.checks_unavailable", error=MANAGER_NAME)
    err = capsys.readouterr().err
    assert "x1b[2J[bold]x" in err  # shown, as an escape (the renderer may quote it again)
    assert "\x1b[2J" not in err and "\u202e" not in err


def test_values_in_a_file_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory grows with the values a file writes out: past the cap, refused where it is."""
    from upgrade.inputs import yamlread
    monkeypatch.setattr(yamlread, "MAX_NODES", 10)
    path = tmp_path / "dense.yaml"
    # the mapping, its keys, the lists and their items: 11 values
    path.write_text("a: [1, 2, 3, 4]\nb: [5, 6]\n", encoding="utf-8")
    with pytest.raises(FileError) as caught:
        load_yaml(path)
    assert (caught.value.line, caught.value.column) == (2, 8)
    assert caught.value.reason.startswith("more than 10 values in one file")
    path.write_text("a: [1, 2, 3, 4]\nb: [5]\n", encoding="utf-8")  # 10 values
    assert load_yaml(path).value is not None


def test_positions_of_values_and_keys(tmp_path: Path) -> None:
    """Every value and every mapping key keeps its 1-based line and column (kept as ints,
    made into Where on demand): block and flow mappings, lists, and a key an alias gives,
    which is where its anchor's node was written."""
    path = tmp_path / "positions.yaml"
    path.write_text("a: &k x\nhosts:\n  - {id: h-1, vms: [v-1, v-2]}\n  - id: h-2\n"
                    "*k : 3\n", encoding="utf-8")
    root = load_yaml(path)
    assert isinstance(root.value, dict) and root.key_where is not None
    assert {k: (w.line, w.column) for k, w in root.key_where.items()} == {
        "a": (1, 1), "hosts": (2, 1), "x": (1, 4)}
    hosts = root.value["hosts"]
    assert (hosts.where.line, hosts.where.column) == (3, 3)
    assert isinstance(hosts.value, list)
    first, second = hosts.value
    assert (first.where.line, first.where.column) == (3, 5)
    assert first.key_where is not None and first.key_where["vms"].column == 15
    assert isinstance(first.value, dict)
    assert [(v.value, v.where.column) for v in first.value["vms"].value] == [  # type: ignore[union-attr]
        ("v-1", 21), ("v-2", 26)]
    assert second.key_where is not None and (second.key_where["id"].line,
                                             second.key_where["id"].column) == (4, 5)
    assert root.value["x"].value == 3 and root.value["x"].raw == "3"
    assert (root.value["x"].where.line, root.value["x"].where.column) == (5, 6)
