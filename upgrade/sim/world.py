"""The simulated world: a pure model of an NSX-T site being upgraded, in simulated seconds.

It knows units, their versions, maintenance mode, VMs and the operations in
flight, and nothing about the orchestrator.  Time is an argument of every call
(``now``), never read from a clock, so the same calls give the same world.
Operations are *start + status*: a start is idempotent (starting what already
runs, or what is already done, changes nothing) and every status is derived
from the world, so an orchestrator that died and came back can ask what
happened.  Faults from the inventory are applied deterministically by attempt
number.  Leaving maintenance cancels an entry still in flight and abandons an
upgrade that hangs; it is refused while an upgrade runs.

The world's records are :mod:`upgrade.sim.records`; where VMs run and where DRS
moves them is :mod:`upgrade.sim.placement`; the queue of operations' ends is
:mod:`upgrade.sim.progress`.  Persistence is :mod:`upgrade.sim.store`'s job; the
world only marks what changed (``dirty``).
"""

from __future__ import annotations

from typing import Any

from upgrade.compat.flows import load_flows
from upgrade.core.engine.messages import OpState
from upgrade.core.model import (
    Drs,
    FaultKind,
    Inventory,
    Op,
    UnitKind,
)
from upgrade.core.plan import SYSTEM_BY_OP
from upgrade.core.versions import Version
from upgrade.errors import AdapterError, TransientAdapterError
from upgrade.sim.placement import Moves, Placement
from upgrade.sim.progress import Completions
from upgrade.sim.records import OpRecord, UnitRecord, VmRecord

# enum members read once (a member read off its class is a slow lookup, asked per event)
_D_FULLY_AUTOMATED, _FK_FAIL, _FK_HANG = Drs.FULLY_AUTOMATED, FaultKind.FAIL, FaultKind.HANG
_FK_REFUSE, _FK_TIMEOUT, _OS_DONE = FaultKind.REFUSE, FaultKind.TIMEOUT, OpState.DONE
_OS_FAILED, _OS_NOT_STARTED, _OS_RUNNING = OpState.FAILED, OpState.NOT_STARTED, OpState.RUNNING
_O_COORDINATOR, _O_ENTER_MAINTENANCE = Op.COORDINATOR, Op.ENTER_MAINTENANCE
_O_EVACUATE, _O_EXIT_MAINTENANCE, _O_POSTCHECK = Op.EVACUATE, Op.EXIT_MAINTENANCE, Op.POSTCHECK
_O_PRECHECK, _O_RESTORE, _O_UPGRADE, _O_UPLOAD = Op.PRECHECK, Op.RESTORE, Op.UPGRADE, Op.UPLOAD
_UK_CONTROLLER, _UK_EDGE, _UK_HOST = UnitKind.CONTROLLER, UnitKind.EDGE, UnitKind.HOST
_UK_MANAGER = UnitKind.MANAGER

#: each operation's value (an enum's ``value`` is a slow lookup, and every call asks)
_VALUE = {op: op.value for op in Op}
_ENTER = _O_ENTER_MAINTENANCE.value
#: what leaving maintenance cancels while in flight, with their values
_EXIT_CANCELS = tuple((op, op.value) for op in (_O_ENTER_MAINTENANCE, _O_EVACUATE))

__all__ = ["TIMEOUT_EXTRA_S", "TIMEOUT_FACTOR", "OpRecord", "UnitRecord", "VmRecord",
           "World"]

#: a "timeout" fault makes an operation this much slower than any default timeout allows
TIMEOUT_FACTOR = 3
TIMEOUT_EXTRA_S = 900.0


