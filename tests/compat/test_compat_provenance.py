"""Every fact in the packaged data says where it comes from, and every cell parses as written."""

from __future__ import annotations

import re

import pytest

from upgrade.compat import load_matrix
from upgrade.compat.matrix import FIELDS, Product
from upgrade.compat.ranges import VersionSpec, parse_item
from upgrade.compat.sources import Citation, Document, parse_citation

DOCS_REPOS = {"pivotal-cf/docs-pks", "pivotal-cf/docs-pcf-install"}
_VERSION_IN_TITLE = re.compile(r"\bv?\d+\.\d+\b")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


def assert_documented(cite: Citation, what: str) -> None:
    """Each part names a document with its version (docs repos: branch and commit) and a place."""
    assert cite.refs, what
    for ref in cite.refs:
        doc = ref.document
        assert doc is not None, f"{what}: {ref.location!r} names no known document"
        assert _VERSION_IN_TITLE.search(doc.title), f"{what}: {doc.title!r} names no version"
        if doc.repo in DOCS_REPOS:
            assert doc.branch and doc.file, f"{what}: {doc.id} lacks branch or file"
            assert _COMMIT.match(ref.commit or doc.commit or ""), f"{what}: {doc.id} commit"
        else:
            assert doc.repo is None and doc.url, f"{what}: {doc.id} is neither a repo nor a page"
        assert ref.location, f"{what}: {doc.id} cited without a line or place"


def test_every_row_field_has_a_documented_source() -> None:
    """Rows: the release's section, each field, withdrawals and discrepancies."""
    for row in load_matrix().rows:
        assert_documented(row.source, f"{row.pks_text} source")
        for name in FIELDS:
            if row.spec(name) is not None:
                assert_documented(row.field_source(name), f"{row.pks_text} {name}")
        if row.withdrawn is not None:
            assert row.withdrawn_source is not None
            assert_documented(row.withdrawn_source, f"{row.pks_text} withdrawn")
        for d in row.discrepancies:
            assert_documented(d.source, f"{row.pks_text} discrepancy {d.field}")
            assert d.source.render() != row.field_source(d.field).render()


def test_every_hop_and_rule_has_a_documented_source() -> None:
    """NSX-T and Ops Manager hops, patch rules and the one-minor advice."""
    matrix = load_matrix()
    for product in (Product.NSXT, Product.OPSMAN):
        rules = matrix.upgrades[product]
        assert rules.hops
        for hop in rules.hops:
            assert_documented(hop.source, f"{product.label} {hop.describe()}")
        assert rules.patches is not None
        assert_documented(rules.patches, f"{product.label} patches")
    advice = matrix.upgrades[Product.OPSMAN].one_minor
    assert advice is not None and "skip minor versions" in advice[0]
    assert_documented(advice[1], "Ops Manager one minor at a time")


def test_every_row_names_its_release_date_and_pks_upgrades_are_cited() -> None:
    """A release date as the notes print it; upgrade_from with the verbatim sentence."""
    for row in load_matrix().rows:
        assert row.released and re.match(r"^[A-Z][a-z]+ \d{1,2}, 20\d\d$", row.released)
        if row.pks.parts != (1, 0, 0):
            assert row.upgrade_from is not None, row.pks_text
        if row.upgrade_text is not None:
            assert "PKS v" in row.upgrade_text or "product_short" in row.upgrade_text


def test_documents_in_docs_repos_pin_a_commit() -> None:
    """The document list itself: every docs-repository entry pins branch, commit and file."""
    docs = load_matrix().documents
    assert {"pks-1.0-rn", "pks-1.1-rn", "pks-1.2-rn", "pks-1.3-rn", "pks-1.4-rn", "pks-1.5-rn"} \
        <= set(docs)
    for doc in docs.values():
        if doc.repo is not None:
            assert doc.repo in DOCS_REPOS
            assert doc.branch and doc.file and _COMMIT.match(doc.commit or "")


def _cells() -> list[str]:
    matrix = load_matrix()
    texts: set[str] = set()
    for row in matrix.rows:
        for name in FIELDS:
            spec = row.spec(name)
            if spec is not None:
                texts.add(spec.text)
        texts.update(d.reading.text for d in row.discrepancies)
    for product in (Product.NSXT, Product.OPSMAN):
        for hop in matrix.upgrades[product].hops:
            texts.update({hop.source_spec.text, hop.target_spec.text})
            texts.update(spec.text for _, spec in hop.requires)
    return sorted(texts)


@pytest.mark.parametrize("text", _cells())
def test_every_verbatim_cell_parses_exactly_as_written(text: str) -> None:
    """Re-parsing gives the same items, each item's text is a piece of the cell in order,
    and nothing but separators (commas, "and", "or") lies between them."""
    spec = VersionSpec.parse(text)
    assert spec.text == text
    rest = text
    for item in spec.items:
        at = rest.index(item.text)
        assert re.fullmatch(r"[\s,]*(?:(?:and|or)\s+)?", rest[:at]), (text, rest[:at])
        assert parse_item(item.text) == item
        rest = rest[at + len(item.text) :]
    assert rest.strip() == ""


@pytest.mark.parametrize(
    ("text", "docs"),
    [
        ("pks-1.2-rn L1124", 1),
        ("pks-1.2-rn@8271b0c4 v1.2.4 snapshot; pks-1.2-upgrade L128", 2),
        ("site policy ticket OPS-42", 0),
    ],
)
def test_citations_parse(text: str, docs: int) -> None:
    """``DOC LOCATION``, ``DOC@COMMIT ...`` and free text for sites."""
    known = {
        "pks-1.2-rn": Document("pks-1.2-rn", "PKS v1.2 release notes", "pivotal-cf/docs-pks",
                               "1.2", "a190865f", "release-notes.html.md.erb"),
        "pks-1.2-upgrade": Document("pks-1.2-upgrade", "PKS v1.2 Upgrading PKS",
                                    "pivotal-cf/docs-pks", "1.2", "a190865f",
                                    "upgrade-pks.html.md.erb"),
    }
    cite = parse_citation(text, known)
    assert sum(1 for r in cite.refs if r.document is not None) == docs
    assert cite.text == text
    if "@8271b0c4" in text:
        assert "1.2@8271b0c4" in cite.render()
    with pytest.raises(ValueError):
        parse_citation(" ; ", known)
