"""``fleet worker``: run the site workflows and their activities until stopped."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import timedelta

from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from upgrade.fleet.activities import step
from upgrade.fleet.connect import connect
from upgrade.fleet.fleetfile import Fleet
from upgrade.fleet.workflow import SiteWorkflow

#: modules the sandbox imports once, outside it: the pure engine and what it is built on
PASSTHROUGH = ("upgrade", "transitions", "yaml", "structlog")
#: how long a stopping worker waits for its in-flight work
SHUTDOWN_S = 10.0


def sandbox() -> SandboxedWorkflowRunner:
    """The workflow sandbox, passing the (pure, deterministic) engine modules through."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


async def run_worker(fleet: Fleet, say: Callable[[str], None],
                     max_concurrent_activities: int = 50) -> None:
    """Poll the fleet's task queue until SIGINT or SIGTERM, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    settings = fleet.temporal
    client = await connect(settings, wait_s=30.0, store=fleet.payload_dir)
    worker = Worker(
        client, task_queue=settings.task_queue, workflows=[SiteWorkflow],
        activities=[step], workflow_runner=sandbox(),
        max_concurrent_activities=max_concurrent_activities,
        # a dead worker's sticky tasks go back to the shared queue quickly
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )
    running = asyncio.create_task(worker.run())
    say(f"worker polling task queue {settings.task_queue!r} at {settings.address} "
        f"(namespace {settings.namespace}); SIGINT or SIGTERM stops it")
    await asyncio.wait([running, asyncio.create_task(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    if running.done():  # the worker gave up on its own (e.g. its namespace is gone)
        running.result()
        return
    try:  # in-flight activities finish (or are retried by Temporal elsewhere)
        await asyncio.wait_for(worker.shutdown(), SHUTDOWN_S)
    except TimeoutError:
        say(f"worker did not stop within {SHUTDOWN_S:g} s (is Temporal reachable?); leaving "
            "what it held to Temporal's timeouts")
        return
    say("worker stopped")
