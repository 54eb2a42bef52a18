"""The compatibility data: one row per PKS release, the upgrade rules, and the matrix.

Pure data classes.  Reading the packaged ``matrix.yaml`` and a site's ``--matrix FILE``
is in :mod:`upgrade.compat.load` (above this module: it builds these classes), and the
upgrade rules are asked about a :class:`~upgrade.compat.states.State` (below it).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Product is defined in products.py (below the states); it is named here too because its
# callers (journey, cli, prepare) read it as part of the matrix
from upgrade.compat.products import Product as Product
from upgrade.compat.ranges import VersionSpec
from upgrade.compat.sources import Citation, Document
from upgrade.compat.states import State
from upgrade.core.versions import Version
from upgrade.errors import InputError

#: where a row or hop came from when it is part of the packaged data
BUILT_IN = "built-in"
#: the row fields a discrepancy may concern
FIELDS = ("nsxt", "opsman", "upgrade_from")


class MatrixDataError(Exception):
    """The packaged matrix is malformed (a bug in the package, not user input)."""


class UnknownVersionError(InputError):
    """A version the matrix knows nothing about; the message lists the nearest known ones."""

    def __init__(self, product: Product, version: Version, nearest: tuple[str, ...]) -> None:
        self.product = product
        self.version = version
        self.nearest = nearest
        hint = f"; nearest known: {', '.join(nearest)}" if nearest else ""
        super().__init__(f"unknown {product.label} version {version}{hint}")


def _text(spec: VersionSpec | None) -> str | None:
    return None if spec is None else spec.text


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """Another vendor document's reading of one of a row's fields."""

    field: str
    reading: VersionSpec
    source: Citation
    text: str | None = None

    def to_json(self, row: Row) -> dict[str, object]:
        """``{"field", "reading", "source"}`` plus the row's own reading and source."""
        return {
            "field": self.field,
            "reading": self.reading.text,
            "source": self.source.render(),
            "text": self.text,
            "own_reading": _text(row.spec(self.field)),
            "own_source": row.field_source(self.field).render(),
        }

    def describe(self, row: Row) -> str:
        """One warning sentence naming both sources."""
        own = row.spec(self.field)
        what = {"nsxt": "NSX-T", "opsman": "Ops Manager", "upgrade_from": "upgrade from"}
        return (
            f"vendor documents disagree on {row.pks_text} {what[self.field]}: the release notes "
            f"say {own.text if own else 'nothing'!r} ({row.field_source(self.field).render()}), "
            f"another page says {self.reading.text!r} ({self.source.render()})"
        )


@dataclass(frozen=True, slots=True)
class Row:
    """One PKS release and what its notes say it supports, with a citation per field."""

    pks: Version
    nsxt: VersionSpec
    opsman: VersionSpec
    source: Citation
    upgrade_from: VersionSpec | None = None
    upgrade_text: str | None = None
    released: str | None = None
    nsxt_source: Citation | None = None
    opsman_source: Citation | None = None
    upgrade_source: Citation | None = None
    withdrawn: str | None = None
    withdrawn_source: Citation | None = None
    confirmable: bool = True
    note: str | None = None
    discrepancies: tuple[Discrepancy, ...] = ()
    origin: str = BUILT_IN

    @property
    def pks_text(self) -> str:
        """The release as the notes write it (``v1.1.6``)."""
        return f"v{self.pks}"

    def spec(self, name: str) -> VersionSpec | None:
        """The row's own reading of ``nsxt``, ``opsman`` or ``upgrade_from``."""
        return {"nsxt": self.nsxt, "opsman": self.opsman, "upgrade_from": self.upgrade_from}[name]

    def field_source(self, name: str) -> Citation:
        """The citation of one field (the row's source unless a field names its own)."""
        own = {
            "nsxt": self.nsxt_source,
            "opsman": self.opsman_source,
            "upgrade_from": self.upgrade_source,
        }[name]
        return own or self.source

    def accepts(self, name: str, version: Version, strict: bool = False) -> bool:
        """True when the notes accept ``version`` for ``name`` (and, strict, every reading)."""
        spec = self.spec(name)
        if spec is None or not spec.contains(version):
            return False
        return not strict or all(
            d.reading.contains(version) for d in self.discrepancies if d.field == name
        )

    def disagreements(self, name: str, version: Version) -> tuple[Discrepancy, ...]:
        """The recorded readings of ``name`` that answer differently for ``version``."""
        spec = self.spec(name)
        own = spec is not None and spec.contains(version)
        return tuple(
            d for d in self.discrepancies if d.field == name and d.reading.contains(version) != own
        )


