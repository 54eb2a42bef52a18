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
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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


#: Where is never changed once made, but is not ``frozen``: a frozen dataclass sets each
#: field through ``object.__setattr__``, four times slower. ``unsafe_hash`` keeps the
#: frozen one's equality and hash.
@dataclass(slots=True, unsafe_hash=True)
class Where:
    """A position in a file, 1-based, for error messages."""

    path: Path
    line: int
    column: int

    def error(self, message: str) -> FileError:
        """A :class:`FileError` at this position."""
        return FileError(self.path, self.line, self.column, message)


class Node:
    """A resolved YAML node: ``value`` is a scalar, ``list[Node]`` or ``dict[str, Node]``.

    Nodes an alias names are shared, not copied: the graph is a DAG whose
    expanded size :func:`load_yaml` has bounded.

    A 100,000-host inventory is some 700,000 nodes that live until the inventory is
    validated (issue 23 item 4), so a node keeps its position as two ints and its
    mapping keys' positions as one flat tuple: :attr:`where` and :attr:`key_where` make
    the :class:`Where` objects when a message or a caller asks for them. Nodes are never
    changed once the reader made them.
    """

    __slots__ = ("_column", "_keys", "_line", "_path", "raw", "value")

    def __init__(self, value: Scalar | list[Node] | dict[str, Node], path: Path, line: int,
                 column: int, raw: str | None = None,
                 keys: tuple[int, ...] | None = None) -> None:
        self.value = value
        #: the scalar exactly as written (plain scalars only), for precise messages
        self.raw = raw
        self._path = path
        self._line = line
        self._column = column
        #: (line, column) of each mapping key in the mapping's order, flat (mappings only)
        self._keys = keys

    @classmethod
    def at(cls, value: Scalar | list[Node] | dict[str, Node], where: Where,
           key_where: dict[str, Where] | None = None) -> Node:
        """A node made outside the reader, at ``where`` (mappings: keys at ``key_where``,
        given in the mapping's order)."""
        keys = None if key_where is None else tuple(
            n for w in key_where.values() for n in (w.line, w.column))
        return cls(value, where.path, where.line, where.column, keys=keys)

    @property
    def where(self) -> Where:
        """Where the node starts."""
        return Where(self._path, self._line, self._column)

    @property
    def key_where(self) -> dict[str, Where] | None:
        """Where each mapping key was written (mappings only)."""
        keys = self._keys
        if keys is None or not isinstance(self.value, dict):
            return None
        path = self._path
        return {key: Where(path, keys[2 * i], keys[2 * i + 1])
                for i, key in enumerate(self.value)}

    def key_at(self, key: str) -> Where:
        """Where mapping key ``key`` was written (a key the mapping holds)."""
        assert isinstance(self.value, dict) and self._keys is not None
        i = list(self.value).index(key)
        return Where(self._path, self._keys[2 * i], self._keys[2 * i + 1])

    def __repr__(self) -> str:
        return f"Node({self.value!r}, {self._path}:{self._line}:{self._column})"

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


