"""Reading the compatibility data: the packaged ``matrix.yaml`` and a site's overlay.

Both are read through :mod:`upgrade.inputs.yamlio`, so every problem in a site's
``--matrix FILE`` is ``FILE:LINE:COL: what is wrong`` (exit 2).  A site file has
the same shape as the packaged one, every part optional: its ``pks_matrix`` rows
replace the fields they give of a built-in release's row (or add a release), its
hops are added to the built-in ones, its releases and documents are added too.
Every row and hop it gives must say where it comes from (``source:``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path

from upgrade.compat.matrix import (
    BUILT_IN,
    FIELDS,
    Discrepancy,
    Hop,
    Matrix,
    Row,
    UpgradeRules,
)
from upgrade.compat.products import Product
from upgrade.compat.ranges import VersionSpec
from upgrade.compat.sources import Citation, Document, parse_citation
from upgrade.core.versions import Version
from upgrade.errors import FileError
from upgrade.inputs.yamlio import MapReader, Node, as_str, as_version, entries, load_yaml

_TOP = ("schema", "documents", "releases", "upgrades", "pks_matrix")
_DOC = ("title", "repo", "branch", "commit", "file", "url")
_ROW = (
    "pks", "released", "nsxt", "opsman", "upgrade_from", "upgrade_text", "source",
    "nsxt_source", "opsman_source", "upgrade_source", "withdrawn", "withdrawn_source",
    "confirmable", "note", "discrepancies",
)
_SOURCES = ("nsxt_source", "opsman_source", "upgrade_source")
_HOP = ("from", "to", "source", "requires", "text", "note")
_RULES = ("patches", "one_minor_at_a_time", "hops")
#: the data layout this package reads (``schema:`` in a data file; a site file may omit it)
SCHEMA = 2
#: how a release date may be written: as the release notes print it, or ISO 8601
_DATE_FORMATS = ("%B %d, %Y", "%Y-%m-%d")


def release_date(text: str) -> dt.date | None:
    """``released:`` as a date (``"May 19, 2020"`` or ``"2020-05-19"``), None if it is none."""
    for form in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text.strip(), form).date()
        except ValueError:
            continue
    return None


def _check_schema(root: MapReader, required: bool) -> None:
    node = root.get("schema")
    if node is None:
        if required:
            raise root.where.error(f"the compatibility data needs schema: {SCHEMA}")
        return
    if isinstance(node.value, bool) or node.value != SCHEMA:
        shown = node.raw if node.raw is not None else repr(node.value)
        raise node.where.error(f"schema: {shown} is not a layout this nsxt-upgrade reads: "
                               f"write schema: {SCHEMA} (or leave it out)")


def _goes_up(hop: Hop) -> bool:
    """True when every version the hop lands on is newer than every version it leaves
    (compared at the first version each item names: ``2.3.1+ -> 2.4.0.1+`` goes up,
    ``2.3 -> 2.1`` and ``2.3 -> 2.3`` do not)."""
    highest_from = max(item.low for item in hop.source_spec.items)
    return all(item.low > highest_from for item in hop.target_spec.items)


@cache
def load_matrix() -> Matrix:
    """The packaged matrix, read and validated once per process."""
    ref = resources.files("upgrade.compat").joinpath("matrix.yaml")
    with resources.as_file(ref) as path:
        return read_matrix(load_yaml(path), BUILT_IN)


def load_with_overlay(*sites: Path | None) -> Matrix:
    """The packaged matrix with each site file in ``sites`` (None: skipped) laid over it."""
    matrix = load_matrix()
    for site in sites:
        if site is not None:
            matrix = overlay(matrix, load_yaml(site), str(site))
    return matrix


class _Reader:
    """Reads one data file's nodes against the documents it (and the base) define."""

    def __init__(self, documents: dict[str, Document], origin: str) -> None:
        self.documents = documents
        self.origin = origin

    def docs(self, root: MapReader) -> None:
        node = root.get("documents")
        if node is None or node.value is None:
            return
        if not isinstance(node.value, dict):
            raise node.where.error(f"documents must be a mapping, found {node.kind}")
        for name, value in node.value.items():
            d = MapReader(value, _DOC, f"document {name}")
            self.documents[name] = Document(
                name, d.req_str("title"), d.str("repo"), d.str("branch"), d.str("commit"),
                d.str("file"), d.str("url"),
            )

    def cite(self, node: Node, what: str) -> Citation:
        text = as_str(node, what)
        try:
            return parse_citation(text, self.documents)
        except ValueError as exc:
            raise node.where.error(f"{what}: {exc}") from None

    def opt_cite(self, r: MapReader, key: str) -> Citation | None:
        node = r.get(key)
        return None if node is None or node.value is None else self.cite(node, key)

    def spec(self, node: Node, what: str) -> VersionSpec:
        text = as_str(node, what)
        try:
            return VersionSpec.parse(text)
        except ValueError as exc:
            raise node.where.error(f"{what}: {exc}") from None

    def opt_spec(self, r: MapReader, key: str) -> VersionSpec | None:
        node = r.get(key)
        return None if node is None or node.value is None else self.spec(node, key)

    def discrepancy(self, d: MapReader) -> Discrepancy:
        name = d.choice("field", FIELDS, "")
        if not name:
            raise d.where.error(f"a discrepancy needs field: one of {', '.join(FIELDS)}")
        return Discrepancy(
            name, self.spec(d.require("reading"), "reading"),
            self.cite(d.require("source"), "source"), d.str("text"),
        )

    def row(self, r: MapReader, base: Row | None) -> Row:
        source = self.cite(r.require("source"), "source")
        pks = as_version(r.require("pks"), "pks")
        given: dict[str, object] = {"source": source, "origin": self.origin}
        for key in ("nsxt", "opsman", "upgrade_from"):
            spec = self.opt_spec(r, key)
            if spec is not None:
                given[key] = spec
                given[f"{key.removesuffix('_from')}_source"] = (
                    self.opt_cite(r, f"{key.removesuffix('_from')}_source") or source
                )
        for key in ("released", "upgrade_text", "withdrawn", "note"):
            if r.has(key):
                given[key] = r.str(key)
        released = given.get("released")
        if isinstance(released, str) and release_date(released) is None:
            raise r.at("released").error(
                f"released: {released!r} is not a date: write it as the release notes do, "
                '"May 19, 2020" (or "2020-05-19")')
        if r.has("withdrawn_source"):
            given["withdrawn_source"] = self.opt_cite(r, "withdrawn_source")
        if r.has("confirmable"):
            given["confirmable"] = r.bool("confirmable", True)
        if r.has("discrepancies"):
            items = entries(r.list("discrepancies"), ("field", "reading", "text", "source"),
                            "a discrepancy")
            given["discrepancies"] = tuple(self.discrepancy(d) for d in items)
        if given.get("withdrawn") and not given.get("withdrawn_source"):
            raise r.at("withdrawn").error("withdrawn needs withdrawn_source: where it says so")
        if base is not None:
            for name in FIELDS:  # a field the site leaves alone keeps its own citation
                given.setdefault(f"{name.removesuffix('_from')}_source", base.field_source(name))
            if base.origin == BUILT_IN and not set(given) - {"source", "origin", *_SOURCES}:
                raise r.where.error(f"row for PKS {pks} changes nothing: give nsxt, opsman, ...")
            return replace(base, **given)  # type: ignore[arg-type]
        for key in ("nsxt", "opsman"):
            if key not in given:
                raise r.where.error(f"a row for a new PKS release ({pks}) needs {key}:")
        return Row(pks=pks, **given)  # type: ignore[arg-type]

    def hop(self, h: MapReader, product: Product) -> Hop:
        requires: list[tuple[Product, VersionSpec]] = []
        req = h.map("requires", tuple(p.value for p in Product))
        for other in Product:
            spec = self.opt_spec(req, other.value)
            if spec is not None:
                requires.append((other, spec))
        hop = Hop(
            self.spec(h.require("from"), "from"), self.spec(h.require("to"), "to"),
            self.cite(h.require("source"), "source"), tuple(requires),
            h.str("text"), h.str("note"), self.origin,
        )
        if not _goes_up(hop):
            raise h.at("to").error(
                f"{product.label} hop {hop.describe()} does not go up: the to: versions must "
                "be newer than the from: versions (a downgrade is no upgrade; NSX-T 2.x has "
                "no rollback)")
        return hop

    def rules(self, node: MapReader, base: UpgradeRules | None, product: Product
              ) -> UpgradeRules:
        hops = tuple(self.hop(h, product) for h in entries(node.list("hops"), _HOP, "a hop"))
        patches = base.patches if base else None
        if node.has("patches"):
            p = node.map("patches", ("source", "note"))
            patches = self.cite(p.require("source"), "source")
        one_minor = base.one_minor if base else None
        if node.has("one_minor_at_a_time"):
            o = node.map("one_minor_at_a_time", ("text", "source"))
            one_minor = (o.req_str("text"), self.cite(o.require("source"), "source"))
        return UpgradeRules((base.hops if base else ()) + hops, patches, one_minor)


