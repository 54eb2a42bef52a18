"""Product versions as the vendors write them.

NSX-T uses four parts (``2.3.0.0``), PKS and Ops Manager three (``1.2.0``,
``2.3.1``); people write fewer (``2.1``).  Versions compare numerically with
missing parts read as zero, so ``2.3 == 2.3.0.0``; :meth:`Version.within`
is the prefix match the compatibility tables mean by ``2.1`` ("any 2.1.x").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(r"^v?(\d+(?:\.\d+){0,4})$")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A dotted numeric version; ``parts`` keeps exactly what was written."""

    parts: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``2.3.0.0``, ``1.2``, ``v1.1.6``; raise ``ValueError`` otherwise."""
        match = _VERSION.match(text.strip())
        if not match:
            raise ValueError(
                f"{text!r} is not a version: expected dotted numbers such as 2.3.0.0 or 1.2.0"
            )
        return cls(tuple(int(p) for p in match.group(1).split(".")))

    def _key(self) -> tuple[int, ...]:
        parts = list(self.parts)
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Version) -> bool:
        width = max(len(self.parts), len(other.parts))
        return self.padded(width) < other.padded(width)

    def padded(self, width: int) -> tuple[int, ...]:
        """The parts, padded with zeros to ``width``."""
        return self.parts + (0,) * (width - len(self.parts))

    def within(self, prefix: Version) -> bool:
        """True when this version lies in ``prefix``'s series: 2.1.0.3 is within 2.1."""
        return self.padded(len(prefix.parts))[: len(prefix.parts)] == prefix.parts

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)