class _Builder:
    """Turns libyaml's event stream into a :class:`Node` graph, checking every limit.

    One loop over the events, with the collection being read in local variables: a
    100,000-host inventory is 900,000 events, and a method call or an object per event
    is most of what reading costs above libyaml's own parsing (issue 23 item 4).
    """

    def __init__(self, path: Path, strict_text: bool) -> None:
        self.path = path
        self.strict_text = strict_text

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
        path = self.path
        strict = self.strict_text
        max_nodes = MAX_NODES  # read at each load: a test lowers it
        # the events' attributes are read by exact type: typed as Any (untyped stubs)
        next_event: Callable[[], Any] = loader.get_event
        scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
        mapping_start, sequence_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
        mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
        document_start = yaml.DocumentStartEvent
        not_text_start = _NOT_TEXT_START
        intern = sys.intern
        #: anchor -> (its node, its expanded size); None while its node is still open
        anchors: dict[str, tuple[Node, int] | None] = {}
        alias_nodes = nodes = documents = 0
        root: Node | None = None
        #: the enclosing collections, each as the locals below
        stack: list[tuple[Node, list[Node] | dict[str, Node], list[int], int, str | None,
                          str | None, Node | None, int, int]] = []
        # the collection being read: its node, what it holds, its keys' positions
        # (mappings), its size counting what aliases in it expand to, its anchor; for a
        # mapping, the key read and waiting for its value (``key``, or ``key_node`` when
        # it is not a plain scalar written in place)
        opened: Node | None = None
        items: Any = []  # list[Node] | dict[str, Node], as ``mapping`` says
        mapping = False
        keys: list[int] = []
        size = 0
        anchor: str | None = None
        key: str | None = None
        key_node: Node | None = None
        key_line = key_column = 0
        # line numbers repeat (a flow mapping is one line): one int object per line
        last_line, line = -1, 0
        while (event := next_event()) is not None:
            kind = type(event)
            if kind is scalar_event:
                mark = event.start_mark
                if mark.line != last_line:
                    last_line = mark.line
                    line = last_line + 1
                column = mark.column + 1
                nodes += 1
                if nodes > max_nodes:
                    raise _too_many(path, line, column)
                text: str = event.value
                if strict and not (text.isascii() and text.isprintable()):
                    _check_text(text, path, line, column)
                if mapping and key is None and key_node is None and not event.anchor:
                    # a mapping key written in place: only its text and position are kept
                    if not event.style and (not text or text[0] in not_text_start):
                        _resolve(text, path, line, column)  # a too long number is refused
                    key, key_line, key_column = intern(text), line, column
                    continue
                if event.style:  # quoted or block scalar: always a string
                    node = Node(text, path, line, column)
                elif text and text[0] not in not_text_start:
                    node = Node(text, path, line, column, text)  # a name: nothing to resolve
                else:
                    node = Node(_resolve(text, path, line, column), path, line, column, text)
                if event.anchor:
                    anchors[event.anchor] = (node, 1)
                grown = 1
            elif kind is mapping_start or kind is sequence_start:
                mark = event.start_mark
                if mark.line != last_line:
                    last_line = mark.line
                    line = last_line + 1
                column = mark.column + 1
                nodes += 1
                if nodes > max_nodes:
                    raise _too_many(path, line, column)
                if len(stack) + (opened is not None) >= MAX_DEPTH:  # open ones included
                    raise Where(path, line, column).error(
                        f"nested more than {MAX_DEPTH} levels deep; no file format here "
                        "needs more than a few")
                if opened is not None:
                    stack.append((opened, items, keys, size, anchor, key, key_node, key_line,
                                  key_column))
                anchor = str(event.anchor) if event.anchor else None
                if anchor is not None:
                    anchors[anchor] = None  # open: an alias to it now would be recursive
                mapping = kind is mapping_start
                items = {} if mapping else []
                opened = Node(items, path, line, column)
                keys, size, key, key_node = [], 1, None, None
                continue
            elif kind is mapping_end or kind is sequence_end:
                assert opened is not None
                node, grown = opened, size
                if mapping:
                    node._keys = tuple(keys)
                if anchor is not None:
                    anchors[anchor] = (node, grown)
                if stack:
                    (opened, items, keys, size, anchor, key, key_node, key_line,
                     key_column) = stack.pop()
                    mapping = type(items) is dict
                else:
                    opened = None
            elif kind is alias_event:
                node, grown = _alias(event, anchors, path)
                alias_nodes += grown
                if alias_nodes > MAX_ALIAS_NODES:
                    name = str(event.anchor)
                    raise _where(path, event.start_mark).error(
                        f"aliases expand to more than {MAX_ALIAS_NODES} nodes (*{name} alone "
                        f"adds {grown}): refused as an alias bomb; write the values out "
                        "instead")
            elif kind is document_start:
                documents += 1
                if documents > 1:
                    raise _where(path, event.start_mark).error(
                        "YAML syntax error: expected a single document in the stream, "
                        "but found another document")
                continue
            else:  # stream start and end, document end
                continue
            if opened is None:
                root = node
                continue
            size += grown
            if not mapping:
                items.append(node)
                continue
            if key is None and key_node is None:  # a key that is not written in place
                if isinstance(node.value, list | dict):
                    raise node.where.error("mapping keys must be plain words")
                key_node = node
                continue
            if key is None:
                assert key_node is not None
                key = str(key_node.raw if key_node.raw is not None else key_node.value)
                key_line, key_column = key_node._line, key_node._column
                key_node = None
            if key in items:
                first = keys[2 * list(items).index(key)]
                raise Where(path, key_line, key_column).error(
                    f"duplicate key {key!r} (first given on line {first})")
            items[key] = node
            keys.append(key_line)
            keys.append(key_column)
            key = None
        return root


def _alias(event: yaml.AliasEvent, anchors: dict[str, tuple[Node, int] | None],
           path: Path) -> tuple[Node, int]:
    """The node an alias names and its expanded size."""
    name = str(event.anchor)
    if name not in anchors:
        raise _where(path, event.start_mark).error(
            f"alias *{name} names no anchor: define &{name} before it")
    found = anchors[name]
    if found is None:
        raise _where(path, event.start_mark).error(
            f"alias *{name} is inside the node &{name} names: a value cannot contain itself")
    return found


def _too_many(path: Path, line: int, column: int) -> FileError:
    return FileError(path, line, column, f"more than {MAX_NODES} values in one file (a "
                     "100,000-host inventory has about 710,000): split it or trim it")


def _check_text(text: str, path: Path, line: int, column: int) -> None:
    """Refuse a string holding a control character (see :data:`_CONTROL`)."""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise FileError(path, line, column,
                        f"control character {codepoint(bad.group())} in a string: names and "
                        "texts may not hold terminal escapes, bidirectional overrides or other "
                        "control characters")


def _resolve(text: str, path: Path, line: int, column: int) -> Scalar:
    """A plain scalar's value (:func:`resolve_plain`); a too long number is refused."""
    try:
        return resolve_plain(text)
    except ValueError:
        raise FileError(path, line, column, f"a number of {len(text)} digits is too large; "
                        "no value here needs more than a few") from None


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
