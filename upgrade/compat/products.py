"""The three products whose versions must fit together: the vocabulary under every other
compat module (a state, a row, a hop, a step all name one)."""

from __future__ import annotations

from enum import StrEnum


class Product(StrEnum):
    """The three products whose versions must fit together."""

    PKS = "pks"  #: VMware / Pivotal Container Service
    NSXT = "nsxt"  #: VMware NSX-T Data Center
    OPSMAN = "opsman"  #: Pivotal Ops Manager

    @property
    def label(self) -> str:
        """The product's name for people."""
        return _TITLES[self]


_TITLES = {Product.PKS: "PKS", Product.NSXT: "NSX-T", Product.OPSMAN: "Ops Manager"}
