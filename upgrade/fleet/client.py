"""The client end of a fleet: plan and start the sites, follow them, pause and resume them.

State lives in Temporal, not here: ``fleet run`` asks Temporal which sites already have a
workflow (it attaches to those) and starts the others as the fleet policy allows, so running
it again, or after it was killed, carries on where the fleet stands.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from upgrade.core.engine.timing import Policy
from upgrade.errors import InputError
from upgrade.fleet import sitelog
from upgrade.fleet.activities import INVENTORY_FILE
from upgrade.fleet.connect import TemporalUnreachable, connect
from upgrade.fleet.driver import reconcile_keys
from upgrade.fleet.fleetfile import Fleet, Site
from upgrade.fleet.inputs import pack
from upgrade.fleet.shared import FLEET_PAUSE, WORKFLOW, Carry, SiteInput, site_status
from upgrade.inputs.inventory import dump_inventory
from upgrade.prepare.inputs import read_inputs
from upgrade.prepare.planning import prepare_loaded

#: how often ``fleet run`` looks at its sites
FOLLOW_S = 0.5
_QUERY_TIMEOUT = timedelta(seconds=3)
_RPC_TIMEOUT = timedelta(seconds=10)
#: a workflow that ended without finishing the site: ``fleet resume`` starts it again
DEAD = ("terminated", "timed_out", "failed_workflow", "canceled")
FINAL = ("done", "failed", "paused", *DEAD)
_DEAD_STATES = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.FAILED: "failed_workflow",
    WorkflowExecutionStatus.CANCELED: "canceled",
}
#: a workflow task's timeout: the first task of a 10,000-host site decodes its inputs and
#: builds the engine (a few seconds on a loaded machine), a replay of a run up to
#: ``history_limit`` events takes about as long
TASK_TIMEOUT_S = 20
#: how often ``fleet run`` repeats that no worker answers
HINT_EVERY_S = 30.0
NO_WORKER = ("no worker answered the status query in time; is `nsxt-upgrade fleet worker` "
             "running?")


@dataclass
class Outcome:
    """What ``fleet run`` ends with, per site."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, list[str]] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 any failed (or its workflow ended early); else 4 any refused; else 3 any paused
        (or held by a pause); else 0."""
        states = [d["state"] for d in self.docs.values()]
        if "failed" in states or any(s in DEAD for s in states):
            return 1
        if self.refused:
            return 4
        if "paused" in states or self.held:
            return 3
        return 0


def empty_doc(state: str, note: str = "") -> dict[str, Any]:
    """A site document without engine data (not started, or no worker answered yet)."""
    return {"state": state, "phase": None,
            "units": {"total": 0, "done": 0, "failed": [], "in_progress": [], "skipped": []},
            "reasons": [note] if note else [], "pause_requested": None}


def resume_command(fleet: Fleet, site: Site) -> str:
    """The command that starts a dead site again."""
    return f"nsxt-upgrade fleet resume {fleet.path} --site {site.name}"


async def close_reason(handle: WorkflowHandle[Any, Any]) -> str:
    """Temporal's reason a workflow closed (terminated, timed out, failed, canceled)."""
    async for event in handle.fetch_history_events(
            event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT,
            rpc_timeout=_RPC_TIMEOUT):
        if event.HasField("workflow_execution_terminated_event_attributes"):
            attrs = event.workflow_execution_terminated_event_attributes
            who = f" by {attrs.identity}" if attrs.identity else ""
            return f"terminated{who}: {attrs.reason or 'no reason given'}"
        if event.HasField("workflow_execution_failed_event_attributes"):
            return f"failed: {event.workflow_execution_failed_event_attributes.failure.message}"
        if event.HasField("workflow_execution_timed_out_event_attributes"):
            return "timed out (the workflow's execution timeout passed)"
        if event.HasField("workflow_execution_canceled_event_attributes"):
            return "canceled"
    return "closed"


def last_progress(site: Site) -> dict[str, Any]:
    """The site's last known progress from its journal in the state dir (a workflow's end,
    even a termination, does not erase it); an empty document when nothing was recorded."""
    try:
        recovered = sitelog.recover(site.state_dir)
    except InputError:
        return empty_doc("not_started")
    return site_status(recovered.driver.engine, recovered.driver.last)


