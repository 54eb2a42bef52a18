"""Where a compatibility fact comes from: vendor documents and citations of them.

A citation is written ``DOC LOCATION`` (``pks-1.2-rn L1124``), ``DOC@COMMIT LOCATION``
for a commit other than the document's tip, and several are joined by ``"; "``.  ``DOC``
names an entry of the data's ``documents:``; a part that names none is kept as free text
(a site's own policy may cite a ticket or a page the built-in data does not know).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_REF = re.compile(
    r"^(?P<doc>[A-Za-z0-9][A-Za-z0-9._-]*)(?:@(?P<commit>[0-9a-f]{7,40}))?(?:\s+(?P<loc>.*))?$"
)


@dataclass(frozen=True, slots=True)
class Document:
    """A vendor document: a file on a branch of a docs repository, or a published guide."""

    id: str
    title: str
    repo: str | None = None
    branch: str | None = None
    commit: str | None = None
    file: str | None = None
    url: str | None = None

    def describe(self, commit: str | None = None) -> str:
        """``pivotal-cf/docs-pks 1.2@a190865f release-notes.html.md.erb (PKS v1.2 ...)``."""
        if self.repo is None:
            return self.title
        at = commit or self.commit
        return f"{self.title}, {self.repo} {self.branch}@{at} {self.file}"


@dataclass(frozen=True, slots=True)
class Ref:
    """One cited place: a document (or free text) and a location in it."""

    document: Document | None
    commit: str | None
    location: str

    def render(self) -> str:
        """The reference for people."""
        if self.document is None:
            return self.location
        text = self.document.describe(self.commit)
        return f"{text} {self.location}" if self.location else text


@dataclass(frozen=True, slots=True)
class Citation:
    """One or more references, and the text exactly as the data wrote it."""

    text: str
    refs: tuple[Ref, ...]

    def render(self) -> str:
        """Every reference, joined with ``"; "``."""
        return "; ".join(ref.render() for ref in self.refs)

    @property
    def documented(self) -> bool:
        """True when every part names a known document."""
        return all(ref.document is not None for ref in self.refs)

    def __str__(self) -> str:
        return self.render()


def parse_citation(text: str, documents: Mapping[str, Document]) -> Citation:
    """Read ``"pks-1.2-rn L1124; pks-1.2-upgrade L128"``; raise ``ValueError`` if empty."""
    parts = [p.strip() for p in text.split(";") if p.strip()]
    if not parts:
        raise ValueError("a source must name a document or say where the fact comes from")
    refs = []
    for part in parts:
        match = _REF.match(part)
        doc = documents.get(match.group("doc")) if match else None
        if match is None or doc is None:
            refs.append(Ref(None, None, part))
            continue
        refs.append(Ref(doc, match.group("commit"), (match.group("loc") or "").strip()))
    return Citation(text, tuple(refs))
