"""``dump_inventory``: the state dir's copy of an inventory, the same text whichever
emitter writes it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from tests.sim_helpers import make_inventory
from upgrade.core.model import Drs, Finding, Severity
from upgrade.inputs.inventory import dump_inventory, load_inventory


def _pyyaml_text(text: str) -> str:
    """What PyYAML's own (pure-Python) emitter writes for the data ``text`` holds."""
    return yaml.dump(yaml.safe_load(text), Dumper=yaml.SafeDumper, sort_keys=False,
                     default_flow_style=None)


def test_an_ascii_inventory_reads_as_pyyaml_writes_it(tmp_path: Path) -> None:
    """Printable ASCII (libyaml's emitter) gives byte for byte PyYAML's own text,
    with quoting, long messages and YAML 1.1 words, and loads back equal."""
    long = "a message long enough to be folded: " + "word 'quoted' #hash " * 8
    inventory = replace(make_inventory([(Drs.MANUAL, ((True, False), ()))]), warnings=(
        Finding("yes", Severity.WARNING, long, "esx-0-0"),
        Finding("off", Severity.WARNING, "  leading: and trailing  ")))
    text = dump_inventory(inventory)
    assert text == _pyyaml_text(text)
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    assert load_inventory(path, discovered=True) == inventory


def test_names_a_manager_reported_keep_pyyaml_escapes(tmp_path: Path) -> None:
    """Names with control characters or other scripts are written by PyYAML's emitter,
    escaped as before, and load back equal."""
    inventory = replace(make_inventory(), manager="mgr\x1b[31m-é-\u202e" + "x" * 90)
    text = dump_inventory(inventory)
    assert text == _pyyaml_text(text)
    assert "\\e" in text
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    assert load_inventory(path, discovered=True).manager == inventory.manager