async def observe(client: Client, fleet: Fleet, site: Site) -> dict[str, Any]:
    """The site's document, from Temporal: its result when closed, its ``status`` query else;
    a workflow that ended early: its last known progress, Temporal's reason and the command
    that starts it again.

    Raises RPCError when Temporal cannot be reached.
    """
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(fleet.workflow_id(site))
    try:
        desc = await handle.describe(rpc_timeout=_RPC_TIMEOUT)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return empty_doc("not_started")
        raise
    if desc.status is WorkflowExecutionStatus.COMPLETED:
        doc: dict[str, Any] = await handle.result(rpc_timeout=_RPC_TIMEOUT)
        return doc
    if desc.status is not WorkflowExecutionStatus.RUNNING:
        state = _DEAD_STATES.get(desc.status, "terminated")  # type: ignore[arg-type]
        doc = await asyncio.to_thread(last_progress, site)
        doc.update(state=state, reason=await close_reason(handle),
                   resume=resume_command(fleet, site), pause_requested=None)
        return doc
    try:
        doc = await handle.query("status", rpc_timeout=_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):  # no worker answered in time: still running
        return empty_doc("running", NO_WORKER)
    return doc


async def site_input(fleet: Fleet, site: Site) -> tuple[SiteInput | None, list[str]]:
    """Plan ``site``: its workflow input, or the plan's refusals (nothing is started)."""
    prepared = prepare_loaded(await read_inputs(site.playbook, site=site.name))
    if not prepared.plan.runnable:
        return None, list(prepared.plan.refusals)
    playbook = prepared.playbook
    # the engine needs neither the compatibility verdict nor the estimated chart
    plan = dataclasses.replace(prepared.plan, compatibility={}, schedule=())
    settings = fleet.temporal
    return SiteInput(
        fleet.name, site.name, str(site.playbook), str(site.state_dir),
        playbook.inventory.adapter, site.speed,
        *pack(plan, prepared.inventory, Policy.from_playbook(playbook)),
        float(settings.activity_timeout_s),
        settings.activity_attempts, settings.history_limit,
    ), []


async def start_site(client: Client, fleet: Fleet, site: Site, given: SiteInput,
                     carry: Carry | None = None) -> None:
    """Start the site's workflow (attaching when it already runs); ``carry``: a new run of a
    site whose workflow ended early, from its journal."""
    site.state_dir.mkdir(parents=True, exist_ok=True)
    inventory = site.state_dir / INVENTORY_FILE
    if given.adapter == "simulated" and not inventory.exists():
        inventory.write_text(dump_inventory(given.engine_inputs()[1]), encoding="utf-8")
    if carry is None:
        await asyncio.to_thread(sitelog.save_input, site.state_dir, given)
    await client.start_workflow(
        WORKFLOW, args=[given, carry], id=fleet.workflow_id(site),
        task_queue=fleet.temporal.task_queue,
        # a new run only over one that ended early (fleet resume); never over a finished one
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY if carry is None
        else WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_timeout=timedelta(seconds=TASK_TIMEOUT_S), rpc_timeout=_RPC_TIMEOUT,
    )


def line(name: str, doc: dict[str, Any]) -> str:
    """One human line about a site."""
    units = doc.get("units") or {}
    text = f"{name}: {doc['state']}"
    if doc.get("phase"):
        text += f", {doc['phase']}"
    if units.get("total"):
        text += f", {units['done']}/{units['total']} units done"
    if units.get("failed"):
        text += f", failed: {', '.join(units['failed'])}"
    reasons = doc.get("reasons") or []
    if reasons and doc["state"] != "done":
        text += f" ({'; '.join(reasons)})"
    if doc.get("reason"):
        text += f"; {doc['reason']}; last known progress kept in its state dir; start it " \
                f"again from there with `{doc['resume']}`"
    return text