class World:
    """The whole simulated site; every method takes the simulated time ``now``."""

    def __init__(self, inventory: Inventory, target: Version, *,
                 track_changes: bool = True) -> None:
        """The world of ``inventory`` at time 0, going to ``target``.

        ``track_changes=False`` keeps no ``dirty`` marks and no VM move history: for a
        world no store writes (the estimate), which would otherwise hold a mark per unit,
        VM and operation, and a record per move.
        """
        self.inventory = inventory
        self.target = str(target)
        #: unit kinds the target release has none of: merged into another unit during the
        #: upgrade (NSX-T 2.4: the controllers, into the manager; the flow data says so).
        #: Such units stay as they were (powered off and deleted by the operator
        #: afterwards) and a post-check does not ask them for the target version
        flows = load_flows()
        self.merged = frozenset(k for k in UnitKind if flows.merges(target, k))
        self.time = 0.0
        self.units: dict[str, UnitRecord] = {}

        versions = inventory.versions()

        said: dict[int, str] = {}  # id(version) -> its text: most units share one version

        def version(unit: str) -> str:  # "2.3" at a target of "2.3.0.0" reads as the target
            reported = versions[unit]
            text = said.get(id(reported))
            if text is None:
                text = said[id(reported)] = self.target if reported == target \
                    else str(reported)
            return text

        # with no history kept, every record shares one list that stays empty
        kept = track_changes

        def unit_record(uid: str, kind: UnitKind, group: str, text: str) -> UnitRecord:
            return UnitRecord(uid, kind, group, text, False, [] if kept else _NO_SPANS,
                              [] if kept else _NO_SPANS)

        units = self.units
        self.vms: dict[str, VmRecord] = {}
        vms = self.vms
        # each host and its VMs in one pass, records made in place (100,000 hosts)
        for h in inventory.hosts:
            hid = h.id
            units[hid] = UnitRecord(hid, _UK_HOST, h.cluster, version(hid), False,
                                    [] if kept else _NO_SPANS, [] if kept else _NO_SPANS)
            for vm in h.vms:
                vms[vm.id] = VmRecord(vm.id, hid, vm.powered_on, [] if kept else _NO_VM_MOVES)
        for ec in inventory.edge_clusters:
            for e in ec.edges:
                self.units[e] = unit_record(e, _UK_EDGE, ec.name, version(e))
        for c in inventory.controllers:
            self.units[c] = unit_record(c, _UK_CONTROLLER, "controllers", version(c))
        #: the manager's unit id
        self.manager = m = inventory.manager
        #: the manager's upgrade's key in :attr:`ops` (every poll asks whether it runs)
        self.manager_upgrade = (m, _VALUE[_O_UPGRADE])
        self.units[m] = unit_record(m, _UK_MANAGER, "manager", str(version(m)))
        self.placement = Placement(inventory.clusters, self.vms, history=track_changes)
        self.ops: dict[tuple[str, str], OpRecord] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        self._drs = {c.name: c.drs for c in inventory.clusters}
        #: (unit, op) -> its faults, in inventory order
        self._faults: dict[tuple[str, str], list[tuple[int, FaultKind]]] = {}
        for f in inventory.faults:
            self._faults.setdefault((f.unit, f.op.value), []).append((f.times, f.kind))
        self._ends = Completions()
        #: unit kind -> how long its upgrade takes (asked by every upgrade's start)
        self._upgrade_s = {kind: inventory.durations.upgrade(kind) for kind in UnitKind}
        self._tracking = track_changes
        self.dirty: set[str] = set() if track_changes else _Unrecorded()

    # -- time -------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply every completion due by ``now``, in time order."""
        ends = self._ends
        if ends.heap and ends.heap[0][0] <= now:  # most calls find nothing due
            for rec in ends.due(now, self.ops):
                self._complete(rec)
        if now > self.time:
            self.time = now
            if self._tracking:
                self.dirty.add("meta")

    def next_end(self, now: float) -> float | None:
        """The earliest queued operation end at or before ``now`` (None: nothing is due);
        :meth:`advance` to it applies it (an end superseded meanwhile applies nothing)."""
        at = self._ends.earliest()
        return at if at is not None and at <= now else None

    def requeue(self, rec: OpRecord) -> None:
        """Queue ``rec``'s end (the store, rebuilding a world, queues every unapplied one)."""
        self._ends.add(rec)

    def _complete(self, rec: OpRecord) -> None:
        assert rec.end is not None
        rec.applied = True
        tracking = self._tracking
        if tracking:
            self._touch_op(rec)
        end, op = rec.end, rec.op
        if op is _O_UPGRADE:
            unit = self.units[rec.unit]
            if rec.ok:
                unit.version = self.target
            if tracking:
                unit.upgrades[-1][1] = end
                self.dirty.add(f"u:{unit.id}")
        elif op is _O_ENTER_MAINTENANCE and rec.ok:
            self._apply_moves(rec)
            self.units[rec.unit].in_maintenance = True
            if tracking:
                self.dirty.add(f"u:{rec.unit}")
        elif op is _O_ENTER_MAINTENANCE:
            self._close_maintenance(rec.unit, end)  # the entry failed: not in maintenance
        elif op is _O_EVACUATE:
            if rec.ok:
                self._apply_moves(rec)
            entering = self.ops.get((rec.unit, _ENTER))
            if entering is not None and entering.awaits_evacuation and rec.ok:
                entering.awaits_evacuation = False
                if self.placement.has_running(rec.unit):
                    entering.end, entering.ok = end, False
                    entering.detail = "VMs are still powered on on the host"
                else:
                    entering.end = end + (TIMEOUT_EXTRA_S if entering.slow else 0.0)
                self._ends.add(entering)
                self._touch_op(entering)
        elif op is _O_RESTORE and rec.ok:
            self._apply_moves(rec)
        elif op is _O_EXIT_MAINTENANCE and rec.ok:
            unit = self.units[rec.unit]
            unit.in_maintenance = False
            if unit.maintenance and unit.maintenance[-1][1] is None:
                unit.maintenance[-1][1] = end
            if tracking:
                self.dirty.add(f"u:{unit.id}")
        if tracking:
            return
        # no store keeps the record (an untracked world): forget what no one reads of it
        # again (here, not in a method: each operation's end comes by)
        key = (rec.unit, _VALUE[op])
        if rec.ok and not rec.detail and self.ops.get(key) is rec:
            # every question the world asks of an applied, successful record without a
            # detail has the same answer from the shared one (its end was at or before
            # any ``now`` to come): 120 bytes less per operation (issue 23)
            self.ops[key] = _SETTLED[op]
        elif rec.moves:
            rec.moves = _NO_MOVES  # applied: its moves are not read again

    def _close_maintenance(self, host: str, at: float) -> None:
        unit = self.units[host]
        if not unit.in_maintenance and unit.maintenance and unit.maintenance[-1][1] is None:
            unit.maintenance[-1][1] = at
            if self._tracking:
                self.dirty.add(f"u:{host}")

    def _cancel_entry(self, host: str, now: float) -> None:
        """Leaving maintenance cancels an entry (and its evacuation) still in flight."""
        for op, value in _EXIT_CANCELS:
            rec = self.ops.get((host, value))
            if rec is not None and not rec.applied and (rec.end is None or rec.end > now):
                rec.end, rec.ok, rec.applied = now, False, True
                rec.awaits_evacuation = False
                rec.detail = f"{op.value} on {host} cancelled: maintenance mode was exited"
                self._touch_op(rec)
        self._close_maintenance(host, now)

    def _check_exit(self, host: str, now: float) -> None:
        """A host leaves maintenance only once its upgrade ended; one that hangs is abandoned."""
        rec = self.ops.get((host, _VALUE[_O_UPGRADE]))
        if not self.units[host].in_maintenance or rec is None or rec.applied:
            return
        if rec.end is None:
            rec.end, rec.ok, rec.applied = now, False, True
            rec.detail = f"upgrade of {host} abandoned: maintenance mode was exited"
            self._touch_op(rec)
            if self._tracking:
                self.units[host].upgrades[-1][1] = now
                self.dirty.add(f"u:{host}")
        elif rec.end > now:
            raise TransientAdapterError(f"{host} is upgrading; it leaves maintenance mode only "
                                        "once the upgrade has ended")

    def reindex(self) -> None:
        """Rebuild where the VMs are (after ``vms`` was replaced or refilled, e.g. by the
        store)."""
        self.placement.reindex(self.vms)

    def _apply_moves(self, rec: OpRecord) -> None:
        """Make the VM moves of ``rec`` (the i-th, from 1, one vMotion after the one before
        it, from its start) and mark the VMs that moved."""
        if not rec.moves:
            return
        moved = self.placement.move_all(rec.moves, rec.start, self.inventory.durations.vmotion)
        if self._tracking:
            self.dirty.update(f"v:{vm}" for vm in moved)

    def _touch_op(self, rec: OpRecord) -> None:
        if self._tracking:
            self.dirty.add(f"o:{rec.unit}|{rec.op.value}")

    # -- queries ----------------------------------------------------------------------------

    def running_vms(self, host: str, now: float) -> list[str]:
        """The powered-on VMs on ``host`` at ``now``."""
        self.advance(now)
        return self.placement.running(host)

    def status(self, op: Op, unit: str, now: float) -> tuple[OpState, str]:
        """Where ``op`` on ``unit`` stands at ``now``: derived from the world, never cached."""
        due = self._ends.heap
        if (due and due[0][0] <= now) or now > self.time:  # else advancing changes nothing
            self.advance(now)
        rec = self.ops.get((unit, _VALUE[op]))
        finished = rec is not None and rec.end is not None and rec.end <= now
        if finished and rec is not None and rec.ok:
            return _OS_DONE, rec.detail  # what the rules below say too, without asking
        record = self.units.get(unit) if rec is None or finished else None
        if record is not None and self._already(op, record, rec):
            # what start() treats as already done (and so starts nothing for) reads as done
            if rec is not None and rec.ok:
                return _OS_DONE, rec.detail
            if op is _O_UPGRADE:
                return _OS_DONE, f"{unit} already reports {self.target}"
            return _OS_DONE, f"{unit}: nothing to do for {op.value}"
        if rec is None:
            return _OS_NOT_STARTED, ""
        if rec.end is None or rec.end > now:
            return _OS_RUNNING, rec.detail
        return (_OS_DONE, rec.detail) if rec.ok else (_OS_FAILED, rec.detail)

    def postcheck_problems(self) -> list[str]:
        """What a post-check finds wrong: units not at the target, hosts left in maintenance."""
        problems = [f"{u.id} reports {u.version}, not {self.target}"
                    for u in self.units.values()
                    if u.version != self.target and u.kind not in self.merged]
        problems += [f"{u.id} is still in maintenance mode"
                     for u in self.units.values() if u.in_maintenance]
        return problems

    # -- operations -------------------------------------------------------------------------

    def start(
        self, op: Op, unit: str, now: float, moves: tuple[tuple[str, str], ...] = ()
    ) -> float | None:
        """Start ``op`` on ``unit`` at ``now``; returns when it should end (None: unknown).

        Idempotent: an operation already running, or already done where that
        means the same (an upgraded unit, a host in maintenance), is left alone.
        Raises :class:`TransientAdapterError` when refused.
        """
        due = self._ends.heap
        if (due and due[0][0] <= now) or now > self.time:  # else advancing changes nothing
            self.advance(now)
        # which unit, checked (and its record read once: the rules below ask it again)
        step = SYSTEM_BY_OP.get(op)
        if step is None:
            record = self.units.get(unit)
            if record is None:
                raise AdapterError(f"unknown unit {unit!r}")
            if op is not _O_UPGRADE and record.kind is not _UK_HOST:
                raise AdapterError(f"{op.value} applies to hosts only, not {unit!r}")
        elif unit != step.target:
            raise AdapterError(f"{op.value} runs on {step.target!r}, not {unit!r}")
        else:
            record = None  # a system operation's
        value = _VALUE[op]
        key = (unit, value)
        ops = self.ops
        rec = ops.get(key)
        if rec is not None:
            if rec.end is None:  # it hangs (started again below) or waits for evacuation
                if rec.awaits_evacuation:
                    return None
            elif rec.end > now:
                return rec.end
        if op is _O_EXIT_MAINTENANCE:
            self._cancel_entry(unit, now)
            self._check_exit(unit, now)
        if self._already(op, record, rec):
            return now
        faults = self._faults.get(key) if self._faults else None
        tracking = self._tracking
        if tracking or faults:
            attempt = self.attempts.get(key, 0) + 1
            self.attempts[key] = attempt
            if tracking:
                self.dirty.add(f"a:{unit}|{value}")
        else:  # untracked and no fault counts attempts: the latest record's is the count
            attempt = (rec.attempt if rec is not None else 0) + 1
        fault = next((kind for times, kind in faults if attempt <= times),
                     None) if faults else None
        if fault is _FK_REFUSE:
            raise TransientAdapterError(f"{op.value} on {unit} refused (simulated fault)")
        duration, planned, awaits = self._plan_op(op, unit, record, moves)
        if rec is not None and rec.op is _O_UPGRADE and rec.end is None and tracking:
            self.units[unit].upgrades[-1][1] = now  # a hung attempt is superseded
        if not planned and not tracking:
            planned = _NO_MOVES  # one shared empty list, not one per operation
        end: float | None = now + duration
        if fault is None:  # the common case, as the rules below have it without a fault
            if awaits:
                end = None
            new = OpRecord(op, unit, attempt, now, end, True, "", planned, awaits)
        else:
            new = self._faulty(fault, op, unit, attempt, now, duration, planned, awaits)
            end = new.end
        ops[key] = new
        if tracking:
            self._touch_op(new)
            self._on_start(new)
        self._ends.add(new)
        return end

    @staticmethod
    def _faulty(fault: FaultKind, op: Op, unit: str, attempt: int, now: float,
                duration: float, planned: Moves, awaits: bool) -> OpRecord:
        """The attempt a fault of the inventory makes of a start (not refused)."""
        end: float | None = now + duration
        ok = True
        detail = ""
        if fault is _FK_FAIL:
            ok, detail = False, f"{op.value} on {unit} failed (simulated fault)"
        elif fault is _FK_TIMEOUT:
            end = now + TIMEOUT_FACTOR * duration + TIMEOUT_EXTRA_S
        elif fault is _FK_HANG:
            end, detail = None, f"{op.value} on {unit} is not making progress"
        if awaits and fault is not _FK_HANG:
            end = None
        awaits = awaits and fault is not _FK_HANG
        return OpRecord(op, unit, attempt, now, end, ok, detail, planned, awaits,
                        slow=awaits and fault is _FK_TIMEOUT)

    def _already(self, op: Op, record: UnitRecord | None, rec: OpRecord | None) -> bool:
        """True when ``op`` on the unit of ``record`` has nothing to do (``rec``: its latest
        attempt)."""
        if record is not None:
            if op is _O_UPGRADE:
                return record.version == self.target
            if op is _O_ENTER_MAINTENANCE:
                return record.in_maintenance
            if op is _O_EXIT_MAINTENANCE:
                return not record.in_maintenance
        if op in (_O_UPLOAD, _O_COORDINATOR):
            return rec is not None and rec.ok and rec.end is not None
        return False

    def _plan_op(
        self, op: Op, unit: str, record: UnitRecord | None, moves: tuple[tuple[str, str], ...]
    ) -> tuple[float, Moves, bool]:
        if record is not None and op is _O_UPGRADE:  # the most common first
            return self._upgrade_s[record.kind], [], False
        if op is _O_EXIT_MAINTENANCE:
            return 0, [], False
        d = self.inventory.durations
        if op is _O_PRECHECK:
            return d.precheck, [], False
        if op is _O_POSTCHECK:
            return d.postcheck, [], False
        if op is _O_UPLOAD:
            return d.bundle_upload, [], False
        if op is _O_COORDINATOR:
            return d.coordinator_upgrade, [], False
        if op is _O_RESTORE:  # VMs back home: refused while it is in (or entering) maintenance
            todo = self.placement.homecoming(unit, moves, self.units, self._busy)
            return len(todo) * d.vmotion, todo, False
        assert record is not None  # a host's: :meth:`start` checked the unit
        cluster = record.group
        if op is _O_EVACUATE:
            todo = self.placement.evacuation(cluster, unit, moves, self._busy)
            return len(todo) * d.vmotion, todo, False
        # entering maintenance
        if self._drs[cluster] is not _D_FULLY_AUTOMATED:
            return 0, [], self.placement.has_running(unit)
        planned = self.placement.drs_evacuation(cluster, unit, self._busy)
        return len(planned) * d.vmotion, planned, False

    def _busy(self, host: str) -> bool:
        """True when ``host`` cannot receive VMs: it is in or entering maintenance mode."""
        if self.units[host].in_maintenance:
            return True
        # entering it (asked of several hosts per DRS evacuation: no call more)
        rec = self.ops.get((host, _ENTER))
        return rec is not None and not rec.applied and (rec.ok or rec.end is None)

    def _on_start(self, rec: OpRecord) -> None:
        """Open the unit's upgrade or maintenance span (a tracked world's history)."""
        unit = self.units.get(rec.unit)
        if rec.op is _O_UPGRADE and unit is not None:
            unit.upgrades.append([rec.start, None])
            if self._tracking:
                self.dirty.add(f"u:{unit.id}")
        elif rec.op is _O_ENTER_MAINTENANCE and unit is not None and (
                not unit.maintenance or unit.maintenance[-1][1] is not None):
            unit.maintenance.append([rec.start, None])
            if self._tracking:
                self.dirty.add(f"u:{unit.id}")

    # -- views ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The world as ``sim show --format json`` prints it (DESIGN section 3)."""
        return {
            "time": self.time,
            "target_version": self.target,
            "units": [u.view() for u in self.units.values()],
            "vms": [v.view() for v in self.vms.values()],
            # by start, not by insertion: the same after a reload from the store
            "operations": [r.view() for r in sorted(
                self.ops.values(), key=lambda r: (r.start, r.unit, r.op.value))],
        }


class _Unkept(list[Any]):
    """A history that keeps nothing, shared by every record of an untracked world."""

    def append(self, element: Any) -> None:
        """Forget ``element``."""


#: the untracked world's shared, always empty histories and move lists (issue 23: a
#: list per record is 100 MiB on 100,000 hosts)
_NO_SPANS: list[list[float | None]] = _Unkept()
_NO_VM_MOVES: list[tuple[float, str, str]] = _Unkept()
_NO_MOVES: list[tuple[str, str]] = _Unkept()

#: per operation, the record every applied successful attempt without a detail of an
#: untracked world turns into (see the end of :meth:`World._complete`)
_SETTLED = {op: OpRecord(op, "", 0, float("-inf"), float("-inf"), True, "", _NO_MOVES,
                         awaits_evacuation=False, applied=True) for op in Op}


class _Unrecorded(set[str]):
    """A change set that keeps nothing, for a world no store writes."""

    def add(self, element: str) -> None:
        """Forget ``element``."""
