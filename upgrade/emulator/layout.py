"""The emulated Upgrade Coordinator's data: components, groups, settings, bundles, the plan.

Plain dataclasses, persisted as JSON by :class:`~upgrade.emulator.site.Site`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from upgrade.core.model import Inventory, UnitKind

#: the upgrade component types VMware's API knows (its ``component_type`` enum), in the
#: 2.1-2.3 coordinator's order; a site serves those of its hop's flow, in the flow's order
#: (:attr:`upgrade.emulator.site.Site.components`)
COMPONENTS = ("HOST", "EDGE", "CCP", "MP")
COMPONENT_OF = {UnitKind.HOST: "HOST", UnitKind.EDGE: "EDGE", UnitKind.CONTROLLER: "CCP",
                UnitKind.MANAGER: "MP"}
#: the real product upgrades at most 5 groups, and 5 units of a group, at once
MAX_PARALLEL = 5
#: the NSX-T API versions the emulator speaks (``emulate nsxt --api-version``)
API_VERSIONS = ("2.3", "2.5")
#: ``/node/services/{name}/status`` exists for these services (VMware's SDK stubs, per version)
SERVICES_23 = ("cluster_manager", "cm-inventory", "http", "install-upgrade", "liagent",
               "manager", "mgmt-plane-bus", "node-mgmt", "nsx-message-bus",
               "nsx-upgrade-agent", "ntp", "search", "snmp", "ssh", "syslog", "telemetry",
               "ui-service")
SERVICES = {"2.3": SERVICES_23,
            "2.5": (*SERVICES_23, "controller", "migration-coordinator", "node-stats",
                    "nsx-platform-client", "policy")}
_NAMESPACE = uuid.UUID("3c1d1f0e-6a55-4d8a-9a43-2c8f0b7d5e21")

PlanState = Literal["idle", "running", "pausing", "paused"]


def stable_id(kind: str, name: str) -> str:
    """A UUID that is the same for the same name every time (units, groups, bundles)."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


class ApiError(Exception):
    """An NSX error answer: HTTP status, NSX ``error_code`` and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Group:
    """An upgrade-unit group; ``units`` holds unit names (the inventory's ids)."""

    id: str
    name: str
    type: str
    units: list[str]
    parallel: bool = True
    enabled: bool = True
    extended: list[dict[str, str]] = field(default_factory=list)
    revision: int = 0


@dataclass
class Settings:
    """A component's plan settings."""

    parallel: bool = True
    pause_on_error: bool = True
    pause_after_each_group: bool = False


@dataclass
class Bundle:
    """An accepted bundle upload and the world's upload attempt that carries it."""

    id: str
    name: str
    url: str | None
    size: int
    attempt: int
    #: cancelled while uploading (2.5.1's ``?action=cancel_upload``)
    cancelled: bool = False


@dataclass
class Plan:
    """The coordinator's plan run: the component it works on and whether it is paused."""

    component: str | None = None
    state: PlanState = "idle"
    done_groups: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def default_groups(inventory: Inventory, components: tuple[str, ...] = COMPONENTS
                   ) -> list[Group]:
    """One host group per cluster, one edge group per edge cluster, controllers, manager:
    those of ``components`` (the flow's component types), in their order."""
    groups = [Group(stable_id("group", f"HOST:{c.name}"), c.name, "HOST", list(c.hosts),
                    extended=[{"key": "upgrade_mode", "value": "maintenance_mode"}])
              for c in inventory.clusters if c.hosts]
    groups += [Group(stable_id("group", f"EDGE:{e.name}"), e.name, "EDGE", list(e.edges),
                     parallel=False) for e in inventory.edge_clusters if e.edges]
    groups.append(Group(stable_id("group", "CCP:controllers"), "controllers", "CCP",
                        list(inventory.controllers)))
    groups.append(Group(stable_id("group", "MP:manager"), "manager", "MP", [inventory.manager],
                        parallel=False))
    return sorted((g for g in groups if g.type in components),
                  key=lambda g: components.index(g.type))