class Follower:
    """``fleet run``: start sites under the fleet policy and follow them to the end."""

    def __init__(self, fleet: Fleet, say: Callable[[str], None],
                 warn: Callable[[str], None]) -> None:
        self.fleet = fleet
        self.say = say
        self.warn = warn
        self.outcome = Outcome()
        self.inputs: dict[str, SiteInput] = {}
        self._shown: dict[str, tuple[str, float]] = {}

    async def run(self) -> Outcome:
        """Plan, start and follow; returns what every site ended with."""
        fleet = self.fleet
        client = await connect(fleet.temporal, wait_s=10.0, store=fleet.payload_dir)
        docs = self.outcome.docs
        found = await asyncio.gather(*(observe(client, fleet, s) for s in fleet.sites))
        for site, doc in zip(fleet.sites, found, strict=True):
            docs[site.name] = doc
            if doc["state"] in DEAD:  # never restarted by itself: the operator decides
                self.warn(f"{site.name}: its workflow {fleet.workflow_id(site)} ended early "
                          f"({doc['reason']}); not restarting it: `{doc['resume']}` starts a "
                          "new run from its last checkpoint")
                continue
            if doc["state"] != "not_started":
                self.say(f"{site.name}: attached to workflow {fleet.workflow_id(site)}")
                continue
            given, refusals = await site_input(fleet, site)
            if given is None:
                self.outcome.refused[site.name] = refusals
                self.warn(f"{site.name}: refused, not started:\n  " + "\n  ".join(refusals))
            else:
                self.inputs[site.name] = given
        unreachable = False
        while True:
            try:
                await self._refresh(client)
                await self._start_more(client)
            except RPCError as exc:
                if not unreachable:
                    self.warn(f"Temporal does not answer ({exc}); retrying")
                unreachable = True
                await asyncio.sleep(1.0)
                continue
            if unreachable:
                self.say("Temporal answers again")
                unreachable = False
            if self._finished():
                return self.outcome
            await asyncio.sleep(FOLLOW_S)

    async def _refresh(self, client: Client) -> None:
        docs = self.outcome.docs
        live = [s for s in self.fleet.sites if s.name not in self.outcome.refused and
                docs[s.name]["state"] not in ("done", "failed", "not_started", *DEAD)]
        found = await asyncio.gather(*(observe(client, self.fleet, s) for s in live))
        now = asyncio.get_running_loop().time()
        for site, doc in zip(live, found, strict=True):
            docs[site.name] = doc
            shown = line(site.name, doc)
            before = self._shown.get(site.name)
            # the same line again only to say, every so often, that no worker answers
            if before is None or before[0] != shown or \
                    (NO_WORKER in shown and now - before[1] >= HINT_EVERY_S):
                self._shown[site.name] = (shown, now)
                self.say(shown)

    async def _start_more(self, client: Client) -> None:
        docs = self.outcome.docs
        failed = sum(1 for d in docs.values() if d["state"] == "failed" or d["state"] in DEAD)
        paused = any(d.get("pause_requested") == FLEET_PAUSE for d in docs.values())
        running = sum(1 for d in docs.values() if d["state"] == "running")
        for site in self.fleet.sites:
            if site.name not in self.inputs or docs[site.name]["state"] != "not_started":
                continue
            if failed >= self.fleet.stop_after_failed_sites:
                self._hold(site, f"{failed} site(s) failed (stop_after_failed_sites: "
                                 f"{self.fleet.stop_after_failed_sites})")
                continue
            if paused:
                self._hold(site, "the fleet was paused (`fleet pause`)")
                continue
            if running >= self.fleet.max_parallel_sites:
                continue
            await start_site(client, self.fleet, site, self.inputs[site.name])
            self.outcome.held.pop(site.name, None)
            docs[site.name] = empty_doc("running", "started")
            running += 1
            self.say(f"{site.name}: started workflow {self.fleet.workflow_id(site)}")

    def _hold(self, site: Site, why: str) -> None:
        if site.name not in self.outcome.held:
            self.outcome.held[site.name] = why
            self.say(f"{site.name}: not started: {why}")

    def _finished(self) -> bool:
        for site in self.fleet.sites:
            state = self.outcome.docs[site.name]["state"]
            if site.name in self.outcome.refused or site.name in self.outcome.held:
                continue
            if state not in FINAL:
                return False
        return True


async def fleet_status(fleet: Fleet) -> dict[str, Any]:
    """``fleet status --format json``: every site as Temporal sees it (asked all at once)."""
    client = await connect(fleet.temporal, store=fleet.payload_dir)
    try:
        found = await asyncio.gather(*(observe(client, fleet, s) for s in fleet.sites))
    except RPCError as exc:
        raise TemporalUnreachable(f"Temporal at {fleet.temporal.address} does not answer: "
                                  f"{exc}") from exc
    return {"fleet": fleet.name,
            "sites": [{"name": site.name, "workflow_id": fleet.workflow_id(site), **doc}
                      for site, doc in zip(fleet.sites, found, strict=True)]}


