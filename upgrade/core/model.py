"""The domain: upgrade units, the inventory that holds them, and the playbook.

Everything here is plain frozen data (strings, numbers, enums, tuples) so it
can cross any boundary: the pure planner and engine, the journal, and, later,
a Temporal workflow's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter

from upgrade.core.versions import Version
from upgrade.core.window import WindowSpec


class UnitKind(StrEnum):
    """What an upgrade unit is."""

    HOST = "host"  #: an ESXi or KVM transport node
    EDGE = "edge"  #: an NSX Edge node, member of one edge cluster
    CONTROLLER = "controller"  #: a node of the central control plane cluster
    MANAGER = "manager"  #: the NSX Manager (management plane)


class Drs(StrEnum):
    """A vCenter cluster's DRS automation level."""

    FULLY_AUTOMATED = "fully_automated"  #: DRS evacuates a host entering maintenance
    MANUAL = "manual"  #: the orchestrator must migrate VMs itself
    OFF = "off"  #: no DRS: the orchestrator must migrate VMs itself


@dataclass(slots=True, unsafe_hash=True)  # not frozen: 300,000 on 100k hosts
class Vm:
    """A virtual machine on a host."""

    id: str
    powered_on: bool = True


_POWERED_ON = attrgetter("powered_on")


@dataclass(slots=True, unsafe_hash=True)  # not frozen: 300,000 on 100k hosts
class Host:
    """A host transport node in a vCenter cluster."""

    id: str
    cluster: str
    vms: tuple[Vm, ...] = ()

    @property
    def running_vms(self) -> tuple[Vm, ...]:
        """The powered-on VMs, which must be evacuated before maintenance."""
        return tuple(filter(_POWERED_ON, self.vms))  # C-level loop: 10,000 hosts x 30 VMs


@dataclass(frozen=True, slots=True)
class Cluster:
    """A vCenter compute cluster."""

    name: str
    drs: Drs
    hosts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EdgeCluster:
    """An NSX edge cluster; its edges are always upgraded one at a time."""

    name: str
    edges: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Durations:
    """How long each operation takes, in seconds (simulation and estimates)."""

    host_upgrade: int = 900
    edge_upgrade: int = 600
    controller_upgrade: int = 600
    manager_upgrade: int = 1200
    vmotion: int = 30
    bundle_upload: int = 1800
    coordinator_upgrade: int = 300
    precheck: int = 60
    postcheck: int = 60

    def upgrade(self, kind: UnitKind) -> int:
        """The upgrade duration of a unit of ``kind``."""
        return {
            UnitKind.HOST: self.host_upgrade,
            UnitKind.EDGE: self.edge_upgrade,
            UnitKind.CONTROLLER: self.controller_upgrade,
            UnitKind.MANAGER: self.manager_upgrade,
        }[kind]


class Severity(StrEnum):
    """How much a pre-check finding matters."""

    WARNING = "warning"  #: blocks until an operator acknowledges its id
    ERROR = "error"  #: always blocks


@dataclass(frozen=True, slots=True)
class Finding:
    """A pre-check result the operator must know about."""

    id: str
    severity: Severity
    message: str
    unit: str | None = None
    acknowledged: bool = False
    #: a warning that is shown but never blocks (acknowledging it only marks it read)
    advisory: bool = False

    @property
    def blocking(self) -> bool:
        """True when this finding stops the upgrade."""
        if self.severity is Severity.ERROR:
            return True
        return not (self.acknowledged or self.advisory)


class FaultKind(StrEnum):
    """Deterministic faults the simulated world can inject."""

    REFUSE = "refuse"  #: the operation is refused when started (transient)
    FAIL = "fail"  #: the operation runs, then ends failed
    TIMEOUT = "timeout"  #: the operation takes three times as long, then succeeds
    HANG = "hang"  #: the operation never finishes until it is started again


class Op(StrEnum):
    """The operations the orchestrator starts and polls (and faults can target)."""

    PRECHECK = "precheck"
    UPLOAD = "upload"
    COORDINATOR = "coordinator"
    ENTER_MAINTENANCE = "enter_maintenance"
    EVACUATE = "evacuate"
    UPGRADE = "upgrade"
    VERIFY = "verify"  #: the unit reports the target version back to the manager
    EXIT_MAINTENANCE = "exit_maintenance"
    #: move the VMs an evacuation took off a host back to it (``restore_vm_placement``)
    RESTORE = "restore_placement"
    POSTCHECK = "postcheck"


#: the old name, kept for readers of inventory faults
FaultOp = Op

#: pseudo-unit ids for the operations that belong to no upgrade unit
#: the longest duration or timeout a file may give, in seconds (7 days): beyond it a
#: number is a typo, and a watch that long on a virtual clock is a runaway
MAX_SECONDS = 7 * 24 * 3600

SYSTEM = "system"
BUNDLE = "bundle"
COORDINATOR = "coordinator"


@dataclass(frozen=True, slots=True)
class Fault:
    """Inject ``kind`` into the first ``times`` attempts of ``op`` on ``unit``."""

    unit: str
    op: Op
    kind: FaultKind
    times: int = 1


