"""YAML 1.2 loading that remembers where every value came from.

PyYAML implements YAML 1.1, where ``off``, ``yes`` and ``no`` are booleans and
``2.30`` silently becomes the float ``2.3``.  We let PyYAML parse and compose
the node graph, then resolve plain scalars ourselves with the YAML 1.2 core
schema, reject duplicate keys, and keep every node's line and column so that
validation errors read ``FILE:LINE:COL: what is wrong``.

:class:`MapReader` is the typed reader the playbook and inventory loaders use:
unknown keys, wrong types, missing keys and unquoted versions all become
:class:`~upgrade.errors.FileError` with the position of the offending value.
"""

from __future__ import annotations

import builtins
import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from upgrade.errors import FileError
from upgrade.versions import Version

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)

Scalar = str | int | float | bool | None
#: libyaml's composer when PyYAML was built with it (about 13x faster on large inventories);
#: both report the same marks, and scalars are resolved by us either way
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Where:
    """A position in a file, 1-based, for error messages."""

    path: Path
    line: int
    column: int

    def error(self, message: str) -> FileError:
        """A :class:`FileError` at this position."""
        return FileError(self.path, self.line, self.column, message)


@dataclass(frozen=True, slots=True)
class Node:
    """A resolved YAML node: ``value`` is a scalar, ``list[Node]`` or ``dict[str, Node]``."""

    value: Scalar | list[Node] | dict[str, Node]
    where: Where
    #: the scalar exactly as written (plain scalars only), for precise messages
    raw: str | None = None
    #: where each mapping key was written (mappings only)
    key_where: dict[str, Where] | None = None

    @property
    def kind(self) -> str:
        """A word for the node's type, for error messages."""
        return _type_word(self.value)


