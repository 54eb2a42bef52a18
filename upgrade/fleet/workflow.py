"""One site's upgrade as a Temporal workflow: the pure engine, driven by Temporal.

Events in, actions out, as :class:`~upgrade.shell.runner.Runner` drives the engine, with
Temporal in the journal's place.  The workflow keeps one activity in flight at a time: a
*call* (:class:`~upgrade.fleet.shared.Call`) runs every start the engine asked for and
watches every poll it waits on, returning when something changed; between calls the
workflow feeds what came back and fires due engine timers (workflow timers when nothing
else is waiting).  So the history grows with what happens, not with the number of polls
or units.  Between two calls nothing is in flight: a safe point, where a run whose history
passed ``history_limit`` events continues as new, carrying the engine's snapshot and its
outstanding actions (:class:`~upgrade.fleet.shared.Carry`).  A pause request is a signal,
``status`` a query.  Replaying a run's (short) history rebuilds the engine, so a killed
worker or server loses nothing; the calls also journal every fed event in the site's state
dir (:mod:`upgrade.fleet.sitelog`), the way back when a run is terminated.

This module has no side effects at import: the SDK's sandbox re-imports it for every run.
The engine modules are passed through the sandbox (they are pure and deterministic).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from upgrade.core.engine.core import Engine
    from upgrade.core.engine.items import Waiting
    from upgrade.core.engine.machines import RunState, UnitState
    from upgrade.core.engine.messages import (
        Begin,
        Event,
        PauseRequested,
        Poll,
        Resumed,
        Start,
        TimerFired,
        Wake,
        decode,
        encode,
    )
    from upgrade.core.engine.outcome import outcome
    from upgrade.core.engine.timing import Policy
    from upgrade.core.plan import SYSTEM_STEPS, Phase
    from upgrade.errors import AdapterError
    from upgrade.fleet.driver import Driver
    from upgrade.fleet.shared import (
        OPERATE,
        WORKFLOW,
        Call,
        CallResult,
        Carry,
        SiteInput,
        SiteRef,
        site_status,
    )

#: phases whose units a recovered run asks for their version (upgraded meanwhile by hand?)
_OBSERVED = (Phase.HOSTS, Phase.EDGES, Phase.CONTROLLERS, Phase.MANAGER)
#: (operation, target) of each system step -> its work item
_SYSTEM_ITEMS = {(s.op, s.target): s.item for s in SYSTEM_STEPS.values()}


@workflow.defn(name=WORKFLOW)
class SiteWorkflow:
    """Upgrades one site; pauses on the ``pause`` signal, goes on after ``resume``."""

    def __init__(self) -> None:
        self._driver: Driver | None = None
        self._site: SiteInput | None = None
        self._ref: SiteRef | None = None
        self._speed = 1.0
        self._origin = 0.0
        self._round = 0
        self._fed: list[dict[str, Any]] = []
        self._pause: str | None = None
        self._pause_sent = False
        self._resume = False
        self._retry_failed = False
        self._reconcile: list[str] = []
        self._observe: list[str] = []
        self._runs = 1
        self._policy: Policy | None = None
        self._target = ""

    @workflow.run
    async def run(self, site: SiteInput, carry: Carry | None = None) -> dict[str, Any]:
        """Run the site's plan until it is done or failed (a pause waits for ``resume``)."""
        self._site = site
        self._speed = site.speed
        now = workflow.now().timestamp()
        plan, inventory, policy = site.engine_inputs()
        baseline = site.fresh_engine()
        self._policy, self._target = policy, str(plan.target_version)
        if carry is None:
            self._origin = now
            self._driver = Driver(Engine(plan, inventory, policy), baseline=baseline)
        else:
            self._origin = carry.origin
            self._driver = Driver.restore(plan, inventory, policy, carry.snapshot,
                                          carry.outstanding, carry.last, baseline)
            self._round, self._fed = carry.round, list(carry.fed)
            self._pause, self._pause_sent = carry.pause, carry.pause_sent
            self._runs = carry.runs
        self._ref = SiteRef(site.fleet, site.name, site.playbook, site.state_dir, site.adapter,
                            self._origin, site.speed)
        if carry is None:
            self._feed(Begin(self._now()))
        elif carry.recovered:
            self._recovered(carry)
        driver = self._driver
        while True:
            await self._drive()
            await self._call([], [], until=self._now())  # journal the events that settled it
            if driver.engine.state is not RunState.PAUSED:
                return self.status()
            await workflow.wait_condition(lambda: self._resume)
            self._resume, self._pause, self._pause_sent = False, None, False
            self._feed(Resumed(self._now(), retry_failed=self._retry_failed))

    def _recovered(self, carry: Carry) -> None:
        """A new run after a dead one: resume the engine, then ask the target about every
        start the dead run may have sent and every unit not begun."""
        assert self._driver is not None
        engine = self._driver.engine
        self._reconcile = list(carry.reconcile)
        self._observe = [i.id for i in engine.items.values()
                         if i.state is UnitState.PENDING and i.index == 0 and
                         i.phase in _OBSERVED]
        self._feed(Resumed(self._now(), retry_failed=carry.retry_failed))

    @workflow.signal
    def pause(self, reason: str) -> None:
        """Pause at the next safe point: what is in flight finishes, nothing new starts."""
        if self._pause is None:
            self._pause = reason or "pause requested"

    @workflow.signal
    def resume(self, retry_failed: bool = False) -> None:
        """Go on after a pause (the engine's ``Resumed``), retrying failed units if asked; a
        pause requested but not yet passed to the engine is cancelled."""
        driver = self._driver
        paused = driver is not None and driver.engine.state is RunState.PAUSED
        if self._pause is not None and not self._pause_sent:
            self._pause = None  # not passed to the engine yet: it never happens
            if not paused:
                return
        if paused or self._pause_sent:  # paused, or pausing: goes on once it has paused
            self._resume = True
            self._retry_failed = retry_failed

    @workflow.query
    def status(self) -> dict[str, Any]:
        """Where the site stands (``fleet status``)."""
        if self._driver is None:
            return {"state": "not_started", "phase": None,
                    "units": {"total": 0, "done": 0, "failed": [], "in_progress": [],
                              "skipped": []},
                    "reasons": [], "pause_requested": None, "clock_s": 0.0}
        doc = site_status(self._driver.engine, self._driver.last, self._pause)
        doc["runs"] = self._runs
        return doc

    # -- the loop -------------------------------------------------------------------------

    def _now(self) -> float:
        """The site's clock: workflow time since the site's start, times the speed."""
        last = self._driver.last if self._driver is not None else 0.0
        return max(last, (workflow.now().timestamp() - self._origin) * self._speed)

    def _feed(self, event: Event) -> None:
        assert self._driver is not None
        self._fed.append(encode(self._driver.feed(event)))

    def _pause_due(self) -> bool:
        return self._pause is not None and not self._pause_sent

    async def _drive(self) -> None:
        """Feed outcomes and timers to the engine until it settles (done, paused, failed)."""
        assert self._driver is not None and self._site is not None
        driver, site = self._driver, self._site
        engine = driver.engine
        while not engine.settled:
            if self._pause_due():
                self._pause_sent = True
                self._feed(PauseRequested(self._now(), self._pause or ""))
                continue
            now = self._now()
            wakes = sorted((w for w in driver.of_kind(Wake) if isinstance(w, Wake)),
                           key=lambda w: w.at)
            if wakes and wakes[0].at <= now:
                for wake in wakes:
                    if wake.at <= now and not engine.settled:
                        self._feed(TimerFired(now, wake.token))
                continue
            if workflow.info().get_current_history_length() >= site.history_limit:
                self._continue()
            starts = [s for s in driver.of_kind(Start) if isinstance(s, Start)]
            polls = [p for p in driver.of_kind(Poll) if isinstance(p, Poll)]
            next_wake = wakes[0].at if wakes else None
            if not starts and not polls:
                if next_wake is None:
                    raise ApplicationError("the engine ran out of work before it settled",
                                           non_retryable=True)
                delay = (next_wake - now) / self._speed
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(self._pause_due,
                                                  timeout=timedelta(seconds=delay))
                continue
            cap = now + site.watch_s * self._speed
            until = min(cap, next_wake) if next_wake is not None else cap
            await self._call(starts, polls, until)

    async def _call(self, starts: list[Start], polls: list[Poll], until: float) -> None:
        """One activity call; its outcomes fed, its unchanged polls postponed."""
        assert self._driver is not None and self._site is not None
        driver, site = self._driver, self._site
        engine = driver.engine
        entries: list[dict[str, Any]] = []
        for poll in polls:
            item = engine.items.get(_SYSTEM_ITEMS.get((poll.op, poll.unit), poll.unit))
            if item is None or item.waiting is not Waiting.POLL:  # every answer goes back
                entries.append({"action": encode(poll), "seen": None, "deadline": 0.0})
            else:
                entries.append({"action": encode(poll), "deadline": item.deadline,
                                "seen": list(item.seen) if item.seen else None})
        assert self._policy is not None
        call = Call(self._round, self._fed, [encode(s) for s in starts], entries, until,
                    self._policy.poll_interval_s, self._reconcile, self._observe,
                    self._target)
        self._round += 1
        self._fed, self._reconcile, self._observe = [], [], []
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=500),
                            backoff_coefficient=2.0, maximum_interval=timedelta(seconds=10),
                            maximum_attempts=site.activity_attempts)
        try:
            result = await workflow.execute_activity(
                OPERATE, args=[self._ref, call], result_type=CallResult,
                start_to_close_timeout=timedelta(seconds=site.watch_s + site.activity_timeout_s),
                heartbeat_timeout=timedelta(seconds=min(site.activity_timeout_s, 10.0)),
                retry_policy=retry)
        except ActivityError as exc:  # out of retries: the adapter could not be reached
            cause = exc.cause or exc
            error = AdapterError(f"{OPERATE}: {cause}")
            actions: list[Start | Poll] = [*starts, *polls]
            result = CallResult([encode(outcome(a, self._now(), error)) for a in actions], [])
        if self._pause_due():  # a pause that came during the call goes first
            self._pause_sent = True
            self._feed(PauseRequested(self._now(), self._pause or ""))
        for data in result.events:
            self._feed(decode(data))
        for key, at in result.later:
            driver.postpone(key, float(at))

    def _continue(self) -> None:
        """Continue as new at this safe point (no activity in flight), carrying the engine."""
        assert self._driver is not None
        snapshot, outstanding = self._driver.save()
        carry = Carry(snapshot, outstanding, self._origin, self._driver.last, self._round,
                      self._fed, self._pause, self._pause_sent, list(self._reconcile),
                      runs=self._runs + 1)
        workflow.continue_as_new(args=[self._site, carry])