_ID = attrgetter("id")


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything the orchestrator knows about the system before it starts."""

    version: Version
    manager: str
    controllers: tuple[str, ...]
    edge_clusters: tuple[EdgeCluster, ...]
    clusters: tuple[Cluster, ...]
    hosts: tuple[Host, ...]
    durations: Durations = field(default_factory=Durations)
    warnings: tuple[Finding, ...] = ()
    errors: tuple[Finding, ...] = ()
    faults: tuple[Fault, ...] = ()
    seed: int = 0
    #: (unit id, version) of the units whose version is not ``version``, sorted by id
    unit_versions: tuple[tuple[str, Version], ...] = ()

    def version_of(self, unit: str) -> Version:
        """The version ``unit`` reports: its own, or the system's ``version``."""
        return dict(self.unit_versions).get(unit, self.version)

    def versions(self) -> dict[str, Version]:
        """Every unit id with the version it reports (one pass, for loops over units)."""
        versions = dict.fromkeys(self.units(), self.version)  # C loop: 100,000 hosts
        versions.update((u, v) for u, v in self.unit_versions if u in versions)
        return versions

    def host(self, host_id: str) -> Host:
        """The host called ``host_id``."""
        return self.host_map[host_id]

    @property
    def host_map(self) -> dict[str, Host]:
        """Hosts by id."""
        return {h.id: h for h in self.hosts}

    def cluster_of(self, host_id: str) -> Cluster:
        """The vCenter cluster holding ``host_id``."""
        cluster = self.host_map[host_id].cluster
        return next(c for c in self.clusters if c.name == cluster)

    def units(self) -> dict[str, UnitKind]:
        """Every upgrade unit id with its kind."""
        out = dict.fromkeys(map(_ID, self.hosts), UnitKind.HOST)  # C loops: 100,000 hosts
        for ec in self.edge_clusters:
            out.update(dict.fromkeys(ec.edges, UnitKind.EDGE))
        out.update(dict.fromkeys(self.controllers, UnitKind.CONTROLLER))
        out[self.manager] = UnitKind.MANAGER
        return out


class Mode(StrEnum):
    """Serial or parallel."""

    SERIAL = "serial"
    PARALLEL = "parallel"


class UpgradeMode(StrEnum):
    """How a host is upgraded."""

    MAINTENANCE = "maintenance"  #: evacuate, enter maintenance mode, upgrade, exit
    IN_PLACE = "in_place"  #: upgrade without maintenance mode (KVM, or no VMs)


class OnError(StrEnum):
    """What a failed unit does to the run."""

    PAUSE = "pause"  #: finish what is in flight, then wait for an operator (exit 3)
    ABORT = "abort"  #: finish what is in flight, then stop as failed (exit 1)


@dataclass(frozen=True, slots=True)
class HostGroupSpec:
    """A host group named in the playbook."""

    name: str
    hosts: tuple[str, ...]
    #: (line, column) of each host in the playbook, for error messages
    positions: tuple[tuple[int, int], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class HostSettings:
    """The playbook's ``hosts:`` section."""

    mode: Mode = Mode.SERIAL
    max_parallel: int = 5
    max_parallel_groups: int = 5
    upgrade_mode: UpgradeMode = UpgradeMode.MAINTENANCE
    pause_after_each_group: bool = False
    groups: tuple[HostGroupSpec, ...] | None = None
    #: move the VMs the tool moved back home once their host is upgraded (DRS not fully auto)
    restore_vm_placement: bool = False


@dataclass(frozen=True, slots=True)
class Canary:
    """The playbook's ``canary:``: the first ``hosts`` hosts alone, then a pause or a watch."""

    hosts: int
    #: seconds to watch after the canary before going on; None: pause until ``resume``
    watch_s: int | None = None


@dataclass(frozen=True, slots=True)
class Bundle:
    """The upgrade bundle (.mub): a local file or a URL the manager fetches."""

    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    #: (line, column) of ``sha256`` in the playbook, for the mismatch message
    sha256_at: tuple[int, int] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class InventorySpec:
    """Where the inventory comes from: ``adapter`` plus its settings."""

    adapter: str
    source: str | None = None
    manager: str | None = None
    vcenter: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class Compatibility:
    """What runs on top of NSX-T and must stay supported."""

    pks: Version | None = None
    opsman: Version | None = None
    #: a site's own compatibility rows and hops, relative to the playbook (``--matrix``)
    matrix: str | None = None
    #: refuse where vendor documents disagree (``--strict``)
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-operation timeouts in seconds; None means a default from the durations."""

    host_upgrade: int | None = None
    edge_upgrade: int | None = None
    controller_upgrade: int | None = None
    manager_upgrade: int | None = None
    maintenance: int | None = None
    bundle_upload: int | None = None
    coordinator_upgrade: int | None = None


@dataclass(frozen=True, slots=True)
class Playbook:
    """A validated playbook."""

    name: str
    target_version: Version
    bundle: Bundle
    inventory: InventorySpec
    compatibility: Compatibility = field(default_factory=Compatibility)
    acknowledge: tuple[str, ...] = ()
    hosts: HostSettings = field(default_factory=HostSettings)
    edges_mode: Mode = Mode.PARALLEL
    on_error: OnError = OnError.PAUSE
    retries: int = 2
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: the maintenance window (None: any time)
    window: WindowSpec | None = None
    canary: Canary | None = None
    #: failure budget of the hosts phase, percent of its hosts (0: the first failure stops)
    max_fail_hosts_percent: int = 0
    #: where the playbook was read from (for resolving relative paths)
    path: str = ""
