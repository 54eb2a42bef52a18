"""The compatibility data: loading the package YAML once, and `check`.

Pure apart from :func:`load_matrix`, which reads ``matrix.yaml`` from the
package (``importlib.resources``) the first time it is called.  Everything
else takes a :class:`Matrix`, so tests can build small ones by hand.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml

from upgrade.compat.ranges import Exact, Series, SpecItem, VersionSpec, parse_item
from upgrade.errors import InputError
from upgrade.versions import Version


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


@dataclass(frozen=True, slots=True)
class Row:
    """One PKS release (or series) and the NSX-T and Ops Manager versions it supports."""

    pks: SpecItem
    nsxt: VersionSpec
    opsman: VersionSpec
    source: str
    uncertain: bool = False
    note: str | None = None

    @property
    def pks_text(self) -> str:
        """The PKS release as the table writes it (``v1.1.6``)."""
        text = self.pks.text
        return text if text.startswith("v") else f"v{text}"


@dataclass(frozen=True, slots=True)
class Hop:
    """A supported direct upgrade from any version of one series to any of another."""

    source_series: Version
    target_series: Version
    source: str
    uncertain: bool = False
    note: str | None = None

    def allows(self, old: Version, new: Version) -> bool:
        """True when ``old`` -> ``new`` is this hop."""
        return old.within(self.source_series) and new.within(self.target_series)

    def describe(self) -> str:
        """``2.1 → 2.3``."""
        return f"{self.source_series} \u2192 {self.target_series}"


@dataclass(frozen=True, slots=True)
class UpgradeRules:
    """How one product may be upgraded: direct hops between series, and patches."""

    hops: tuple[Hop, ...] = ()
    patches: bool = True
    patches_source: str = ""

    def hop(self, old: Version, new: Version) -> Hop | None:
        """The hop that allows ``old`` -> ``new``, or None (also None for patches)."""
        return next((h for h in self.hops if h.allows(old, new)), None)

    def is_patch(self, old: Version, new: Version) -> bool:
        """True when ``new`` is a later patch in ``old``'s major.minor series."""
        series = Version(old.padded(2)[:2])
        return self.patches and new > old and new.within(series)

    def allows(self, old: Version, new: Version) -> bool:
        """True when ``old`` can be upgraded to ``new`` in one supported step."""
        if not new > old:
            return False
        return self.is_patch(old, new) or self.hop(old, new) is not None


