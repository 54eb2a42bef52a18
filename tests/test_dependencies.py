"""Every third-party import is declared in ``pyproject.toml``.

A module that imports a distribution the project does not declare works on a developer's
machine that happens to have it and fails on a user's fresh install. The rule checked here:

- ``upgrade/`` imports only what ``[project] dependencies`` declares; a subpackage named like
  an optional extra (``upgrade/fleet`` and the ``fleet`` extra) may also use that extra;
- ``tests/`` and ``benchmarks/`` may also use every optional extra (the test command
  installs ``.[test]``, which pulls the others in).

Imports are read with :mod:`ast` (also those inside functions), mapped to distributions
with :func:`importlib.metadata.packages_distributions`, and compared by normalised name.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: top-level names that are this project's own code, not distributions
LOCAL = {"upgrade", "tests", "benchmarks"}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The name of a requirement: ``"uvicorn[standard]>=0.29"`` → ``"uvicorn"``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot read requirement {requirement!r}"
    return normalise(match.group(1))


def imported_modules(source: str) -> Iterator[tuple[str, int]]:
    """The top-level module names ``source`` imports (absolute imports only), with lines."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.partition(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], node.lineno


def undeclared(files: Iterable[Path], allowed: Mapping[Path, set[str]],
               distributions: Mapping[str, list[str]], local: set[str]) -> list[str]:
    """One message per import in ``files`` whose distribution ``allowed`` does not grant.

    ``allowed`` maps a file to the normalised distribution names it may import;
    ``distributions`` maps a top-level module to the distributions providing it.
    """
    problems = []
    for path in files:
        for module, line in imported_modules(path.read_text(encoding="utf-8")):
            if module in sys.stdlib_module_names or module in local or module == "__future__":
                continue
            providers = {normalise(d) for d in distributions.get(module, [])}
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"
            if not providers:
                problems.append(f"{where}: imports {module!r}, which no installed "
                                "distribution provides")
            elif not providers & allowed[path]:
                problems.append(f"{where}: imports {module!r} from "
                                f"{'/'.join(sorted(providers))}, not declared for this file "
                                "in pyproject.toml")
    return problems


def declared() -> tuple[set[str], dict[str, set[str]]]:
    """The project's dependencies and its optional extras, by normalised name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {requirement_name(r) for r in project["dependencies"]}
    extras = {}
    for extra, requirements in project.get("optional-dependencies", {}).items():
        names = set()
        for requirement in requirements:
            # "nsxt-upgrade[fleet]" inside an extra pulls another extra in
            if requirement_name(requirement) == "nsxt-upgrade":
                continue
            names.add(requirement_name(requirement))
        extras[extra] = names
    return base, extras


def local_modules() -> set[str]:
    """Our own importable names: packages, and modules the tests import by bare name."""
    names = set(LOCAL)
    for folder in ("tests", "benchmarks"):
        names |= {p.stem for p in (ROOT / folder).glob("*.py")}
    return names


def allowances() -> dict[Path, set[str]]:
    """Which distributions each Python file of the project may import."""
    base, extras = declared()
    everything = base.union(*extras.values())
    allowed: dict[Path, set[str]] = {}
    for path in sorted((ROOT / "upgrade").rglob("*.py")):
        parts = path.relative_to(ROOT / "upgrade").parts
        allowed[path] = base | (extras.get(parts[0], set()) if len(parts) > 1 else set())
    for folder in ("tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            allowed[path] = everything
    return allowed


def test_every_third_party_import_is_declared() -> None:
    """No module of the package, the tests or the benchmarks imports an undeclared
    distribution (the check that would have caught ``cryptography`` in the emulator)."""
    allowed = allowances()
    assert len(allowed) > 50, "the walk found too few files to be checking anything"
    assert undeclared(allowed, allowed, packages_distributions(), local_modules()) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("import yaml\n", []),
    ("import cryptography.x509\n", ["imports 'cryptography' from cryptography"]),
    ("def f():\n    from cryptography import x509\n", ["probe.py:2: imports 'cryptography'"]),
    ("from . import sibling\nimport json\nimport upgrade.core.plan\n", []),
    ("import surely_no_such_distribution\n", ["which no installed distribution provides"]),
])
def test_the_check_catches_an_undeclared_import(tmp_path: Path, source: str,
                                                  expected: list[str]) -> None:
    """The checker itself: an import of an installed but undeclared distribution (also one
    hidden inside a function) and of something not installed at all are reported."""
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    found = undeclared([probe], {probe: {"pyyaml"}}, packages_distributions(), {"upgrade"})
    assert len(found) == len(expected), found
    for message, fragment in zip(found, expected, strict=True):
        assert fragment in message
