"""The engine's parts (issue 24 item 2): each module small, and none reaching into another
part's private names.  Read from the source with :mod:`ast`, so a change that breaks the
rule fails here, naming the line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import upgrade.core.engine as package
from tests.sim_helpers import Case, make_inventory, make_playbook
from upgrade.core.engine.core import Engine
from upgrade.core.engine.snapshot import Snapshotted
from upgrade.core.model import Drs

ENGINE = Path(package.__file__).resolve().parent
MODULES = sorted(ENGINE.glob("*.py"))
#: the largest module of the engine, in lines (issue 24: under 250)
MOST_LINES = 249
#: names a module of the engine binds to itself (the receiver of a method)
OWN = frozenset({"self", "cls"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _violations(source: str) -> list[str]:
    """Each use of another module's or object's private name in ``source``: a private name
    imported from a module, or read or set on anything but ``self``/``cls``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.lineno}: imports {a.name} from {node.module}"
                      for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr) and not (
                isinstance(node.value, ast.Name) and node.value.id in OWN):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_no_part_uses_another_parts_private_names(module: Path) -> None:
    assert _violations(module.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_each_module_of_the_engine_is_under_250_lines(module: Path) -> None:
    assert len(module.read_text(encoding="utf-8").splitlines()) <= MOST_LINES


def test_the_check_finds_a_private_name_used_across_parts() -> None:
    """The check can fail: each way of reaching into another part is found."""
    source = ("from upgrade.core.engine.state import _helper\n"
              "def f(engine):\n"
              "    engine.ledger._failed_in[0] = 1\n"
              "    return self._own, cls._also, x.__class__\n")
    assert _violations(source) == ["1: imports _helper from upgrade.core.engine.state",
                                   "3: engine.ledger._failed_in"]


def test_the_engine_holds_its_parts_and_no_base_class() -> None:
    """The engine is built by composition: its only base is ``object``; the parts a snapshot
    keeps each name their changing fields."""
    assert Engine.__bases__ == (object,)
    case = Case(make_inventory([(Drs.MANUAL, ((True,), (True,)))], edge_clusters=(1,),
                               controllers=1), make_playbook())
    engine: Snapshotted = Engine(case.plan, case.inventory)
    parts = engine.parts()
    assert set(parts) == {"run", "capacity", "canary", "budget"}
    for part in parts.values():
        assert all(hasattr(part, field) for field in type(part).STATE)
