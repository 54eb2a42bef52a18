"""Read and validate a journey file (DESIGN section 9); every error names FILE:LINE:COL.

```yaml
name: dc-berlin-to-1.3.5
site: upgrade.yaml               # the playbook of the NSX-T runs (target_version set per hop)
from: {pks: "1.1.4", nsxt: "2.1.0.0", opsman: "2.1.3"}   # or opsman: {url: https://opsman}
to:   {pks: "1.3.5", nsxt: "2.3.1.0"}
bundles: {"2.2.0.0": {path: b/nsx-2.2.mub, sha256: "..."}, "2.3.1.0": {url: "https://..."}}
```

Bundle keys are versions compared as versions (``2.2`` = ``2.2.0.0``).  Paths are relative
to the journey file.  With ``opsman: {url: ...}`` the Ops Manager and PKS versions are read
from Ops Manager (``pks`` may then be left out) and every gate is confirmed from it; Ops
Manager 2.x reports only its minor release (``2.3-build.123``), so ``opsman: {url: ...,
version: "2.3.1"}`` names the patch (the reading must fit it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from upgrade.core.versions import Version
from upgrade.inputs.yamlio import NAME_PATTERN, NAME_RULE, MapReader, Where, as_id, load_yaml

_TOP = ("name", "site", "from", "to", "bundles")
_OPSMAN = ("url", "ca_bundle", "insecure", "version")


@dataclass(frozen=True, slots=True)
class OpsmanSource:
    """Where Ops Manager answers, and how its certificate is checked."""

    url: str
    ca_bundle: Path | None = None
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One NSX-T release's upgrade bundle: a local file or a URL, and its sha256."""

    version: Version
    path: Path | None
    url: str | None
    sha256: str | None
    where: Where
    sha_where: Where | None


@dataclass(frozen=True, slots=True)
class JourneySpec:
    """A validated journey file."""

    name: str
    path: Path
    site: Path
    pks: Version | None
    nsxt: Version
    opsman: Version | None
    opsman_source: OpsmanSource | None
    goal_pks: Version
    goal_nsxt: Version
    goal_opsman: Version | None
    bundles: tuple[BundleEntry, ...]
    #: where ``bundles`` is written (or the file's start when it is absent)
    bundles_where: Where
    from_where: Where

    def bundle_for(self, version: Version) -> BundleEntry | None:
        """The bundle of NSX-T ``version`` (compared as versions), if the file names one."""
        return next((b for b in self.bundles if b.version == version), None)


def load_journey(path: Path) -> JourneySpec:
    """Read ``path``; a FileError (exit 2, FILE:LINE:COL) for anything wrong in it."""
    root = MapReader(load_yaml(path), _TOP, "the journey")
    base = path.parent
    name = as_id(root.require("name"), "name", NAME_PATTERN, NAME_RULE)
    site_text = root.str("site", required=True)
    assert site_text is not None
    site = base / site_text
    if not site.is_file():
        raise root.at("site").error(f"site playbook {site} does not exist (paths are relative "
                                    "to the journey file)")
    start = root.map("from", ("pks", "nsxt", "opsman"), required=True)
    nsxt = start.version("nsxt", required=True)
    assert nsxt is not None
    source: OpsmanSource | None = None
    opsman: Version | None = None
    node = start.get("opsman")
    if node is not None and isinstance(node.value, dict):
        om = start.map("opsman", _OPSMAN)
        url = om.str("url", required=True)
        assert url is not None
        if not url.startswith(("https://", "http://")):
            raise om.at("url").error(f"Ops Manager url must start with https:// (found {url!r})")
        ca = om.str("ca_bundle")
        if ca is not None and not (base / ca).is_file():
            raise om.at("ca_bundle").error(f"CA bundle {base / ca} does not exist")
        source = OpsmanSource(url, base / ca if ca else None, om.bool("insecure", False))
        opsman = om.version("version")
    else:
        opsman = start.version("opsman")
    pks = start.version("pks", required=source is None)
    goal = root.map("to", ("pks", "nsxt", "opsman"), required=True)
    goal_pks, goal_nsxt = goal.version("pks", required=True), goal.version("nsxt", required=True)
    assert goal_pks is not None and goal_nsxt is not None
    bundles, bundles_where = _bundles(root, base)
    return JourneySpec(name, path, site, pks, nsxt, opsman, source, goal_pks, goal_nsxt,
                       goal.version("opsman"), bundles, bundles_where, start.where)


def _bundles(root: MapReader, base: Path) -> tuple[tuple[BundleEntry, ...], Where]:
    node = root.get("bundles")
    where = root.node.key_where["bundles"] if root.node.key_where and root.has("bundles") \
        else root.where
    if node is None or node.value is None:
        return (), where
    if not isinstance(node.value, dict):
        raise node.where.error(f"bundles must map NSX-T versions to bundles, found {node.kind}")
    found: list[BundleEntry] = []
    keys = node.key_where or {}
    for key, value in node.value.items():
        at = keys.get(key, value.where)
        try:
            version = Version.parse(key)
        except ValueError as exc:
            raise at.error(f"bundles: {exc}") from None
        if any(b.version == version for b in found):
            raise at.error(f"bundles: NSX-T {version} is named twice (versions compare as "
                           "versions: 2.2 = 2.2.0.0)")
        b = MapReader(value, ("path", "url", "sha256"), f"the bundle of NSX-T {key}")
        path_text, url = b.str("path"), b.str("url")
        if bool(path_text) == bool(url):
            raise b.where.error(f"the bundle of NSX-T {key} needs exactly one of path (a local "
                                ".mub file) or url")
        bundle_path = base / path_text if path_text else None
        if bundle_path is not None and not bundle_path.is_file():
            raise b.at("path").error(f"bundle file {bundle_path} does not exist (paths are "
                                     "relative to the journey file)")
        sha = b.str("sha256")
        if sha is not None and not (len(sha) == 64 and all(c in "0123456789abcdefABCDEF"
                                                           for c in sha)):
            raise b.at("sha256").error("sha256 must be 64 hexadecimal characters (what "
                                       "`sha256sum BUNDLE` prints first)")
        found.append(BundleEntry(version, bundle_path, url, sha.lower() if sha else None,
                                 b.where, b.at("sha256") if b.has("sha256") else None))
    return tuple(found), where
