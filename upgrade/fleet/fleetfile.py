"""Read and validate ``FLEET.yaml`` (DESIGN section 8): the sites, the policy, the cluster.

```yaml
name: fleet-2026-q4
sites:                      # state_dir optional: .nsxt-upgrade/<fleet>/<site> beside this file
  - {name: dc-berlin, playbook: berlin/upgrade.yaml}
  - {name: dc-paris, playbook: paris/upgrade.yaml, state_dir: /var/lib/nsxt/paris, speed: 1}
max_parallel_sites: 10
stop_after_failed_sites: 1  # no new site starts once this many failed
speed: 1                    # simulated seconds per real second (rehearsals: 600)
temporal: {address: "localhost:7233", namespace: default, task_queue: nsxt-upgrade,
           tls: {ca: ca.pem, cert: client.pem, key: client.key, server_name: temporal.example},
           activity_timeout_s: 120, activity_attempts: 20}
```
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from upgrade.inputs.yamlio import MapReader, entries, load_yaml

_TOP = ("name", "sites", "max_parallel_sites", "stop_after_failed_sites", "speed", "temporal")
_SITE = ("name", "playbook", "state_dir", "speed")
_TEMPORAL = ("address", "namespace", "task_queue", "tls", "activity_timeout_s",
             "activity_attempts", "history_limit")
_TLS = ("ca", "cert", "key", "server_name")
#: site and fleet names go into workflow ids and directory names
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS (and mutual TLS) towards the Temporal frontend; paths are absolute."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None


@dataclass(frozen=True, slots=True)
class TemporalSettings:
    """Where the Temporal cluster is and how the site workflows use it."""

    address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = "nsxt-upgrade"
    tls: Tls | None = None
    #: one adapter start or poll; longer and Temporal retries it (a worker died)
    activity_timeout_s: int = 120
    activity_attempts: int = 20
    #: a site workflow run continues as new once its history holds this many events (1,000:
    #: a 10,000-host run replays in about a second; 4,000 took three; bench_fleet measures)
    history_limit: int = 1000


@dataclass(frozen=True, slots=True)
class Site:
    """One NSX-T site: its playbook and its state directory (both absolute)."""

    name: str
    playbook: Path
    state_dir: Path
    speed: float


@dataclass(frozen=True, slots=True)
class Fleet:
    """A validated fleet file."""

    name: str
    path: Path
    sites: tuple[Site, ...]
    max_parallel_sites: int = 10
    stop_after_failed_sites: int = 1
    temporal: TemporalSettings = field(default_factory=TemporalSettings)

    def workflow_id(self, site: Site) -> str:
        """The site's workflow id: the same every time, so a second run attaches."""
        return f"nsxt-upgrade/{self.name}/{site.name}"

    @property
    def payload_dir(self) -> Path:
        """Where payloads too big for Temporal are kept by content hash (:mod:`.codec`)."""
        return self.path.parent / ".nsxt-upgrade" / ".payloads" / self.name

    def site(self, name: str) -> Site | None:
        """The site called ``name``."""
        return next((s for s in self.sites if s.name == name), None)


def load_fleet(path: Path, playbooks: bool = True) -> Fleet:
    """Read ``path``; invalid input raises FileError (``FILE:LINE:COL``, exit 2).

    ``playbooks=False`` leaves the sites' playbooks unchecked (``fleet status`` and ``fleet
    pause`` need only the names and the server).
    """
    root = MapReader(load_yaml(path), _TOP, "the fleet file")
    name = root.req_str("name")
    if not NAME.match(name):
        raise root.at("name").error(_bad_name("fleet name", name))
    base = path.parent.resolve()
    speed = _speed(root, 1.0)
    sites: list[Site] = []
    nodes = root.list("sites", required=True)
    if not nodes:
        raise root.at("sites").error("a fleet needs at least one site")
    for s in entries(nodes, _SITE, "a site"):
        site_name = s.req_str("name")
        if not NAME.match(site_name):
            raise s.at("name").error(_bad_name("site name", site_name))
        if any(x.name == site_name for x in sites):
            raise s.at("name").error(f"site {site_name!r} is named twice")
        playbook = base / s.req_str("playbook")
        if playbooks:
            _check_playbook(s, playbook)
        state = s.str("state_dir")
        state_dir = base / state if state else base / ".nsxt-upgrade" / name / site_name
        other = next((x for x in sites if x.state_dir.resolve() == state_dir.resolve()), None)
        if other is not None:
            raise (s.at("state_dir") if state else s.at("name")).error(
                f"state dir {state_dir} is already site {other.name!r}'s: two sites may "
                "never share one (each keeps its world and journal there)")
        sites.append(Site(site_name, playbook, state_dir, _speed(s, speed)))
    t = root.map("temporal", _TEMPORAL)
    tls = None
    if t.has("tls"):
        tr = t.map("tls", _TLS)
        files = {}
        for key in ("ca", "cert", "key"):
            given = tr.str(key)
            if given is not None and not (base / given).is_file():
                raise tr.at(key).error(f"{key} file {base / given} does not exist")
            files[key] = str(base / given) if given is not None else None
        if bool(files["cert"]) != bool(files["key"]):
            raise tr.where.error("tls needs both cert and key for a client certificate, "
                                 "or neither")
        tls = Tls(files["ca"], files["cert"], files["key"], tr.str("server_name"))
    temporal = TemporalSettings(
        address=t.str("address") or "localhost:7233",
        namespace=t.str("namespace") or "default",
        task_queue=t.str("task_queue") or "nsxt-upgrade",
        tls=tls,
        activity_timeout_s=t.int("activity_timeout_s", 120, low=1, high=24 * 3600),
        activity_attempts=t.int("activity_attempts", 20, low=1, high=1000),
        history_limit=t.int("history_limit", 1000, low=100, high=10_000),
    )
    return Fleet(
        name=name, path=path.resolve(), sites=tuple(sites),
        max_parallel_sites=root.int("max_parallel_sites", 10, low=1, high=1000),
        stop_after_failed_sites=root.int("stop_after_failed_sites", 1, low=1, high=1000),
        temporal=temporal,
    )


#: the range of ``speed``, as ``--speed`` takes it
SPEED_RANGE = (0.001, 1_000_000.0)


def _check_playbook(site: MapReader, playbook: Path) -> None:
    if playbook.is_file():
        return
    where = site.at("playbook")
    if playbook.is_dir():
        raise where.error(f"playbook {playbook} is a directory; name the playbook file in it")
    if playbook.exists():
        raise where.error(f"playbook {playbook} is not a regular file")
    raise where.error(
        f"playbook {playbook} does not exist (paths are relative to the fleet file)")


def _speed(reader: MapReader, default: float) -> float:
    node = reader.get("speed")
    if node is None or node.value is None:
        return default
    value = node.value
    low, high = SPEED_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or not low <= value <= high:
        shown = node.raw if node.raw is not None else node.kind
        raise node.where.error(f"speed must be a number from {low:g} to {high:,.0f} "
                               f"(simulated seconds per real second), found {shown}")
    return float(value)


def _bad_name(what: str, name: str) -> str:
    return (f"{what} {name!r} may hold only letters, digits, '.', '_' and '-' (it names a "
            "Temporal workflow and a directory), starting with a letter or digit")