def _type_word(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    return "a string"


def _where(path: Path, mark: yaml.Mark | None) -> Where:
    if mark is None:
        return Where(path, 1, 1)
    return Where(path, mark.line + 1, mark.column + 1)


def _resolve_plain(text: str) -> Scalar:
    if _NULL.match(text):
        return None
    if _BOOL.match(text):
        return text.lower() == "true"
    if _INT.match(text):
        return int(text, 0) if text.startswith(("0o", "0x")) else int(text)
    if _FLOAT.match(text):
        return float(text.replace(".inf", "inf").replace(".nan", "nan").lower())
    return text


def _convert(node: yaml.Node, path: Path) -> Node:
    where = _where(path, node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        if node.style:  # quoted or block scalar: always a string (plain is None or '')
            return Node(str(node.value), where)
        return Node(_resolve_plain(str(node.value)), where, raw=str(node.value))
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(item, path) for item in node.value], where)
    if isinstance(node, yaml.MappingNode):
        items: dict[str, Node] = {}
        keys: dict[str, Where] = {}
        for key_node, value_node in node.value:
            key_where = _where(path, key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                raise key_where.error("mapping keys must be plain words")
            key = str(key_node.value)
            if key in items:
                first = keys[key]
                raise key_where.error(f"duplicate key {key!r} (first given on line {first.line})")
            items[key] = _convert(value_node, path)
            keys[key] = key_where
        return Node(items, where, key_where=keys)
    raise where.error(f"unsupported YAML node {node.tag}")


def load_yaml(path: Path) -> Node:
    """Read ``path`` as one YAML 1.2 document; every problem is a :class:`FileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileError(path, 1, 1, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(path, 1, 1, f"cannot read file: {exc}") from None
    try:
        composed = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        raise _where(path, exc.problem_mark or exc.context_mark).error(
            f"YAML syntax error: {_syntax_problem(exc)}"
        ) from None
    except yaml.YAMLError as exc:
        raise FileError(path, 1, 1, f"YAML error: {_one_line(str(exc))}") from None
    if composed is None:
        raise FileError(path, 1, 1, "file is empty: expected a mapping of settings")
    return _convert(composed, path)


def _syntax_problem(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem in one line, with where the construct it was reading began."""
    problem = _one_line(exc.problem or "")
    context = _one_line(exc.context or "")
    if not problem:
        return context or "invalid YAML"
    if not context:
        return problem
    if problem.startswith("but "):  # "expected a single document ..., but found another"
        return f"{context}, {problem}"
    mark = exc.context_mark
    if mark is not None and mark is not exc.problem_mark:
        context += f" that began on line {mark.line + 1}, column {mark.column + 1}"
    return f"{problem} ({context})"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class MapReader:
    """Typed, position-aware access to one YAML mapping.

    Construct with the keys the mapping may hold; any other key is an error
    that suggests the nearest known one.
    """

    def __init__(self, node: Node, known: Iterable[str], what: str = "this mapping") -> None:
        if not isinstance(node.value, dict):
            raise node.where.error(f"expected a mapping for {what}, found {node.kind}")
        self.node = node
        self.items: dict[str, Node] = node.value
        known = tuple(known)
        assert node.key_where is not None
        for key, where in node.key_where.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                allowed = ", ".join(known)
                raise where.error(f"unknown key {key!r} in {what}{hint} (known keys: {allowed})")

    @property
    def where(self) -> Where:
        """Where the mapping starts."""
        return self.node.where

    def has(self, key: str) -> bool:
        """True when the key was given (even as null)."""
        return key in self.items

    def at(self, key: str) -> Where:
        """Where ``key``'s value is, or the mapping itself when absent."""
        return self.items[key].where if key in self.items else self.node.where

    def get(self, key: str) -> Node | None:
        """The raw node, or None."""
        return self.items.get(key)

    def require(self, key: str) -> Node:
        """The raw node; an error naming the key when it is missing."""
        node = self.items.get(key)
        if node is None:
            raise self.node.where.error(f"missing required key {key!r}")
        return node

    def str(
        self,
        key: builtins.str,
        default: builtins.str | None = None,
        required: builtins.bool = False,
    ) -> builtins.str | None:
        """A string value (quoted or plain text)."""
        node = self.require(key) if required else self.items.get(key)
        if node is None or (node.value is None and not required):
            return default
        return as_str(node, key)

    def req_str(self, key: builtins.str) -> builtins.str:
        """A string value that must be present."""
        return as_str(self.require(key), key)

    def version(self, key: builtins.str, required: builtins.bool = False) -> Version | None:
        """A version string; unquoted numbers are rejected so ``2.30`` never becomes 2.3."""
        node = self.require(key) if required else self.items.get(key)
        if node is None:
            return None
        return as_version(node, key)

    def int(
        self,
        key: builtins.str,
        default: builtins.int,
        low: builtins.int | None = None,
        high: builtins.int | None = None,
    ) -> builtins.int:
        """An integer within ``[low, high]``."""
        node = self.items.get(key)
        if node is None or node.value is None:
            return default
        return as_int(node, key, low, high)

    def bool(self, key: builtins.str, default: builtins.bool) -> builtins.bool:
        """``true`` or ``false`` (YAML 1.2: ``yes``/``on`` are not booleans)."""
        node = self.items.get(key)
        if node is None or node.value is None:
            return default
        if not isinstance(node.value, bool):
            shown = node.raw if node.raw is not None else repr(node.value)
            raise node.where.error(f"{key} must be true or false, found {shown}")
        return node.value

    def choice(
        self, key: builtins.str, choices: tuple[builtins.str, ...], default: builtins.str
    ) -> builtins.str:
        """One of ``choices``."""
        node = self.items.get(key)
        if node is None or node.value is None:
            return default
        if not isinstance(node.value, str):
            shown = node.raw if node.raw is not None else node.kind
            raise node.where.error(f"{key} must be one of {', '.join(choices)}, found {shown}")
        value = node.value
        if value not in choices:
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise node.where.error(
                f"{key} must be one of {', '.join(choices)}, found {value!r}{hint}"
            )
        return value

    def map(
        self, key: builtins.str, known: Iterable[builtins.str], required: builtins.bool = False
    ) -> MapReader:
        """A nested mapping (an absent or null one reads as empty)."""
        node = self.require(key) if required else self.items.get(key)
        if node is None or node.value is None:
            empty = Node({}, self.at(key), key_where={})
            return MapReader(empty, known, key)
        return MapReader(node, known, key)

    def list(self, key: builtins.str, required: builtins.bool = False) -> builtins.list[Node]:
        """A list of nodes (an absent or null one reads as empty)."""
        node = self.require(key) if required else self.items.get(key)
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, list):
            raise node.where.error(f"{key} must be a list, found {node.kind}")
        return node.value

    def str_list(self, key: builtins.str) -> builtins.list[tuple[builtins.str, Where]]:
        """A list of strings with their positions."""
        return [(as_str(item, key), item.where) for item in self.list(key)]


def as_str(node: Node, what: str) -> str:
    """The node's string; numbers and booleans are errors (quote them)."""
    if isinstance(node.value, str):
        return node.value
    if node.raw is not None and isinstance(node.value, int | float | bool) and node.raw:
        raise node.where.error(
            f'{what} must be a string, found {node.raw}; quote it: "{node.raw}"'
        )
    raise node.where.error(f"{what} must be a string, found {node.kind}")


def as_version(node: Node, what: str) -> Version:
    """A quoted version string, parsed."""
    if isinstance(node.value, int | float) and not isinstance(node.value, bool):
        raw = node.raw or str(node.value)
        raise node.where.error(
            f"{what} is an unquoted number ({raw}), which YAML reads as {node.value!r}; "
            f'quote versions: "{raw}"'
        )
    text = as_str(node, what)
    try:
        return Version.parse(text)
    except ValueError as exc:
        raise node.where.error(f"{what}: {exc}") from None


def as_int(node: Node, what: str, low: int | None = None, high: int | None = None) -> int:
    """An integer node within ``[low, high]``."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int):
        raise node.where.error(f"{what} must be a whole number, found {node.raw or node.kind}")
    if low is not None and value < low:
        raise node.where.error(f"{what} must be at least {low}, found {value}")
    if high is not None and value > high:
        raise node.where.error(f"{what} must be at most {high}, found {value}")
    return value


def entries(nodes: list[Node], known: Iterable[str], what: str) -> Iterator[MapReader]:
    """Read every list item as a mapping with ``known`` keys."""
    known = tuple(known)
    for node in nodes:
        yield MapReader(node, known, what)
