"""One site's upgrade as a Temporal workflow: the pure engine, driven by Temporal.

Events in, actions out, exactly as :class:`~upgrade.shell.runner.Runner` drives the engine, with
Temporal in the journal's place: every adapter start or poll is an activity (Temporal's
retries and timeouts), every engine timer a workflow timer, a pause request a signal and
``status`` a query.  Replaying the workflow's history rebuilds the engine, so a killed
worker or server loses nothing.

This module has no side effects at import: the SDK's sandbox re-imports it for every run.
The engine modules are passed through the sandbox (they are pure and deterministic).
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from upgrade.core.engine.core import Engine
    from upgrade.core.engine.machines import RunState
    from upgrade.core.engine.messages import (
        Action,
        Begin,
        Event,
        Notice,
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
    from upgrade.errors import AdapterError
    from upgrade.fleet.shared import OPERATE, WORKFLOW, SiteInput, SiteRef, site_status


@workflow.defn(name=WORKFLOW)
class SiteWorkflow:
    """Upgrades one site; pauses on the ``pause`` signal, goes on after ``resume``."""

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._ref: SiteRef | None = None
        self._site: SiteInput | None = None
        self._origin = 0.0
        self._speed = 1.0
        self._last = 0.0
        self._results: list[Event] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._pause: str | None = None
        self._pause_sent = False
        self._resume = False
        self._retry_failed = False

    @workflow.run
    async def run(self, site: SiteInput) -> dict[str, Any]:
        """Run the site's plan until it is done or failed (a pause waits for ``resume``)."""
        self._site = site
        self._speed = site.speed
        self._origin = workflow.now().timestamp()
        self._ref = SiteRef(site.fleet, site.name, site.playbook, site.state_dir, site.adapter,
                            self._origin, site.speed)
        engine = Engine(site.plan, site.inventory, site.policy)
        self._engine = engine
        self._feed(Begin(self._now()))
        while True:
            await self._drain(engine)
            if engine.state is not RunState.PAUSED:
                return self.status()
            await workflow.wait_condition(lambda: self._resume)
            self._resume, self._pause, self._pause_sent = False, None, False
            self._feed(Resumed(self._now(), retry_failed=self._retry_failed))

    @workflow.signal
    def pause(self, reason: str) -> None:
        """Pause at the next safe point: what is in flight finishes, nothing new starts."""
        if self._pause is None:
            self._pause = reason or "pause requested"

    @workflow.signal
    def resume(self, retry_failed: bool = False) -> None:
        """Go on after a pause (the engine's ``Resumed``), retrying failed units if asked."""
        engine = self._engine
        if engine is not None and engine.state is RunState.PAUSED:
            self._resume = True
            self._retry_failed = retry_failed

    @workflow.query
    def status(self) -> dict[str, Any]:
        """Where the site stands (``fleet status``)."""
        if self._engine is None:
            return {"state": "not_started", "phase": None,
                    "units": {"total": 0, "done": 0, "failed": [], "in_progress": [],
                              "skipped": []},
                    "reasons": [], "pause_requested": None, "clock_s": 0.0}
        return site_status(self._engine, self._last, self._pause)

    # -- the loop -------------------------------------------------------------------------

    def _now(self) -> float:
        """The site's clock: workflow time since the start, times the speed."""
        return max(self._last, (workflow.now().timestamp() - self._origin) * self._speed)

    def _feed(self, event: Event) -> None:
        if event.at < self._last:  # another machine's clock: never let time run backwards
            event = dataclasses.replace(event, at=self._last)  # type: ignore[type-var]
        self._last = event.at
        assert self._engine is not None
        for action in self._engine.handle(event):
            if isinstance(action, Notice):
                continue
            task = asyncio.create_task(self._work(action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, engine: Engine) -> None:
        """Feed outcomes to the engine until it settles (done, paused or failed)."""
        while not engine.settled:
            if self._pause is not None and not self._pause_sent:
                self._pause_sent = True
                self._feed(PauseRequested(self._now(), self._pause))
                continue
            if not self._results:
                if not self._tasks:
                    raise ApplicationError("the engine ran out of work before it settled",
                                           non_retryable=True)
                await workflow.wait_condition(
                    lambda: bool(self._results)
                    or (self._pause is not None and not self._pause_sent))
                continue
            self._feed(self._results.pop(0))
        for task in list(self._tasks):  # retry timers of a settled run: nothing to wake
            task.cancel()
        self._results.clear()

    async def _work(self, action: Action) -> None:
        if isinstance(action, Poll | Wake):
            delay = (action.at - self._now()) / self._speed
            if delay > 0:
                await workflow.sleep(delay)
        if isinstance(action, Wake):
            self._results.append(TimerFired(self._now(), action.token))
            return
        assert isinstance(action, Start | Poll) and self._site is not None
        try:
            data = await workflow.execute_activity(
                OPERATE, args=[self._ref, encode(action)], result_type=dict,
                start_to_close_timeout=timedelta(seconds=self._site.activity_timeout_s),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=10),
                    maximum_attempts=self._site.activity_attempts),
            )
            event: Event = decode(data)
        except ActivityError as exc:  # out of retries: the adapter could not be reached
            cause = exc.cause or exc
            event = outcome(action, self._now(), AdapterError(f"{OPERATE}: {cause}"))
        self._results.append(event)