def read_matrix(node: Node, origin: str) -> Matrix:
    """Build a full :class:`Matrix` from a data file's root node."""
    return _read(node, origin, None)


def overlay(base: Matrix, node: Node, origin: str) -> Matrix:
    """``base`` with the site data in ``node`` laid over it."""
    return _read(node, origin, base)


def _read(node: Node, origin: str, base: Matrix | None) -> Matrix:
    root = MapReader(node, _TOP, "the compatibility data")
    _check_schema(root, required=base is None)
    reader = _Reader(dict(base.documents) if base else {}, origin)
    reader.docs(root)
    rows: dict[Version, Row] = {row.pks: row for row in base.rows} if base else {}
    seen: set[Version] = set()
    for r in entries(root.list("pks_matrix", required=base is None), _ROW, "a pks_matrix row"):
        pks = as_version(r.require("pks"), "pks")
        if pks in seen:
            raise r.at("pks").error(f"PKS {pks} has two rows in this file")
        seen.add(pks)
        rows[pks] = reader.row(r, rows.get(pks))
    releases = dict(base.releases) if base else {}
    release_sources = dict(base.release_sources) if base else {}
    rel = root.map("releases", (Product.NSXT.value, Product.OPSMAN.value))
    for product in (Product.NSXT, Product.OPSMAN):
        if not rel.has(product.value) and base is not None:
            continue
        p = rel.map(product.value, ("source", "versions"), required=base is None)
        found = [as_version(n, "versions") for n in p.list("versions", required=True)]
        cite = reader.cite(p.require("source"), "source").render()
        releases[product] = tuple(sorted(set(releases.get(product, ())) | set(found)))
        release_sources[product] = (
            cite if base is None else f"{release_sources.get(product, '')}; {origin}: {cite}"
        )
    ups = root.map("upgrades", (Product.NSXT.value, Product.OPSMAN.value), required=base is None)
    upgrades = dict(base.upgrades) if base else {}
    for product in (Product.NSXT, Product.OPSMAN):
        if ups.has(product.value) or base is None:
            section = ups.map(product.value, _RULES, required=base is None)
            upgrades[product] = reader.rules(section, upgrades.get(product), product)
    ordered = tuple(sorted(rows.values(), key=lambda row: row.pks, reverse=True))
    releases.pop(Product.PKS, None)
    origins = (base.origins if base else ()) + (origin,)
    try:
        return Matrix(ordered, releases, upgrades, release_sources, reader.documents, origins)
    except ValueError as exc:  # pragma: no cover - Matrix validates nothing today
        raise FileError(Path(origin), 1, 1, str(exc)) from None
