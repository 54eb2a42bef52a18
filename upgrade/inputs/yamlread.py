"""Reading a YAML file into position-aware nodes, safely, whatever the file holds.

The typed readers in :mod:`upgrade.inputs.yamlio` work on the :class:`Node` graph this
module builds.  Files come from operators and, sometimes, from whoever could
write to their directory, so every limit here is checked while reading, before
any value is used, and every refusal is one :class:`~upgrade.errors.FileError`
``FILE:LINE:COL: what is wrong``:

- the file is a regular file of at most
  :data:`~upgrade.inputs.yamltext.MAX_FILE_BYTES` (a device or a
  multi-GB file is refused before it is read), UTF-8 text (a leading BOM is
  fine), without NUL bytes or other characters YAML does not allow;
- one document of at most :data:`MAX_NODES` values, nested at most :data:`MAX_DEPTH`
  levels;
- anchors and aliases work, but an alias inside the node it names (``&a
  [*a]``) is refused, and aliases may add at most :data:`MAX_ALIAS_NODES` nodes
  in all, so a "billion laughs" file is refused at its first alias over the
  budget instead of expanding;
- strings hold no control characters (C0/C1, and the bidirectional overrides
  that make text read other than it is): a terminal escape in a file never
  reaches a terminal.  Files this program wrote itself from names a real
  manager reported are read with ``strict_text=False``: those names are
  escaped when shown (:func:`upgrade.render.printable`).

PyYAML implements YAML 1.1, where ``off``, ``yes`` and ``no`` are booleans and
``2.30`` silently becomes the float ``2.3``.  We take libyaml's *events* (its
parser, not its composer) and build the nodes ourselves, resolving plain
scalars with the YAML 1.2 core schema.  Building from events is what lets an
alias be named by its own line, and it costs less time and memory than
composing PyYAML's node graph and converting it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import yaml

from upgrade.errors import FileError
from upgrade.gcpause import collector_paused
from upgrade.inputs.yamltext import codepoint, read_text

#: how deeply mappings and lists may nest (the file formats need 6)
MAX_DEPTH = 64
#: how many nodes aliases may add to a document in all, counting what their anchors hold
MAX_ALIAS_NODES = 100_000
#: how many values (scalars, lists, mappings) a file may write out: a 100,000-host
#: inventory has about 710,000; memory and time grow with this count more than with bytes
MAX_NODES = 1_000_000

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
#: characters a string value may not hold: control characters (tab and newline are
#: fine: block scalars have them) and the bidirectional overrides and isolates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: the first characters of a plain scalar that may read as other than a string
_NOT_TEXT_START = frozenset("0123456789+-.~nNtTfF")
#: int() refuses longer decimal strings (CPython's limit on str -> int conversion)
_MAX_DIGITS = 4300

Scalar = str | int | float | bool | None
#: libyaml's parser when PyYAML was built with it; the pure-Python one reports the same
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


#: Where and Node are never changed once made, but are not ``frozen``: a frozen
#: dataclass sets each field through ``object.__setattr__``, four times slower, and a
#: 100,000-host inventory makes 1.4 million of them (issue 23 item 4). ``unsafe_hash``
#: keeps the frozen ones' equality and hash.
@dataclass(slots=True, unsafe_hash=True)
class Where:
    """A position in a file, 1-based, for error messages."""

    path: Path
    line: int
    column: int

    def error(self, message: str) -> FileError:
        """A :class:`FileError` at this position."""
        return FileError(self.path, self.line, self.column, message)


@dataclass(slots=True, unsafe_hash=True)
class Node:
    """A resolved YAML node: ``value`` is a scalar, ``list[Node]`` or ``dict[str, Node]``.

    Nodes an alias names are shared, not copied: the graph is a DAG whose
    expanded size :func:`load_yaml` has bounded.
    """

    value: Scalar | list[Node] | dict[str, Node]
    where: Where
    #: the scalar exactly as written (plain scalars only), for precise messages
    raw: str | None = None
    #: where each mapping key was written (mappings only)
    key_where: dict[str, Where] | None = None

    @property
    def kind(self) -> str:
        """A word for the node's type, for error messages."""
        return type_word(self.value)


def type_word(value: object) -> str:
    """A word for a value's type, for error messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def load_yaml(path: Path, strict_text: bool = True) -> Node:
    """Read ``path`` as one YAML 1.2 document; every problem is a :class:`FileError`.

    ``strict_text=False`` lets strings hold control characters (for files this
    program wrote from what a manager reported); every other limit still holds.
    """
    text = read_text(path)
    root = _Builder(path, strict_text).build(text)
    if root is None:
        raise FileError(path, 1, 1, "file is empty: expected a mapping of settings")
    return root


class _Mark(Protocol):
    """A position libyaml or PyYAML reports, 0-based."""

    @property
    def line(self) -> int: ...

    @property
    def column(self) -> int: ...


def _where(path: Path, mark: _Mark | None) -> Where:
    if mark is None:
        return Where(path, 1, 1)
    return Where(path, mark.line + 1, mark.column + 1)


def resolve_plain(text: str) -> Scalar:
    """A plain scalar's value under the YAML 1.2 core schema (a number too long for
    Python's ``int()`` raises ``ValueError``)."""
    if text and text[0] not in _NOT_TEXT_START:
        return text  # most plain scalars are names: no pattern can match them
    if _NULL.match(text):
        return None
    if _BOOL.match(text):
        return text.lower() == "true"
    if _INT.match(text):
        return int(text, 0) if text.startswith(("0o", "0x")) else int(text)
    if _FLOAT.match(text):
        return float(text.replace(".inf", "inf").replace(".nan", "nan").lower())
    return text


