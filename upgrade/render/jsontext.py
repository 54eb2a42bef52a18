"""``json.dumps(value, indent=2, default=...)``, byte for byte, several times faster.

With ``indent`` the standard library falls back to its pure-Python encoder, which walks
every value through a chain of generators; a 10,000-host plan has some 700,000 values.
This writer does the same in one recursive function over lists of strings and reuses the
standard library's own scalar encoders (the C string escaper, ``int.__repr__``,
``float.__repr__``), in the same order of type checks, so the text is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = ["dumps_indented"]

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
