"""``json.dumps(value, indent=2, default=...)``, byte for byte, several times faster.

With ``indent`` the standard library falls back to its pure-Python encoder, which walks
every value through a chain of generators; a 10,000-host plan has some 700,000 values.
This writer does the same in one recursive function over lists of strings and reuses the
standard library's own scalar encoders (the C string escaper, ``int.__repr__``,
``float.__repr__``), in the same order of type checks, so the text is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = ["Streamed", "dumps_indented", "indented_text", "write_indented"]

_INFINITY = float("inf")


def _float(value: float) -> str:
    """A float as the standard library writes it (``allow_nan`` on)."""
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def dumps_indented(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(value, indent=2, default=default)`` (its other options at their
    defaults): the same text, without a circular-reference check."""
    parts: list[str] = []
    _write(value, "\n", parts, default)
    return "".join(parts)


def _scalar(value: Any) -> str | None:
    """``value`` as JSON if it is a string, number, boolean or null; None otherwise."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    return None


def _key(key: Any) -> str:
    """A dict key as the standard library writes it (``skipkeys`` off)."""
    if isinstance(key, str):
        return encode_basestring_ascii(key)
    if isinstance(key, float):
        text = _float(key)
    elif key is True:
        text = "true"
    elif key is False:
        text = "false"
    elif key is None:
        text = "null"
    elif isinstance(key, int):
        text = int.__repr__(key)
    else:
        raise TypeError(f"keys must be str, int, float, bool or None, not "
                        f"{key.__class__.__name__}")
    return encode_basestring_ascii(text)


def _write(value: Any, newline: str, parts: list[str],
           default: Callable[[Any], Any] | None) -> None:
    """Append ``value``'s text to ``parts``; ``newline`` is a line break and the indent of
    the line ``value`` starts on."""
    text = _scalar(value)
    if text is not None:
        parts.append(text)
        return
    inner = newline + "  "
    if isinstance(value, list | tuple):
        if not value:
            parts.append("[]")
            return
        lines = [_text(entry, inner, default) for entry in value]
        parts.append("[" + inner + ("," + inner).join(lines) + newline + "]")
        return
    if isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        keys = _KEYS
        lines = []
        for key, entry in value.items():
            name = keys.get(key) if type(key) is str else None
            if name is None:
                name = _key(key) + ": "
                if type(key) is str and len(keys) < 1000:
                    keys[key] = name
            lines.append(name + _text(entry, inner, default))
        parts.append("{" + inner + ("," + inner).join(lines) + newline + "}")
        return
    if default is None:
        raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")
    _write(default(value), newline, parts, default)


#: the text of the dict keys seen so far, with their ": " (a plan repeats a few keys)
_KEYS: dict[str, str] = {}


def _text(value: Any, newline: str, default: Callable[[Any], Any] | None) -> str:
    """``value``'s text, starting on a line indented as ``newline`` says."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    text = _scalar(value)
    if text is not None:
        return text
    parts: list[str] = []
    _write(value, newline, parts, default)
    return "".join(parts)


def indented_text(value: Any, newline: str, default: Callable[[Any], Any] | None = None) -> str:
    """``value``'s text as :func:`dumps_indented` writes it on a line indented as
    ``newline`` (a line break and the indent) says."""
    return _text(value, newline, default)


@dataclass(frozen=True, slots=True)
class Streamed:
    """A list :func:`write_indented` writes entry by entry, never holding it whole.

    ``entries`` is iterated once. ``render(batch, newline)``, when given, is the text of
    each entry of ``batch`` (a list of consecutive entries) as :func:`indented_text` would
    write the JSON value it stands for (a faster writer for a known shape: a plan's
    300,000 schedule bars, rendered a batch per call); otherwise each entry is a JSON
    value. :func:`dumps_indented` knows nothing of it: it is for the writer only.
    """

    entries: Iterable[Any]
    render: Callable[[list[Any], str], Iterable[str]] | None = None


#: how many pieces the streaming writer gathers before it writes them
_FLUSH_AT = 4096
#: the set of the entries' types of a list holding strings only
_STR_ONLY = {str}


def write_indented(value: Any, write: Callable[[str], object],
                   default: Callable[[Any], Any] | None = None) -> None:
    """Write :func:`dumps_indented`'s text of ``value`` through ``write``, in pieces.

    Lists, tuples and dicts are written entry by entry and :class:`Streamed` lists as
    their entries come, so a large document is never one string: ``plan --format json``
    of 100,000 hosts is 44 MB of text (issue 23 item 4). The text is the same as
    :func:`dumps_indented`'s (a :class:`Streamed` list as the list of its entries).
    """
    parts: list[str] = []
    _stream(value, "\n", parts, write, default)
    write("".join(parts))


def _stream(value: Any, newline: str, parts: list[str], write: Callable[[str], object],
            default: Callable[[Any], Any] | None) -> None:
    """Append ``value``'s text to ``parts`` (see :func:`_write`), handing ``parts`` to
    ``write`` whenever it grows long."""
    inner = newline + "  "
    if isinstance(value, Streamed):
        render = value.render
        entries = iter(value.entries)
        first = next(entries, _NONE)
        if first is _NONE:
            parts.append("[]")
            return
        parts.append("[" + inner)
        separator = "," + inner
        if render is not None:  # a batch of entries per call (see Streamed)
            batch = [first]
            while batch:
                parts.append(separator.join(render(batch, inner)))
                write("".join(parts))
                parts.clear()
                batch = list(islice(entries, _FLUSH_AT))
                if batch:
                    parts.append(separator)
            parts.append(newline + "]")
            return
        sep = ""
        for entry in _chain(first, entries):
            parts.append(sep)
            sep = separator
            _stream(entry, inner, parts, write, default)
            if len(parts) > _FLUSH_AT:
                write("".join(parts))
                parts.clear()
        parts.append(newline + "]")
        return
    if isinstance(value, list | tuple) and value:
        if set(map(type, value)) == _STR_ONLY:
            # all strings (a plan's 100,000 unit ids): the loop below's text, by one C join
            parts.append("[" + inner + ("," + inner).join(map(encode_basestring_ascii, value))
                         + newline + "]")
            return
        parts.append("[" + inner)
        for i, entry in enumerate(value):
            if i:
                parts.append("," + inner)
            if _is_leaf(entry):
                parts.append(_text(entry, inner, default))
            else:
                _stream(entry, inner, parts, write, default)
            if len(parts) > _FLUSH_AT:
                write("".join(parts))
                parts.clear()
        parts.append(newline + "]")
        return
    if isinstance(value, dict) and value:
        parts.append("{" + inner)
        keys = _KEYS
        for i, (key, entry) in enumerate(value.items()):
            name = keys.get(key) if type(key) is str else None
            if name is None:
                name = _key(key) + ": "
            parts.append(("," + inner + name) if i else name)
            if _is_leaf(entry):
                parts.append(_text(entry, inner, default))
            else:
                _stream(entry, inner, parts, write, default)
        parts.append(newline + "}")
        return
    if _is_leaf(value):
        parts.append(_text(value, newline, default))
        return
    if default is None:
        raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")
    _stream(default(value), newline, parts, write, default)


def _is_leaf(value: Any) -> bool:
    """True for what :func:`_stream` writes with :func:`_text`: scalars and empty lists and
    dicts."""
    kind = type(value)
    if kind is str or kind is int:
        return True
    return _scalar(value) is not None or (isinstance(value, list | tuple | dict) and not value)


_NONE = object()


def _chain(first: Any, rest: Iterable[Any]) -> Iterable[Any]:
    yield first
    yield from rest
