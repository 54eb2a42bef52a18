"""The emulated NSX Manager: the simulated world plus what the Upgrade Coordinator keeps.

The world (:class:`~upgrade.sim.world.World`) knows units, versions and
operations; the site adds the coordinator's own state: upgrade-unit groups and
their order, plan settings, uploaded bundles, the EULA, the plan's progress and
the upgrade history.  Both live in the state directory's ``world.sqlite`` (the
site's part as one JSON document under the ``emulator`` meta key) and are
written after every change, so a killed emulator loses nothing.

Time is a :class:`~upgrade.clock.RealClock` that starts where the stored world
stopped; the clock is stored before every answer and a few times a second, so
a killed and restarted emulator continues where it was (an upload at 70% stays
at 70%) instead of rewinding to the last change.  Bringing the site to now is
the coordinator's job (:func:`upgrade.emulator.coordinator.sync`): the site
knows nothing of the plan scheduler.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from upgrade.clock import RealClock
from upgrade.compat.flows import FlowEntry, load_flows, no_flow_reason
from upgrade.core.engine.messages import OpState
from upgrade.core.model import BUNDLE, COORDINATOR, SYSTEM, Inventory, Op
from upgrade.core.versions import Version
from upgrade.emulator.layout import (
    API_VERSIONS,
    COMPONENT_OF,
    COMPONENTS,
    ApiError,
    Bundle,
    Group,
    Plan,
    Settings,
    default_groups,
    stable_id,
)
from upgrade.errors import AdapterError, InputError
from upgrade.inputs.inventory import load_inventory
from upgrade.sim import ops
from upgrade.sim.store import FILENAME, WorldStore
from upgrade.sim.world import World

__all__ = ["COMPONENTS", "ApiError", "Bundle", "Group", "Phase", "Settings", "Site", "stable_id"]

#: after its upgrade ends the manager reports the new version but its services need this long
SERVICES_WARMUP_S = 120.0
#: real seconds between two saves of the clock alone (each answer saves it too)
CLOCK_SAVE_S = 0.25
#: the bundle id that means the most recent upload, wherever a bundle id goes.  VMware's
#: API reference and SDK define ``bundle-id`` as a plain string and name no such id, but
#: VMware's own client relies on it: ansible-for-nsxt's ``nsxt_upgrade_upload_mub`` polls
#: ``/upgrade/bundles/latest/upload-status`` after its upload (``bundle_id = 'latest'``,
#: the answer's ``bundle_id`` commented out; vmware/ansible-for-nsxt
#: plugins/modules/nsxt_upgrade_upload_mub.py), so NSX-T answers it.  Our client never
#: uses it (it keeps the id the manager gave it).
LATEST = "latest"
#: the copy of the inventory in the state dir (what ``sim show`` reads)
INVENTORY_COPY = "inventory.yaml"
_META_KEY = "emulator"
#: how the manager's own API fares during its upgrade
Phase = Literal["up", "stopping", "down", "starting", "warming"]


class Site:
    """The emulated manager's whole state; every public method is one API operation."""

    def __init__(self, state_dir: Path, world: World, store: WorldStore, speed: float,
                 api: str = "2.3") -> None:
        if api not in API_VERSIONS:
            raise InputError(f"--api-version must be one of {', '.join(API_VERSIONS)}, "
                             f"not {api!r}")
        #: the NSX-T API version served: "2.3" exactly, or "2.5" (2.5.1's additions too)
        self.api = api
        self.state_dir = state_dir
        self.world = world
        self.inventory = world.inventory
        self.store = store
        self.clock = RealClock.starting_at(world.time, speed)
        flow = flow_of(self.inventory, Version.parse(world.target))
        #: the flow of the emulated hop (``upgrade/compat/flows.yaml``): its id, and the
        #: coordinator's component types in its order (2.4+: no CCP, the controllers are
        #: merged into the manager)
        self.flow_id = flow.id
        self.components = flow.components()
        #: the upgrade units: every unit of a component the flow has (merged units are none)
        self.unit_ids = {name: stable_id("unit", name) for name, u in world.units.items()
                         if COMPONENT_OF[u.kind] in self.components}
        self.unit_names = {uid: name for name, uid in self.unit_ids.items()}
        #: every unit of the world by component (what :meth:`exclusive` looks through)
        self._units_by_component: dict[str, list[str]] = {}
        for name, record in world.units.items():
            self._units_by_component.setdefault(COMPONENT_OF[record.kind], []).append(name)
        self.groups = default_groups(self.inventory, self.components)
        self.settings = {c: Settings() for c in COMPONENTS}
        self.bundles: list[Bundle] = []
        self.eula_accepted = False
        self.plan = Plan()
        self.history: list[dict[str, Any]] = []
        #: the versions each component may be upgraded from (``/upgrade/version-whitelist``)
        self.whitelist = {c: [str(self.inventory.version)] for c in self.components}
        #: API requests answered since the emulator started (it says so when it stops)
        self.answered = 0
        self._saved = ""
        #: the encoded configuration part of the site's document (see :meth:`save`)
        self._config: dict[str, str] | None = None
        #: a restarted site looks for the upgrade's success once, whatever completed
        self._success_unchecked = True
        self._clock_saved = time.monotonic()
        row = store.db.execute("SELECT value FROM meta WHERE key=?", (_META_KEY,)).fetchone()
        if row is not None:
            self._restore(json.loads(row[0]))

    @classmethod
    def open(cls, state_dir: Path, inventory_file: Path, target: Version, speed: float,
             api: str = "2.3") -> Site:
        """The site kept in ``state_dir``: created from ``inventory_file`` on first use,
        speaking NSX-T API version ``api``.  A new site whose hop (the inventory's version
        to ``target``) the flow data holds no order for is refused before anything is
        written (:class:`InputError`, naming the known flows)."""
        if not WorldStore.exists(state_dir):
            flow_of(load_inventory(inventory_file), target)
        state_dir.mkdir(parents=True, exist_ok=True)
        store = WorldStore(state_dir / FILENAME)
        has_world = store.db.execute("SELECT 1 FROM meta WHERE key='state'").fetchone()
        copy = state_dir / INVENTORY_COPY
        if not (copy.exists() and copy.resolve() == inventory_file.resolve()):
            if has_world and copy.exists() and copy.read_bytes() != inventory_file.read_bytes():
                store.close()
                raise InputError(f"{state_dir} holds a world made from another inventory "
                                 f"({copy}); use a new --state-dir for {inventory_file}")
            shutil.copyfile(inventory_file, copy)
        inventory = load_inventory(copy)
        if has_world:
            world = store.load(inventory)
        else:
            world = World(inventory, target)
            store.create(world)
        site = cls(state_dir, world, store, speed, api)
        site.save()
        return site

    def served(self, component: str) -> bool:
        """True when the flow has ``component`` (2.4+: CCP is no component)."""
        return component in self.components

    # -- persistence --------------------------------------------------------------------------

    def _restore(self, doc: dict[str, Any]) -> None:
        self.groups = [Group(**g) for g in doc["groups"]]
        self.settings = {c: Settings(**s) for c, s in doc["settings"].items()}
        self.bundles = [Bundle(**b) for b in doc["bundles"]]
        self.eula_accepted = doc["eula_accepted"]
        self.plan = Plan(**doc["plan"])
        self.history = doc["history"]
        self.whitelist = {**self.whitelist, **doc.get("whitelist", {})}

    def save(self, *, clock: bool = False, changed: bool = False) -> None:
        """Write what changed: the site's document (if it changed), then the world.

        ``changed`` says the coordinator's configuration (groups, settings, bundles, the
        EULA, whitelists) may have changed: an API request other than a GET, which are the
        only ways it changes; without it that part is the one encoded last time (a site
        of a thousand hosts re-encoded it several hundred times a second).  The plan and
        the history, which time moves, are encoded every time.

        The clock alone is written when ``clock`` is true (before an answer leaves: what a
        client saw never rewinds) or when it was last written ``CLOCK_SAVE_S`` ago, so that
        a killed emulator continues where it was, not where the last operation started.
        """
        if changed or self._config is None:
            self._config = {
                "groups": _encode([vars(g) for g in self.groups]),
                "settings": _encode({c: vars(s) for c, s in self.settings.items()}),
                "bundles": _encode([vars(b) for b in self.bundles]),
                "eula_accepted": _encode(self.eula_accepted),
                "whitelist": _encode(self.whitelist),
            }
        parts = {**self._config, "plan": _encode(vars(self.plan)),
                 "history": _encode(self.history)}
        # the JSON document json.dumps(..., sort_keys=True) made of the same values
        doc = "{" + ", ".join(f'"{key}": {parts[key]}' for key in sorted(parts)) + "}"
        if doc != self._saved:
            self.store.db.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (_META_KEY, doc))
            self._saved = doc
        due = clock or time.monotonic() - self._clock_saved >= CLOCK_SAVE_S
        self.store.flush(self.world, force=due)
        if due:
            self._clock_saved = time.monotonic()

    def close(self) -> None:
        """Save (the clock too) and close the store."""
        self.save(clock=True, changed=True)
        self.store.close()

    @property
    def v25(self) -> bool:
        """True when the emulator speaks 2.5 (2.5.1's additions to the 2.3 API)."""
        return self.api == "2.5"

    # -- time -----------------------------------------------------------------------------

    def manager_phase(self, now: float) -> Phase:
        """Where the manager's own API stands during its upgrade (the 503, the outage, ...)."""
        rec = self.world.ops.get((self.inventory.manager, Op.UPGRADE.value))
        if rec is None:
            return "up"
        if rec.end is not None and rec.end <= now:
            return "warming" if rec.ok and now < rec.end + SERVICES_WARMUP_S else "up"
        if ops.manager_down(self.world, now):
            return "down"
        return "stopping" if now < rec.start + ops.MANAGER_OUTAGE_FROM_S else "starting"

    # -- queries --------------------------------------------------------------------------

    def state(self, op: Op, unit: str, now: float) -> tuple[OpState, str]:
        """The world's state of ``op`` on ``unit``."""
        return self.world.status(op, unit, now)

    def component(self, unit: str) -> str:
        """HOST, EDGE, CCP or MP."""
        return COMPONENT_OF[self.world.units[unit].kind]

    def component_groups(self, component: str) -> list[Group]:
        """The groups of ``component`` in plan order."""
        return [g for g in self.groups if g.type == component]

    def component_units(self, component: str) -> list[str]:
        """Every unit of ``component``, in plan order."""
        return [u for g in self.component_groups(component) for u in g.units]

    def group(self, group_id: str) -> Group:
        """The group ``group_id``; 404 when there is none."""
        for g in self.groups:
            if g.id == group_id:
                return g
        raise ApiError(404, 202, f"upgrade unit group {group_id} not found")

    def unit_name(self, unit_id: str) -> str:
        """The unit called ``unit_id`` (its UUID or its display name); 404 when unknown."""
        if unit_id in self.unit_names:
            return self.unit_names[unit_id]
        if unit_id in self.unit_ids:
            return unit_id
        raise ApiError(404, 202, f"upgrade unit {unit_id} not found")

    def group_of(self, unit: str) -> Group:
        """The group holding ``unit``."""
        return next(g for g in self.groups if unit in g.units)

    def fraction(self, op: Op, unit: str, now: float) -> float:
        """How far a running operation is, 0..1."""
        rec = self.world.ops.get((unit, op.value))
        if rec is None or rec.end is None or rec.end <= rec.start:
            return 0.0
        return min(1.0, max(0.0, (now - rec.start) / (rec.end - rec.start)))

    def uc_done(self, now: float) -> bool:
        """True once the Upgrade Coordinator runs the target version."""
        return self.state(Op.COORDINATOR, COORDINATOR, now)[0] == "done"

    # -- operations -----------------------------------------------------------------------

    def start_check(self, op: Op, now: float) -> None:
        """Run the pre- or post-upgrade checks (a no-op while they run)."""
        if self.state(op, SYSTEM, now)[0] != "running":
            self.start(op, SYSTEM, now)

    def add_bundle(self, name: str, url: str | None, size: int, now: float) -> Bundle:
        """Accept an uploaded (or fetched) bundle; its upload and verification take time."""
        current_cancelled = bool(self.bundles) and self.bundles[-1].cancelled
        if self.state(Op.UPLOAD, BUNDLE, now)[0] == "running" and not current_cancelled:
            current = self.bundles[-1].id if self.bundles else "unknown"
            raise ApiError(400, 30110, "an upgrade bundle upload is already in progress "
                           f"(bundle id {current}); wait for it or poll its upload-status")
        self.start(Op.UPLOAD, BUNDLE, now)
        attempt = self.world.attempts.get((BUNDLE, Op.UPLOAD.value), 0)
        bundle = Bundle(stable_id("bundle", f"{len(self.bundles) + 1}:{name}"), name, url, size,
                        attempt)
        self.bundles.append(bundle)
        return bundle

    def bundle(self, bundle_id: str) -> Bundle:
        """The bundle ``bundle_id`` (``latest``: the most recent upload); 404 when unknown."""
        if bundle_id == LATEST:
            if not self.bundles:
                raise ApiError(404, 202, "no upgrade bundle has been uploaded yet (bundle id "
                               "latest means the most recent upload)")
            return self.bundles[-1]
        for b in self.bundles:
            if b.id == bundle_id:
                return b
        raise ApiError(404, 202, f"upgrade bundle {bundle_id} not found")

    def bundle_status(self, bundle: Bundle, now: float) -> tuple[str, float, str]:
        """(UPLOADING | VERIFYING | SUCCESS | FAILED, percent, detailed status)."""
        if bundle.cancelled:
            return "FAILED", 0.0, f"the upload of {bundle.name} was cancelled"
        if bundle.attempt != self.world.attempts.get((BUNDLE, Op.UPLOAD.value), 0):
            return "FAILED", 0.0, "superseded by a later upload"
        state, detail = self.state(Op.UPLOAD, BUNDLE, now)
        if state == "done":
            return "SUCCESS", 100.0, f"{bundle.name} uploaded and verified"
        if state == "failed":
            return "FAILED", 100.0, f"Bundle verification failed for {bundle.name}: {detail}"
        if state == "not_started":
            return "FAILED", 0.0, "the upload was interrupted; upload the bundle again"
        done = self.fraction(Op.UPLOAD, BUNDLE, now)
        if done < 0.7:
            return "UPLOADING", round(done / 0.7 * 100, 1), f"uploading {bundle.name}"
        return "VERIFYING", 100.0, f"verifying {bundle.name}"

    def cancel_upload(self, bundle: Bundle, now: float) -> None:
        """``?action=cancel_upload`` (2.5.1): only while the bundle is still uploading (not
        while it is verified).  The simulated transfer is not stopped: a bundle uploaded
        next carries on from it (the world has one upload operation at a time)."""
        if self.bundle_status(bundle, now)[0] != "UPLOADING":
            raise ApiError(400, 30111, f"upgrade bundle {bundle.id} is not uploading: only an "
                           "upload in progress can be cancelled")
        bundle.cancelled = True

    def last_good_bundle(self, now: float) -> Bundle | None:
        """The last bundle whose upload and verification succeeded."""
        good = [b for b in self.bundles if self.bundle_status(b, now)[0] == "SUCCESS"]
        return good[-1] if good else None

    def upgrade_uc(self, now: float) -> None:
        """Upgrade the Upgrade Coordinator to the uploaded bundle's version."""
        if self.last_good_bundle(now) is None:
            raise ApiError(400, 30011, "no upgrade bundle has been uploaded and verified yet: "
                           "upload one with POST /api/v1/upgrade/bundles")
        if not self.eula_accepted:
            raise ApiError(400, 30012, "the EULA has not been accepted: "
                           "POST /api/v1/upgrade/eula/accept first")
        self.start(Op.COORDINATOR, COORDINATOR, now)

    def upgrade_units(self, names: list[str], now: float) -> None:
        """``upgrade_selected_units``: start each unit not already upgrading or upgraded."""
        self.require_uc(now)
        components = {self.component(u) for u in names}
        if len(components) != 1:
            raise ApiError(400, 30020, "select upgrade units of exactly one component "
                           f"(got {', '.join(sorted(components)) or 'none'})")
        component = components.pop()
        self.exclusive(component, now)
        self.in_flow_order(component, now)
        for unit in names:
            if self.state(Op.UPGRADE, unit, now)[0] not in ("running", "done"):
                self.start(Op.UPGRADE, unit, now)

    def require_uc(self, now: float) -> None:
        """400 unless the Upgrade Coordinator runs the target version."""
        if not self.uc_done(now):
            raise ApiError(400, 30013, "the Upgrade Coordinator has not been upgraded yet: "
                           "upload the bundle and run POST /api/v1/upgrade?action=upgrade_uc")

    def in_flow_order(self, component: str, now: float) -> None:
        """400 while a unit of a component before ``component`` in the hop's order
        (:attr:`components`, the flow of upgrade/compat/flows.yaml: HOST, EDGE, CCP, MP up
        to 2.3) has not been upgraded: VMware's guides upgrade the components in that
        order, the management plane only after every other one.  A component the plan
        skipped (``continue&skip=true``, VMware's way past one) and the units of a
        disabled group (left out of the upgrade) do not hold the next ones back; a
        failed unit does.  The management plane is the exception: it waits for every
        unit of every other component, skipped or disabled ones included (VMware's
        terraform-provider-nsxt, resource ``nsxt_upgrade_run``: "MP upgrade won't be
        processed, because that requires EDGE and HOST to be fully upgraded").
        VMware's documents give no status or error code for this refusal: it is the
        contract's ``400 invalid_request`` with an ApiError body."""
        last = component == "MP"
        earlier = [c for c in self.components[: self.components.index(component)]
                   if last or c not in self.plan.skipped]
        if not earlier:  # the first component (each host selection of a 2.3 hop): no scan
            return
        disabled: set[str] = set() if last else {u for g in self.groups
                                                 if not g.enabled and g.type in earlier
                                                 for u in g.units}
        target = self.world.target
        for before in earlier:
            waiting = [u for u in self._units_by_component.get(before, [])
                       if u not in disabled and self.world.units[u].version != target
                       and self.state(Op.UPGRADE, u, now)[0] != "done"]
            if waiting:
                shown = ", ".join(waiting[:3]) + (f" and {len(waiting) - 3} more"
                                                  if len(waiting) > 3 else "")
                raise ApiError(400, 30022, f"cannot upgrade {component} units before the "
                               f"{before} upgrade is complete ({shown} not upgraded); the "
                               f"upgrade order is {', '.join(self.components)}")

    def exclusive(self, component: str, now: float) -> None:
        """400 while units of another component upgrade: components never overlap."""
        busy = [u for c, units in self._units_by_component.items() if c != component
                for u in units if self.state(Op.UPGRADE, u, now)[0] == "running"]
        if busy:
            raise ApiError(400, 30021, f"cannot upgrade {component} units while "
                           f"{', '.join(busy)} of another component are upgrading")


    def start(self, op: Op, unit: str, now: float) -> None:
        try:
            self.world.start(op, unit, now)
        except AdapterError as exc:  # a refusal (fault) is worth trying again: 5xx
            raise ApiError(500, 30100, str(exc)) from exc

    def record_history(self, completed: bool = True) -> None:
        """Note the upgrade's start, and its success once every unit runs the target
        (looked for when an operation ``completed``; the manager, upgraded last, first)."""
        last = self.history[-1]["upgrade_status"] if self.history else None
        stamp = int(time.time() * 1000)
        entry = {"initial_version": str(self.inventory.version),
                 "target_version": self.world.target, "timestamp": stamp}
        target = self.world.target
        units = self.world.units
        if last is None:
            if any(op == Op.UPGRADE.value and unit in self.unit_ids
                   for unit, op in self.world.ops):
                self.history.append({**entry, "upgrade_status": "STARTED"})
        elif last == "STARTED" and (completed or self._success_unchecked):
            self._success_unchecked = False
            if units[self.inventory.manager].version == target and all(
                    units[u].version == target for u in self.unit_ids):
                self.history.append({**entry, "upgrade_status": "SUCCESS"})


def _encode(value: Any) -> str:
    """``value`` as JSON, keys sorted (what :meth:`Site.save` stores)."""
    return json.dumps(value, sort_keys=True)


def flow_of(inventory: Inventory, target: Version) -> FlowEntry:
    """The flow of the hop from ``inventory``'s version to ``target``; :class:`InputError`
    (one line naming the known flows) when the flow data holds none."""
    entry = load_flows().entry_for(inventory.version, target)
    if entry is None:
        raise InputError(f"--target-version {target}: "
                         f"{no_flow_reason(inventory.version, target)}")
    return entry