def _unreachable(fleet: Fleet, exc: RPCError) -> TemporalUnreachable:
    return TemporalUnreachable(f"Temporal at {fleet.temporal.address} does not answer: {exc}")


async def _described(fleet: Fleet, handle: WorkflowHandle[Any, Any]
                     ) -> WorkflowExecutionDescription | None:
    """The site workflow's description; None when Temporal has no such workflow."""
    try:
        return await handle.describe(rpc_timeout=_RPC_TIMEOUT)
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise _unreachable(fleet, exc) from exc
        return None


async def pause_sites(fleet: Fleet, say: Callable[[str], None]) -> int:
    """Signal every site whose workflow runs to pause; how many got it."""
    client = await connect(fleet.temporal, store=fleet.payload_dir)
    sent = 0
    for site in fleet.sites:
        handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(fleet.workflow_id(site))
        desc = await _described(fleet, handle)
        if desc is None:
            say(f"{site.name}: not started; nothing to pause")
            continue
        if desc.status is not WorkflowExecutionStatus.RUNNING:
            say(f"{site.name}: its workflow is not running; nothing to pause")
            continue
        await handle.signal("pause", FLEET_PAUSE, rpc_timeout=_RPC_TIMEOUT)
        say(f"{site.name}: pause requested (in-flight work finishes first)")
        sent += 1
    return sent


async def resume_sites(fleet: Fleet, sites: list[Site], say: Callable[[str], None],
                       retry_failed: bool = False) -> int:
    """``fleet resume``: a running site is signalled (a paused one goes on, a pause still
    pending is cancelled); a site whose workflow ended early, or (with ``retry_failed``)
    finished failed, starts again as a new run from its journal, reconciling with the
    target.  Returns how many sites were resumed."""
    client = await connect(fleet.temporal, store=fleet.payload_dir)
    resumed = 0
    for site in sites:
        handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(fleet.workflow_id(site))
        desc = await _described(fleet, handle)
        if desc is None:
            say(f"{site.name}: not started; `nsxt-upgrade fleet run {fleet.path}` starts it")
            continue
        if desc.status is WorkflowExecutionStatus.RUNNING:
            await handle.signal("resume", retry_failed, rpc_timeout=_RPC_TIMEOUT)
            say(f"{site.name}: resume requested (a pending pause is cancelled; a site that "
                "is neither paused nor pausing ignores it)")
            resumed += 1
            continue
        if desc.status is WorkflowExecutionStatus.COMPLETED:
            doc = await handle.result(rpc_timeout=_RPC_TIMEOUT)
            if doc["state"] != "failed":
                say(f"{site.name}: {doc['state']}; nothing to resume")
                continue
            if not retry_failed:
                say(f"{site.name}: failed; `nsxt-upgrade fleet resume {fleet.path} --site "
                    f"{site.name} --retry-failed` starts its failed units again")
                continue
        await restart_site(client, fleet, site, retry_failed, say)
        resumed += 1
    return resumed


async def restart_site(client: Client, fleet: Fleet, site: Site, retry_failed: bool,
                       say: Callable[[str], None]) -> None:
    """Start a new run of ``site`` from its journal (InputError: nothing recorded)."""
    recovered = await asyncio.to_thread(sitelog.recover, site.state_dir)
    if recovered.origin is None:  # it ended before its first call: nothing was done
        await start_site(client, fleet, site, recovered.site)
        say(f"{site.name}: started a new run from the beginning (its last one ended before "
            f"it did anything); follow it with `nsxt-upgrade fleet run {fleet.path}`")
        return
    driver = recovered.driver
    snapshot, outstanding = driver.save()
    carry = Carry(snapshot, outstanding, recovered.origin, driver.last, recovered.round,
                  reconcile=reconcile_keys(list(driver.outstanding.values())),
                  recovered=True, retry_failed=retry_failed)
    await start_site(client, fleet, site, recovered.site, carry)
    units = site_status(driver.engine, driver.last)["units"]
    say(f"{site.name}: started a new run from its last checkpoint ({units['done']}/"
        f"{units['total']} units done, {len(carry.reconcile)} start(s) to reconcile with the "
        f"target); follow it with `nsxt-upgrade fleet run {fleet.path}`")