@dataclass(frozen=True, slots=True)
class Matrix:
    """The whole compatibility data set."""

    rows: tuple[Row, ...]
    releases: dict[Product, tuple[Version, ...]]
    upgrades: dict[Product, UpgradeRules]
    release_sources: dict[Product, str] = field(default_factory=dict)

    def row_for(self, pks: Version) -> Row | None:
        """The most specific row for ``pks``: an exact release beats a series."""
        best: Row | None = None
        best_rank = (-1, -1)
        for row in self.rows:
            if not row.pks.contains(pks):
                continue
            item = row.pks
            prefix = len(item.prefix.parts) if isinstance(item, Series) else 0
            rank = (1 if isinstance(item, Exact) else 0, prefix)
            if rank > best_rank:
                best, best_rank = row, rank
        return best

    def specs(self, product: Product) -> tuple[VersionSpec, ...]:
        """Every version list the rows give for ``product`` (NSX-T or Ops Manager)."""
        if product is Product.NSXT:
            return tuple(r.nsxt for r in self.rows)
        if product is Product.OPSMAN:
            return tuple(r.opsman for r in self.rows)
        return ()

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
        if product is Product.PKS:
            found += [r.pks.low for r in self.rows]
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

    def require_known(self, product: Product, version: Version) -> None:
        """Raise :class:`UnknownVersionError` unless ``version`` is known."""
        if not self.is_known(product, version):
            raise UnknownVersionError(product, version, self.nearest(product, version))


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Whether one PKS / NSX-T / Ops Manager combination is supported, and why."""

    supported: bool
    pks: Version
    nsxt: Version
    opsman: Version | None
    reason: str
    source: str
    row: Row

    def to_json(self) -> dict[str, object]:
        """The ``compat check --format json`` document (contract)."""
        return {
            "supported": self.supported,
            "pks": str(self.pks),
            "nsxt": str(self.nsxt),
            "opsman": None if self.opsman is None else str(self.opsman),
            "reason": self.reason,
            "source": self.source,
        }


def supports(row: Row, nsxt: Version, opsman: Version | None) -> bool:
    """True when ``row`` accepts NSX-T ``nsxt`` and (if given) Ops Manager ``opsman``."""
    return row.nsxt.contains(nsxt) and (opsman is None or row.opsman.contains(opsman))


def check(
    pks: Version, nsxt: Version, opsman: Version | None = None, matrix: Matrix | None = None
) -> CheckResult:
    """Is PKS ``pks`` supported on NSX-T ``nsxt`` (with Ops Manager ``opsman``)?

    Raises :class:`UnknownVersionError` (exit 2) for versions the data does not know.
    """
    m = matrix if matrix is not None else load_matrix()
    row = m.row_for(pks)
    if row is None:
        raise UnknownVersionError(Product.PKS, pks, m.nearest(Product.PKS, pks))
    m.require_known(Product.NSXT, nsxt)
    if opsman is not None:
        m.require_known(Product.OPSMAN, opsman)
    nsxt_ok = row.nsxt.contains(nsxt)
    opsman_ok = opsman is None or row.opsman.contains(opsman)
    supported = nsxt_ok and opsman_ok
    if supported:
        reason = _supported_reason(row, pks, nsxt, opsman)
    else:
        reason = _unsupported_reason(row, pks, nsxt, opsman, nsxt_ok, opsman_ok)
    if row.uncertain:
        reason += f" (uncertain data for {row.pks_text}: {row.note})"
    return CheckResult(supported, pks, nsxt, opsman, reason, row.source, row)


def _supported_reason(row: Row, pks: Version, nsxt: Version, opsman: Version | None) -> str:
    item = row.nsxt.matching(nsxt)
    edition = f" ({item.text})" if isinstance(item, Series) and item.edition else ""
    text = f"PKS {pks} supports NSX-T {nsxt}{edition} (listed: {row.nsxt.text})"
    if opsman is not None:
        text += f" with Ops Manager {opsman} (listed: {row.opsman.text})"
    else:
        text += "; Ops Manager was not checked"
    return text + "."


def _unsupported_reason(
    row: Row, pks: Version, nsxt: Version, opsman: Version | None, nsxt_ok: bool, opsman_ok: bool
) -> str:
    needs: list[str] = []
    bad: list[str] = []
    if not nsxt_ok:
        needs.append(f"NSX-T {row.nsxt.describe()}")
        bad.append(f"NSX-T {nsxt}")
    if not opsman_ok:
        needs.append(f"Ops Manager {row.opsman.describe()}")
        bad.append(f"Ops Manager {opsman}")
    verb = "is" if len(bad) == 1 else "are"
    return f"PKS {pks} needs {' and '.join(needs)}; {' and '.join(bad)} {verb} not supported."


# -- loading ---------------------------------------------------------------------------


@cache
def load_matrix() -> Matrix:
    """The packaged matrix, read and validated once per process."""
    text = resources.files("upgrade.compat").joinpath("matrix.yaml").read_text(encoding="utf-8")
    return parse_matrix(yaml.safe_load(text))


def parse_matrix(data: object) -> Matrix:
    """Build a :class:`Matrix` from the YAML document; raise :class:`MatrixDataError`."""
    root = _mapping(data, "matrix.yaml")
    rows = tuple(_row(_mapping(r, "pks_matrix row")) for r in _list(root, "pks_matrix"))
    keys = [r.pks.text.lstrip("v") for r in rows]
    if len(set(keys)) != len(keys):
        raise MatrixDataError("pks_matrix lists a PKS release twice")
    releases_node = _mapping(root.get("releases"), "releases")
    upgrades_node = _mapping(root.get("upgrades"), "upgrades")
    releases: dict[Product, tuple[Version, ...]] = {}
    sources: dict[Product, str] = {}
    upgrades: dict[Product, UpgradeRules] = {}
    for product in Product:
        rel = _mapping(releases_node.get(product.value), f"releases.{product.value}")
        releases[product] = tuple(sorted(_version(v) for v in _list(rel, "versions")))
        sources[product] = _str(rel, "source")
        upgrades[product] = _rules(_mapping(upgrades_node.get(product.value), product.value))
    return Matrix(rows, releases, upgrades, sources)


def _row(node: dict[str, Any]) -> Row:
    try:
        pks = parse_item(_str(node, "pks"))
        nsxt = VersionSpec.parse(_str(node, "nsxt"))
        opsman = VersionSpec.parse(_str(node, "opsman"))
    except ValueError as exc:
        raise MatrixDataError(f"pks_matrix row {node.get('pks')!r}: {exc}") from None
    uncertain = bool(node.get("uncertain", False))
    note = node.get("note")
    if uncertain and not note:
        raise MatrixDataError(f"pks_matrix row {node.get('pks')!r}: uncertain without a note")
    return Row(pks, nsxt, opsman, _str(node, "source"), uncertain, note)


def _rules(node: dict[str, Any]) -> UpgradeRules:
    hops = []
    for raw in _list(node, "hops"):
        hop = _mapping(raw, "hop")
        hops.append(
            Hop(
                _version(_str(hop, "from")),
                _version(_str(hop, "to")),
                _str(hop, "source"),
                bool(hop.get("uncertain", False)),
                hop.get("note"),
            )
        )
    return UpgradeRules(
        tuple(hops), bool(node.get("patches", True)), str(node.get("patches_source", ""))
    )


def _mapping(node: object, what: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise MatrixDataError(f"{what}: expected a mapping")
    return node


def _list(node: dict[str, Any], key: str) -> list[Any]:
    value = node.get(key)
    if not isinstance(value, list):
        raise MatrixDataError(f"{key}: expected a list")
    return value


def _str(node: dict[str, Any], key: str) -> str:
    value = node.get(key)
    if not isinstance(value, str):
        raise MatrixDataError(f"{key}: expected a quoted string, got {value!r}")
    return value


def _version(text: object) -> Version:
    if not isinstance(text, str):
        raise MatrixDataError(f"version {text!r} must be a quoted string")
    try:
        return Version.parse(text)
    except ValueError as exc:
        raise MatrixDataError(str(exc)) from None
