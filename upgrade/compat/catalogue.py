"""The catalogue of known releases (``catalogue.yaml``): is a version one the vendor published?

``compat check`` answers an NSX-T or Ops Manager version of a known series by the ranges
the PKS release notes state; this says whether the version is also a release the
vendor's own release notes list, and words the note when it is not.  The catalogue is
the packaged ``catalogue.yaml`` (every Ops Manager release of lines 2.0-2.7, each line
cited) together with the concrete releases the matrix names (``releases:`` of
``matrix.yaml`` and of a site's ``--matrix`` file).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from upgrade.compat.matrix import Matrix
from upgrade.compat.products import Product
from upgrade.compat.sources import Document, parse_citation
from upgrade.core.versions import Version
from upgrade.inputs.yamlio import MapReader, as_version, entries, load_yaml

_TOP = ("schema", "documents", "releases")
_DOC = ("title", "repo", "branch", "commit", "file", "url")
SCHEMA = 1


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Known releases per product, each with the citation of the notes that list it."""

    releases: dict[Product, dict[Version, str]]

    def source(self, product: Product, version: Version) -> str | None:
        """Where ``version`` of ``product`` is listed, or None when it is not."""
        found = self.releases.get(product, {})
        return next((cite for known, cite in found.items() if known == version), None)


@cache
def load_catalogue() -> Catalogue:
    """The packaged catalogue, read and validated once per process."""
    ref = resources.files("upgrade.compat").joinpath("catalogue.yaml")
    with resources.as_file(ref) as path:
        root = MapReader(load_yaml(path), _TOP, "the release catalogue")
    schema = root.require("schema")
    if schema.value != SCHEMA:
        raise schema.where.error(f"the release catalogue is schema {SCHEMA}")
    documents: dict[str, Document] = {}
    node = root.require("documents")
    if not isinstance(node.value, dict):
        raise node.where.error("documents must be a mapping")
    for name, value in node.value.items():
        d = MapReader(value, _DOC, f"document {name}")
        documents[name] = Document(name, d.req_str("title"), d.str("repo"), d.str("branch"),
                                   d.str("commit"), d.str("file"), d.str("url"))
    rel = root.map("releases", (Product.NSXT.value, Product.OPSMAN.value), required=True)
    releases: dict[Product, dict[Version, str]] = {}
    for product in (Product.NSXT, Product.OPSMAN):
        for item in entries(rel.list(product.value), ("source", "versions"), "a release list"):
            cite = parse_citation(item.req_str("source"), documents).render()
            for version in item.list("versions", required=True):
                releases.setdefault(product, {})[as_version(version, "versions")] = cite
    return Catalogue(releases)


def catalogued(matrix: Matrix, product: Product, version: Version) -> bool:
    """True when ``version`` is a known release: in the catalogue or named by the matrix."""
    return matrix.in_catalogue(product, version) or \
        load_catalogue().source(product, version) is not None


def catalogue_note(matrix: Matrix, product: Product, version: Version) -> str | None:
    """A note when ``version`` (of a known series) is not a release the catalogue lists."""
    if catalogued(matrix, product, version):
        return None
    near = matrix.nearest(product, version)
    return (f"{product.label} {version} is not in the catalogue of known releases (the "
            f"{product.label} releases the vendor's release notes list; nearest the data "
            f"names: {', '.join(near)}); it is answered by the version ranges the release "
            "notes state")
