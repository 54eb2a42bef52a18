"""Typed, position-aware access to YAML files (read by :mod:`upgrade.inputs.yamlread`).

Files are read with YAML 1.2 scalar rules, duplicate keys refused and every
node's line and column kept, so that validation errors read
``FILE:LINE:COL: what is wrong``; :mod:`upgrade.inputs.yamlread` also holds the limits
that keep a hostile file (alias bombs, recursive aliases, binary garbage,
terminal escapes) from costing more than a refusal.

:class:`MapReader` is the typed reader the playbook and inventory loaders use:
unknown keys, wrong types, missing keys and unquoted versions all become
:class:`~upgrade.errors.FileError` with the position of the offending value.
"""

from __future__ import annotations

import builtins
import difflib
import re
from collections.abc import Iterable, Iterator

from upgrade.core.versions import Version
from upgrade.inputs.yamlread import Node, Where, load_yaml

__all__ = [
    "ID_PATTERN", "MapReader", "Node", "Where", "as_id", "as_int", "as_str", "as_version",
    "entries", "load_yaml",
]

#: what an id from a file may look like: unit, VM, cluster, edge cluster, host group and
#: finding ids.  1-255 characters: letters and digits of any script and ``. _ - : @ ( ) + /``,
#: single spaces between words, starting with a letter or digit.  FQDNs, IPv4 and IPv6
#: addresses and vCenter VM names with spaces fit; quotes, brackets, ``*``, ``$``, ``;``,
#: backslashes and control characters (terminal escapes) do not.
ID_PATTERN = re.compile(r"(?=.{1,255}\Z)[^\W_][\w.:@()+/-]*(?: [\w.:@()+/-]+)*")
#: the playbook's name names its default state directory, so it is one plain path segment
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ID_RULE = ("letters, digits and . _ - : @ ( ) + /, single spaces between words, "
           "starting with a letter or digit, at most 255 characters")
_INT64_MAX = 2**63 - 1
NAME_RULE = "letters, digits, . _ and -, starting with a letter or digit, at most 128 characters"


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
        for key in self.items:
            if key not in known:
                where = node.key_at(key)
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) \
                    if len(key) <= 100 else []
                hint = f"; did you mean {close[0]!r}?" if close else ""
                allowed = ", ".join(known)
                raise where.error(
                    f"unknown key {_quoted(key)} in {what}{hint} (known keys: {allowed})")

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

    def id(self, key: builtins.str) -> builtins.str:
        """A required id (see :data:`ID_PATTERN`)."""
        return as_id(self.require(key), key)

    def opt_id(self, key: builtins.str) -> builtins.str | None:
        """An optional id (absent or null: None)."""
        node = self.items.get(key)
        if node is None or node.value is None:
            return None
        return as_id(node, key)

    def id_list(self, key: builtins.str) -> builtins.list[tuple[builtins.str, Where]]:
        """A list of ids with their positions."""
        return [(as_id(item, key), item.where) for item in self.list(key)]

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
            shown = _shown(node.raw) if node.raw is not None else _quoted(str(node.value))
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
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5) \
                if len(value) <= 100 else []
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise node.where.error(
                f"{key} must be one of {', '.join(choices)}, found {_quoted(value)}{hint}"
            )
        return value

    def map(
        self, key: builtins.str, known: Iterable[builtins.str], required: builtins.bool = False
    ) -> MapReader:
        """A nested mapping (an absent or null one reads as empty)."""
        node = self.require(key) if required else self.items.get(key)
        if node is None or node.value is None:
            empty = Node.at({}, self.at(key), {})
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
            f'{what} must be a string, found {_shown(node.raw)}; quote it: "{_shown(node.raw)}"'
        )
    raise node.where.error(f"{what} must be a string, found {node.kind}")


def as_id(node: Node, what: str, pattern: re.Pattern[str] = ID_PATTERN,
          rule: str = ID_RULE) -> str:
    """The node's string, which must be an id (:data:`ID_PATTERN`, or ``pattern``)."""
    text = as_str(node, what)
    if pattern.fullmatch(text) is None:
        raise node.where.error(f"{what} {_quoted(text)} is not a valid id: use {rule}")
    return text


def as_version(node: Node, what: str) -> Version:
    """A quoted version string, parsed."""
    if isinstance(node.value, int | float) and not isinstance(node.value, bool):
        raw = _shown(node.raw or str(node.value))
        raise node.where.error(
            f"{what} is an unquoted number ({raw}), which YAML reads as "
            f"{_shown(repr(node.value))}; "
            f'quote versions: "{raw}"'
        )
    text = as_str(node, what)
    if len(text) > 100:
        raise node.where.error(f"{what}: {_quoted(text)} is not a version: it is "
                               f"{len(text)} characters long")
    try:
        return Version.parse(text)
    except ValueError as exc:
        raise node.where.error(f"{what}: {exc}") from None


def as_int(node: Node, what: str, low: int | None = None, high: int | None = None) -> int:
    """An integer node within ``[low, high]``."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int):
        raise node.where.error(
            f"{what} must be a whole number, found {_shown(node.raw) if node.raw else node.kind}")
    # whatever the field allows, a value must fit the journal's 64-bit integers
    high = _INT64_MAX if high is None else min(high, _INT64_MAX)
    low = -_INT64_MAX if low is None else max(low, -_INT64_MAX)
    shown = _shown(node.raw or str(value))
    if value < low:
        raise node.where.error(f"{what} must be at least {low}, found {shown}")
    if value > high:
        raise node.where.error(f"{what} must be at most {high}, found {shown}")
    return value


def _quoted(text: str) -> str:
    """A string from a file as a message shows it: quoted, and cut when long."""
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


def _shown(raw: str) -> str:
    """A number as written, or its length when it is too long for a message."""
    return raw if len(raw) <= 30 else f"a number of {len(raw)} characters"


def entries(nodes: list[Node], known: Iterable[str], what: str) -> Iterator[MapReader]:
    """Read every list item as a mapping with ``known`` keys."""
    known = tuple(known)
    for node in nodes:
        yield MapReader(node, known, what)
