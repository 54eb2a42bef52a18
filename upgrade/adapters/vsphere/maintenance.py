"""Maintenance mode in and out: start once, then read where it stands.

Blocking pyVmomi calls: run them inside :meth:`~upgrade.adapters.vsphere.session.Session.run`.
"""

from __future__ import annotations

import structlog

from upgrade.adapters.vsphere.collector import ENTER, EXIT, Collector
from upgrade.core.engine.messages import OpState
from upgrade.core.engine.outcome import OpStatus

__all__ = ["start_enter", "start_exit", "status"]

log = structlog.get_logger(__name__)


def start_enter(vcenter: Collector, host: str, timeout_s: int) -> None:
    """Start putting ``host`` into maintenance mode (vCenter fails the task after
    ``timeout_s`` seconds); no-op when it is there or a task putting it there is in flight."""
    h = vcenter.host(host)
    if not h.get("runtime.inMaintenanceMode") and not vcenter.in_flight(h.ref, ENTER):
        h.ref.EnterMaintenanceMode_Task(timeout=int(timeout_s))
        log.info("vsphere.enter_maintenance_started", host=host, timeout_s=timeout_s)


def start_exit(vcenter: Collector, host: str) -> None:
    """Start taking ``host`` out of maintenance mode; no-op when it is not in maintenance
    mode or a task taking it out is in flight."""
    h = vcenter.host(host)
    if h.get("runtime.inMaintenanceMode") and not vcenter.in_flight(h.ref, EXIT):
        h.ref.ExitMaintenanceMode_Task(timeout=0)
        log.info("vsphere.exit_maintenance_started", host=host)


def status(vcenter: Collector, host: str, *, entering: bool) -> OpStatus:
    """Entering (or leaving) maintenance mode on ``host``: done once it is in (out of) it,
    running while a task taking it there is in flight, failed when the last such task
    failed, else not_started."""
    kind, doing = (ENTER, "entering") if entering else (EXIT, "exiting")
    doing += " maintenance mode on"
    h = vcenter.host(host)
    where = "in" if h.get("runtime.inMaintenanceMode") else "not in"
    if bool(h.get("runtime.inMaintenanceMode")) == entering:
        return OpStatus(OpState.DONE, f"host {host} is {where} maintenance mode")
    tasks = vcenter.tasks([h.ref], (kind,))
    last = tasks[-1] if tasks else None
    if last is not None and last.state is OpState.RUNNING:
        percent = f" ({last.progress}%)" if last.progress is not None else ""
        return OpStatus(last.state, f"{doing} host {host}: task {last.word}{percent}")
    if last is not None and last.state is OpState.FAILED:
        return OpStatus(last.state, f"{doing} host {host} failed: {last.error}")
    return OpStatus(OpState.NOT_STARTED, f"host {host} is {where} maintenance mode")
