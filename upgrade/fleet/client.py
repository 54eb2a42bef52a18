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
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from upgrade.core.engine.timing import Policy
from upgrade.fleet.activities import INVENTORY_FILE
from upgrade.fleet.connect import TemporalUnreachable, connect
from upgrade.fleet.fleetfile import Fleet, Site
from upgrade.fleet.shared import FLEET_PAUSE, WORKFLOW, SiteInput
from upgrade.inputs.inventory import dump_inventory
from upgrade.prepare.inputs import read_inputs
from upgrade.prepare.planning import prepare_loaded

#: how often ``fleet run`` looks at its sites
FOLLOW_S = 0.5
_QUERY_TIMEOUT = timedelta(seconds=3)
_RPC_TIMEOUT = timedelta(seconds=10)
FINAL = ("done", "failed", "paused")


@dataclass
class Outcome:
    """What ``fleet run`` ends with, per site."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, list[str]] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 any failed; else 4 any refused; else 3 any paused (or held by a pause); else 0."""
        states = [d["state"] for d in self.docs.values()]
        if "failed" in states:
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


async def observe(client: Client, workflow_id: str) -> dict[str, Any]:
    """The site's document, from Temporal: its result when closed, its ``status`` query else.

    Raises RPCError when Temporal cannot be reached.
    """
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
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
        name = desc.status.name.lower() if desc.status else "closed"
        return empty_doc("failed", f"the site's workflow was {name}")
    try:
        doc = await handle.query("status", rpc_timeout=_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):  # no worker answered in time: still running
        return empty_doc("running", "no worker answered the status query in time; is "
                                    "`nsxt-upgrade fleet worker` running?")
    return doc


async def site_input(fleet: Fleet, site: Site) -> tuple[SiteInput | None, list[str]]:
    """Plan ``site``: its workflow input, or the plan's refusals (nothing is started)."""
    prepared = prepare_loaded(await read_inputs(site.playbook, site=site.name))
    if not prepared.plan.runnable:
        return None, list(prepared.plan.refusals)
    playbook = prepared.playbook
    # the engine needs neither the compatibility verdict nor the estimated chart
    plan = dataclasses.replace(prepared.plan, compatibility={}, schedule=())
    return SiteInput(
        fleet.name, site.name, str(site.playbook), str(site.state_dir),
        playbook.inventory.adapter, site.speed, plan, prepared.inventory,
        Policy.from_playbook(playbook), float(fleet.temporal.activity_timeout_s),
        fleet.temporal.activity_attempts,
    ), []


async def start_site(client: Client, fleet: Fleet, site: Site, given: SiteInput) -> None:
    """Start the site's workflow (attaching when it already runs)."""
    site.state_dir.mkdir(parents=True, exist_ok=True)
    inventory = site.state_dir / INVENTORY_FILE
    if given.adapter == "simulated" and not inventory.exists():
        inventory.write_text(dump_inventory(given.inventory), encoding="utf-8")
    await client.start_workflow(
        WORKFLOW, given, id=fleet.workflow_id(site), task_queue=fleet.temporal.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_timeout=timedelta(seconds=5), rpc_timeout=_RPC_TIMEOUT,
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
        self._shown: dict[str, str] = {}

    async def run(self) -> Outcome:
        """Plan, start and follow; returns what every site ended with."""
        fleet = self.fleet
        client = await connect(fleet.temporal, wait_s=10.0)
        docs = self.outcome.docs
        for site in fleet.sites:
            docs[site.name] = await observe(client, fleet.workflow_id(site))
            if docs[site.name]["state"] != "not_started":
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
        for site in self.fleet.sites:
            doc = self.outcome.docs[site.name]
            if site.name in self.outcome.refused or doc["state"] in ("done", "failed"):
                continue
            if doc["state"] == "not_started":
                continue  # _start_more starts it when the policy allows
            doc = await observe(client, self.fleet.workflow_id(site))
            self.outcome.docs[site.name] = doc
            shown = line(site.name, doc)
            if self._shown.get(site.name) != shown:
                self._shown[site.name] = shown
                self.say(shown)

    async def _start_more(self, client: Client) -> None:
        docs = self.outcome.docs
        failed = sum(1 for d in docs.values() if d["state"] == "failed")
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
    """``fleet status --format json``: every site as Temporal sees it."""
    client = await connect(fleet.temporal)
    sites = []
    for site in fleet.sites:
        try:
            doc = await observe(client, fleet.workflow_id(site))
        except RPCError as exc:
            raise TemporalUnreachable(f"Temporal at {fleet.temporal.address} does not answer: "
                                      f"{exc}") from exc
        sites.append({"name": site.name, "workflow_id": fleet.workflow_id(site), **doc})
    return {"fleet": fleet.name, "sites": sites}


async def signal_sites(fleet: Fleet, signal: str, say: Callable[[str], None],
                       retry_failed: bool = False) -> int:
    """Send ``signal`` (pause or resume) to every site whose workflow runs; how many got it."""
    client = await connect(fleet.temporal)
    sent = 0
    for site in fleet.sites:
        handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(fleet.workflow_id(site))
        try:
            desc = await handle.describe(rpc_timeout=_RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise TemporalUnreachable(f"Temporal at {fleet.temporal.address} does not "
                                          f"answer: {exc}") from exc
            say(f"{site.name}: not started; nothing to {signal}")
            continue
        if desc.status is not WorkflowExecutionStatus.RUNNING:
            say(f"{site.name}: already finished; nothing to {signal}")
            continue
        if signal == "pause":
            await handle.signal("pause", FLEET_PAUSE, rpc_timeout=_RPC_TIMEOUT)
            say(f"{site.name}: pause requested (in-flight work finishes first)")
        else:
            await handle.signal("resume", retry_failed, rpc_timeout=_RPC_TIMEOUT)
            say(f"{site.name}: resume requested (a site that is not paused ignores it)")
        sent += 1
    return sent