@dataclass(slots=True)
class _Open:
    """A mapping or list being read: what it holds so far."""

    where: Where
    anchor: str | None
    items: list[Node] | dict[str, Node]
    keys: dict[str, Where] | None
    #: nodes in it, counting what aliases in it expand to
    size: int = 1
    #: the key read, waiting for its value (mappings)
    key: Node | None = None


class _Builder:
    """Turns libyaml's event stream into a :class:`Node` graph, checking every limit."""

    def __init__(self, path: Path, strict_text: bool) -> None:
        self.path = path
        self.strict_text = strict_text
        #: anchor -> (its node, its expanded size); None while its node is still open
        self.anchors: dict[str, tuple[Node, int] | None] = {}
        self.alias_nodes = 0
        self.nodes = 0
        self.stack: list[_Open] = []

    def build(self, text: str) -> Node | None:
        loader = _LOADER(text)
        try:
            with collector_paused():  # the graph holds no cycles: aliases share nodes
                return self._events(loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            hint = ""
            if mark is not None and text[mark.index:mark.index + 1] == "\t":
                hint = "; a tab cannot indent YAML: use spaces"
            raise _where(self.path, mark).error(
                f"YAML syntax error: {_syntax_problem(exc)}{hint}"
            ) from None
        except yaml.YAMLError as exc:
            raise FileError(self.path, 1, 1, f"YAML error: {_one_line(str(exc))}") from None
        finally:
            loader.dispose()

    def _events(self, loader: yaml.SafeLoader) -> Node | None:
        root: Node | None = None
        documents = 0
        next_event = cast(Callable[[], yaml.Event | None], loader.get_event)  # untyped stubs
        stack = self.stack
        scalar_event = yaml.ScalarEvent
        while (event := next_event()) is not None:
            # most events are scalars: the exact type test spares them isinstance()
            if type(event) is scalar_event or isinstance(event, yaml.ScalarEvent):
                node, size = self._scalar(event), 1
                if event.anchor:
                    self.anchors[event.anchor] = (node, 1)
            elif isinstance(event, yaml.AliasEvent):
                node, size = self._alias(event)
            elif isinstance(event, yaml.CollectionStartEvent):
                self._open(event, isinstance(event, yaml.MappingStartEvent))
                continue
            elif isinstance(event, yaml.CollectionEndEvent):
                node, size = self._close()
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _where(self.path, event.start_mark).error(
                        "YAML syntax error: expected a single document in the stream, "
                        "but found another document")
                continue
            else:  # stream start and end, document end
                continue
            if stack:
                self._add(node, size)
            else:
                root = node
        return root

    def _scalar(self, event: yaml.ScalarEvent) -> Node:
        mark = event.start_mark
        where = Where(self.path, mark.line + 1, mark.column + 1) if mark is not None \
            else Where(self.path, 1, 1)
        self._count(where)
        text = str(event.value)
        # printable ASCII holds no control character; anything else is searched
        if self.strict_text and not (text.isascii() and text.isprintable()):
            bad = _CONTROL.search(text)
            if bad is not None:
                raise where.error(
                    f"control character {codepoint(bad.group())} in a string: names and "
                    "texts may not hold terminal escapes, bidirectional overrides or other "
                    "control characters")
        if event.style:  # quoted or block scalar: always a string (plain is None or '')
            return Node(text, where)
        try:
            return Node(resolve_plain(text), where, raw=text)
        except ValueError:
            raise where.error(f"a number of {len(text)} digits is too large; no value here "
                              "needs more than a few") from None

    def _alias(self, event: yaml.AliasEvent) -> tuple[Node, int]:
        where = _where(self.path, event.start_mark)
        name = str(event.anchor)
        if name not in self.anchors:
            raise where.error(f"alias *{name} names no anchor: define &{name} before it")
        found = self.anchors[name]
        if found is None:
            raise where.error(f"alias *{name} is inside the node &{name} names: a value "
                              "cannot contain itself")
        node, size = found
        self.alias_nodes += size
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise where.error(
                f"aliases expand to more than {MAX_ALIAS_NODES} nodes (*{name} alone adds "
                f"{size}): refused as an alias bomb; write the values out instead")
        return node, size

    def _count(self, where: Where) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise where.error(f"more than {MAX_NODES} values in one file (a 100,000-host "
                              "inventory has about 710,000): split it or trim it")

    def _open(self, event: yaml.CollectionStartEvent, mapping: bool) -> None:
        where = _where(self.path, event.start_mark)
        self._count(where)
        if len(self.stack) >= MAX_DEPTH:
            raise where.error(f"nested more than {MAX_DEPTH} levels deep; no file format "
                              "here needs more than a few")
        anchor = str(event.anchor) if event.anchor else None
        if anchor is not None:
            self.anchors[anchor] = None  # open: an alias to it now would be recursive
        self.stack.append(_Open(where, anchor, {} if mapping else [], {} if mapping else None))

    def _close(self) -> tuple[Node, int]:
        frame = self.stack.pop()
        node = Node(frame.items, frame.where, key_where=frame.keys)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (node, frame.size)
        return node, frame.size

    def _add(self, node: Node, size: int) -> None:
        frame = self.stack[-1]
        frame.size += size
        if isinstance(frame.items, list):
            frame.items.append(node)
            return
        assert frame.keys is not None
        if frame.key is None:
            if isinstance(node.value, list | dict):
                raise node.where.error("mapping keys must be plain words")
            frame.key = node
            return
        key_node, frame.key = frame.key, None
        key = str(key_node.raw if key_node.raw is not None else key_node.value)
        if key in frame.items:
            first = frame.keys[key]
            raise key_node.where.error(
                f"duplicate key {key!r} (first given on line {first.line})")
        frame.items[key] = node
        frame.keys[key] = key_node.where


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
