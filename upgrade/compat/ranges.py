"""The vendors' ways of writing which versions a release supports, parsed exactly.

VMware and Pivotal release notes write supported versions as a comma-separated
list of items; each item is one of:

=========================  ==========================================================
``2.1`` / ``v2.1``         the whole 2.1 series: any 2.1.x (two parts mean a series)
``2.1.x`` / ``2.0.X``      the same, spelled out
``2.1 Advanced Edition``   the 2.1 series, in a named product edition
``2.3.0.2`` / ``2.3.1``    exactly that release (three or more parts)
``2.1.0 \u2013 2.1.6``     an inclusive range (en dash; ``2.0.0 - 2.0.5`` also seen)
``2.2.2+``                 2.2.2 or a later patch *of the same series* (2.2.x ≥ 2.2.2)
``2.5.24 and later``       the same as ``2.5.24+``
=========================  ==========================================================

Items are separated by commas, ``and`` or ``or`` (``2.0.X and 2.1.X``; ``v2.5.0,
v2.4.2, v2.4.1, or v2.4.0.1``), and an item may carry a parenthesised remark
(``v2.4.1 (recommended)``, ``v2.4.2 (<a href="#x">see below</a>)``), kept in its
text and ignored for matching.  ``2.1 - Advanced Edition`` is an edition too.

``2.2.2+`` stops at its series because the notes list ``2.2.2+, 2.3.1+`` side by
side: read as "2.2.2 or anything later", the second item would be redundant and
Ops Manager 2.3.0 would wrongly count as supported.

:class:`VersionSpec` keeps the text verbatim (tables print it back unchanged) and
answers :meth:`VersionSpec.contains` for concrete versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from upgrade.core.versions import Version

_NUM = r"v?\d+(?:\.\d+)*"
_SERIES_X = re.compile(rf"^({_NUM})\.[xX]$")
_RANGE = re.compile(rf"^({_NUM})\s*[\u2013\u2014-]\s*({_NUM})$")
_AT_LEAST = re.compile(rf"^({_NUM})\+$")
_AND_LATER = re.compile(rf"^({_NUM})\s+and\s+later$")
_EDITION = re.compile(rf"^({_NUM})\s+(?:-\s+)?([A-Za-z][A-Za-z ]*[A-Za-z])$")
_REMARK = re.compile(r"^(.*?\S)\s*\(([^()]*)\)$")
_JOINER = re.compile(r"\s+(?:and|or)\s+(?!later\b)")
_LEADING = re.compile(r"^(?:and|or)\s+")
_PLAIN = re.compile(rf"^({_NUM})$")


def _version(text: str) -> Version:
    return Version.parse(text)


def _series_of(version: Version) -> Version:
    """The major.minor series a version belongs to (2.2.2 -> 2.2)."""
    return Version(version.padded(2)[:2])


@dataclass(frozen=True, slots=True)
class Series:
    """Every version of one series: ``2.1``, ``2.1.x``, ``2.1 Advanced Edition``."""

    text: str
    prefix: Version
    edition: str | None = None

    def contains(self, version: Version) -> bool:
        """True for any version within the series."""
        return version.within(self.prefix)

    @property
    def low(self) -> Version:
        """The first version of the series (for sorting and nearest-match lists)."""
        return self.prefix


@dataclass(frozen=True, slots=True)
class Exact:
    """Exactly one release: ``2.3.0.2`` (``2.3.1`` equals ``2.3.1.0``)."""

    text: str
    version: Version

    def contains(self, version: Version) -> bool:
        """True only for an equal version (missing parts read as zero)."""
        return version == self.version

    @property
    def low(self) -> Version:
        """The release itself."""
        return self.version


@dataclass(frozen=True, slots=True)
class Between:
    """An inclusive range: ``2.1.0 \u2013 2.1.6`` (an en dash)."""

    text: str
    first: Version
    last: Version

    def contains(self, version: Version) -> bool:
        """True when ``first <= version <= last``, compared numerically."""
        return self.first <= version <= self.last

    @property
    def low(self) -> Version:
        """The first version of the range."""
        return self.first


@dataclass(frozen=True, slots=True)
class AtLeast:
    """A release or a later patch of its series: ``2.2.2+`` is 2.2.x with x >= 2."""

    text: str
    first: Version

    def contains(self, version: Version) -> bool:
        """True for ``first`` and later versions of the same series."""
        return version >= self.first and version.within(_series_of(self.first))

    @property
    def low(self) -> Version:
        """The first version accepted."""
        return self.first


SpecItem = Series | Exact | Between | AtLeast


def parse_item(text: str) -> SpecItem:
    """Parse one item of a vendor version list; raise ``ValueError`` if it is none.

    A trailing parenthesised remark is kept in the item's text and ignored for matching.
    """
    item = " ".join(text.split())
    if not item:
        raise ValueError("empty version item")
    if remark := _REMARK.match(item):
        return replace(_parse_core(remark.group(1)), text=item)
    return _parse_core(item)


def _parse_core(item: str) -> SpecItem:
    if match := _SERIES_X.match(item):
        return Series(item, _version(match.group(1)))
    if match := _AT_LEAST.match(item) or _AND_LATER.match(item):
        return AtLeast(item, _version(match.group(1)))
    if match := _RANGE.match(item):
        first, last = _version(match.group(1)), _version(match.group(2))
        if last < first:
            raise ValueError(f"range {item!r} ends before it starts")
        return Between(item, first, last)
    if match := _EDITION.match(item):
        prefix = _version(match.group(1))
        if len(prefix.parts) != 2:
            raise ValueError(f"{item!r}: an edition applies to a series such as 2.1")
        return Series(item, prefix, match.group(2))
    if match := _PLAIN.match(item):
        version = _version(match.group(1))
        if len(version.parts) < 2:
            raise ValueError(f"{item!r} is too vague: write at least major.minor")
        if len(version.parts) == 2:
            return Series(item, version)
        return Exact(item, version)
    raise ValueError(
        f"{item!r} is not a version notation: expected 2.1, 2.1.x, 2.3.0.2, "
        "2.1.0 \u2013 2.1.6, 2.2.2+ or 2.1 Advanced Edition"
    )


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """A vendor's list of supported versions, kept verbatim and parsed exactly."""

    text: str
    items: tuple[SpecItem, ...]

    @classmethod
    def parse(cls, text: str) -> VersionSpec:
        """Parse ``"2.2.2+, 2.3.1+"``; raise ``ValueError`` naming the bad item."""
        parts = [
            piece
            for chunk in text.split(",")
            for piece in _JOINER.split(_LEADING.sub("", chunk.strip()))
            if piece.strip()
        ]
        if not parts:
            raise ValueError("empty version list")
        return cls(text, tuple(parse_item(p) for p in parts))

    def contains(self, version: Version) -> bool:
        """True when any item accepts ``version``."""
        return any(item.contains(version) for item in self.items)

    def matching(self, version: Version) -> SpecItem | None:
        """The first item that accepts ``version``, if any."""
        return next((item for item in self.items if item.contains(version)), None)

    def describe(self) -> str:
        """The items joined for a sentence: ``2.2, 2.3.0.2 or 2.3.1`` (``v`` and remarks
        dropped)."""
        texts = [_REMARK.sub(r"\1", item.text).removeprefix("v") for item in self.items]
        if len(texts) == 1:
            return texts[0]
        return f"{', '.join(texts[:-1])} or {texts[-1]}"

    def __str__(self) -> str:
        return self.text