@dataclass(frozen=True, slots=True)
class Hop:
    """A supported direct upgrade of NSX-T or Ops Manager between two version sets."""

    source_spec: VersionSpec
    target_spec: VersionSpec
    source: Citation
    requires: tuple[tuple[Product, VersionSpec], ...] = ()
    text: str | None = None
    note: str | None = None
    origin: str = BUILT_IN

    def allows(self, old: Version, new: Version) -> bool:
        """True when ``old`` -> ``new`` is this hop (ignoring ``requires``)."""
        return self.source_spec.contains(old) and self.target_spec.contains(new)

    def unmet(self, state: State | None) -> str | None:
        """What ``state`` lacks that this hop requires, or None."""
        if state is None:
            return None
        for product, spec in self.requires:
            have = state.get(product)
            if have is not None and not spec.contains(have):
                return f"{product.label} {spec.describe()} (have {have})"
        return None

    def describe(self) -> str:
        """``2.3.1+ → 2.4.0.1+``."""
        return f"{self.source_spec.text} \u2192 {self.target_spec.text}"


@dataclass(frozen=True, slots=True)
class UpgradeRules:
    """How NSX-T or Ops Manager may be upgraded: hops, patches, and skipping advice."""

    hops: tuple[Hop, ...] = ()
    patches: Citation | None = None
    #: vendor advice against skipping minor versions: (verbatim text, source); skipping is
    #: then allowed, with a warning, when no path keeps to one minor at a time
    one_minor: tuple[str, Citation] | None = None

    def hop(self, old: Version, new: Version) -> Hop | None:
        """The first hop that allows ``old`` -> ``new``, or None."""
        return next((h for h in self.hops if h.allows(old, new)), None)

    def is_patch(self, old: Version, new: Version) -> bool:
        """True when ``new`` is a later patch in ``old``'s major.minor series."""
        series = Version(old.padded(2)[:2])
        return self.patches is not None and new > old and new.within(series)

    def is_skip(self, old: Version, new: Version) -> bool:
        """True when ``old`` -> ``new`` skips a minor version that advice says not to skip."""
        if self.one_minor is None or not new > old:
            return False
        (a, b), (c, d) = old.padded(2)[:2], new.padded(2)[:2]
        return a != c or d - b > 1

    def allows(
        self, old: Version, new: Version, state: State | None = None, skip: bool = False
    ) -> bool:
        """True when ``old`` can go to ``new`` in one step (``skip``: also skipping minors)."""
        if not new > old:
            return False
        if self.is_patch(old, new):
            return True
        hop = self.hop(old, new)
        if hop is not None and hop.unmet(state) is None:
            return True
        return skip and self.is_skip(old, new) and not self._forbidden(old, new, state)

    def _forbidden(self, old: Version, new: Version, state: State | None) -> bool:
        """A skip still honours the cross-product rules of the hops it passes over."""
        for hop in self.hops:
            lands = hop.target_spec.items[0].low
            if old < lands <= new and hop.unmet(state) is not None:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Matrix:
    """The whole compatibility data set."""

    rows: tuple[Row, ...]
    releases: dict[Product, tuple[Version, ...]]
    upgrades: dict[Product, UpgradeRules]
    release_sources: dict[Product, str] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    origins: tuple[str, ...] = (BUILT_IN,)
    _index: dict[Version, Row] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({row.pks: row for row in self.rows})
        if Product.PKS not in self.releases:
            self.releases[Product.PKS] = tuple(sorted(row.pks for row in self.rows))

    def row_for(self, pks: Version) -> Row | None:
        """The row of PKS release ``pks`` (``1.2`` means ``1.2.0``)."""
        return self._index.get(pks)

    def specs(self, product: Product) -> tuple[VersionSpec, ...]:
        """Every version list the rows give for ``product`` (NSX-T or Ops Manager)."""
        if product is Product.PKS:
            return ()
        return tuple(r.nsxt if product is Product.NSXT else r.opsman for r in self.rows)

    def is_known(self, product: Product, version: Version) -> bool:
        """True when the data says anything about ``version`` of ``product``."""
        if product is Product.PKS:
            return self.row_for(version) is not None
        if any(version == r for r in self.releases.get(product, ())):
            return True
        return any(spec.contains(version) for spec in self.specs(product))

    def known_versions(self, product: Product) -> tuple[Version, ...]:
        """Sorted, distinct versions the data names for ``product``."""
        found: list[Version] = list(self.releases.get(product, ()))
        for spec in self.specs(product):
            found += [item.low for item in spec.items]
        distinct: list[Version] = []
        for v in sorted(found):
            if not distinct or distinct[-1] != v:
                distinct.append(v)
        return tuple(distinct)

    def nearest(self, product: Product, version: Version, count: int = 2) -> tuple[str, ...]:
        """Up to ``count`` known versions on each side of ``version``."""
        known = self.known_versions(product)
        at = bisect.bisect_left(known, version)
        picked = known[max(0, at - count) : at] + known[at : at + count]
        return tuple(str(v) for v in picked)

    def in_catalogue(self, product: Product, version: Version) -> bool:
        """True when ``version`` is one of the releases the data lists for ``product``
        (``releases:``; for PKS, a row)."""
        if product is Product.PKS:
            return self.row_for(version) is not None
        return any(version == r for r in self.releases.get(product, ()))

    def series_known(self, product: Product, version: Version) -> bool:
        """True when the data names any version of ``version``'s major.minor series."""
        series = Version(version.padded(2)[:2])
        return any(v.within(series) for v in self.known_versions(product))

    def require_known(self, product: Product, version: Version) -> None:
        """Raise :class:`UnknownVersionError` unless the data can answer for ``version``.

        PKS needs a row (the release's own notes); NSX-T and Ops Manager versions are
        answered by the rows' ranges, so any version of a series the data names will do
        (2.5.1 lies in "2.5.x" and before "2.5.24 and later"): only a version of no known
        series (Ops Manager 3.0) is unknown.
        """
        known = (self.row_for(version) is not None if product is Product.PKS
                 else self.is_known(product, version) or self.series_known(product, version))
        if not known:
            raise UnknownVersionError(product, version, self.nearest(product, version))

    def pks_upgrade_allowed(self, old: Version, new: Version, strict: bool = False) -> bool:
        """True when PKS ``old`` may upgrade directly to ``new`` (``new``'s notes say so)."""
        row = self.row_for(new)
        return new > old and row is not None and row.accepts("upgrade_from", old, strict)

    def allows(
        self,
        product: Product,
        old: Version,
        new: Version,
        state: State | None = None,
        strict: bool = False,
        skip: bool = False,
    ) -> bool:
        """True when ``product`` may go from ``old`` to ``new`` in one step."""
        if product is Product.PKS:
            return self.pks_upgrade_allowed(old, new, strict)
        return self.upgrades[product].allows(old, new, state, skip)


def supports(row: Row, nsxt: Version, opsman: Version | None, strict: bool = False) -> bool:
    """True when ``row`` accepts NSX-T ``nsxt`` and (if given) Ops Manager ``opsman``."""
    return row.accepts("nsxt", nsxt, strict) and (
        opsman is None or row.accepts("opsman", opsman, strict)
    )

