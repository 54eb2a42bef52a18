"""A target system's status words read as the core's :class:`OpState` members.

Each adapter turns the word a target answers (NSX-T's ``IN_PROGRESS``, vCenter's
``queued``) into a member where it reads the answer, through one :class:`StatusWords`
table per enum of the target's API, and works with members from then on.  A word the
table does not list (a newer release, a proxy's page) reads as the table's ``unlisted``
state: chosen per table to keep what the adapter has always done with such a word.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from upgrade.core.engine.messages import OpState

__all__ = ["StatusWords"]


@dataclass(frozen=True, slots=True)
class StatusWords:
    """One enum of a target's API and the :class:`OpState` each of its words means."""

    #: the enum as the vendor's API names it (``UpgradeUnitStatus.status``)
    name: str
    #: each word the vendor defines, and what it means for the operation being followed
    states: Mapping[str, OpState]
    #: what a word the vendor does not define (or None) reads as
    unlisted: OpState

    def read(self, word: object) -> OpState:
        """The member ``word`` means (``unlisted`` for a word the table does not list)."""
        return self.states.get(word, self.unlisted) if isinstance(word, str) else self.unlisted

    def lists(self, word: object) -> bool:
        """True when ``word`` is one the vendor defines for this enum."""
        return isinstance(word, str) and word in self.states
