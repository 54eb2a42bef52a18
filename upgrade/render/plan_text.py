"""``plan --format text``: the plan as a rich table, for people.

The flow first (the Upgrade Coordinator order of the target release, with its source),
then one row per phase, in the flow's order, and one per group under it: the units in
upgrade order, how many run at once, the estimated start (from the upgrade's start) and
duration in ``h:mm:ss``; then the total, the pre-check findings with their
acknowledged / blocking markers, the compatibility verdict, the notes and the
verdict.  It fits an 80-column terminal, and the ``Console`` leaves colour out
by itself when the stream is not a terminal.  Every text from the files goes
through :class:`rich.text.Text`, so a ``[`` in a message is never markup.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.core.model import Finding, Severity
from upgrade.core.plan import GroupPlan, Phase, PhasePlan, Plan
from upgrade.render import hms, printable
from upgrade.render.plan_window import finish_text

#: what the phases without upgrade units do
_PHASE_WORK = {
    Phase.PRECHECK: "health checks",
    Phase.BUNDLE: "upload the bundle",
    Phase.COORDINATOR: "upgrade the coordinator",
    Phase.POSTCHECK: "versions and health",
}


def render_plan(plan: Plan, console: Console) -> None:
    """Print ``plan`` on ``console``."""
    console.print(Text.assemble(
        ("Upgrade plan ", "bold"), (printable(plan.name), "bold cyan"),
        f": NSX-T {plan.source_version} -> {plan.target_version}",
    ))
    _flow(plan, console)
    if plan.no_flow:
        console.print(Text("Verdict: REFUSED (no upgrade flow for this hop)",
                           style="bold red"))
        return
    console.print(Text(
        f"Hosts: {plan.upgrade_mode.value.replace('_', ' ')} mode; pause after each group: "
        f"{'yes' if plan.pause_after_each_group else 'no'}"
    ))
    for line in _operating(plan):
        console.print(Text(line))
    console.print(_table(plan))
    finish = finish_text(plan)
    console.print(Text.assemble(("Estimated total: ", "bold"), hms(plan.estimated_duration_s),
                                f"; {finish}" if finish else ""))
    if plan.canary_hosts and plan.canary_watch_s is None:
        console.print(Text("  (not counting the pause after the canary: the run waits there "
                           "for `resume`)"))
    if plan.window is not None:
        console.print(Text(f"Maintenance window: {plan.window.describe()} (units start only "
                           "inside it; what is in flight when it closes finishes)"))
    _findings(plan.findings, console)
    _compatibility(plan, console)
    if plan.notes:
        console.print(Text("Notes:", style="bold"))
        console.print(_list([(Text("  -"), Text(printable(note))) for note in plan.notes]))
    if plan.already_at_target:
        console.print(Text.assemble(
            (f"Already at {plan.target_version} (left as they are): ", "bold"),
            f"{len(plan.already_at_target)} of "
            f"{len(plan.already_at_target) + plan.unit_count()} units",
        ))
    if plan.nothing_to_do:
        console.print(Text(f"Verdict: nothing to do: every unit already reports "
                           f"{plan.target_version}", style="bold green"))
    elif plan.runnable:
        console.print(Text("Verdict: runnable", style="bold green"))
    else:
        count = len(plan.refusals)
        console.print(Text(
            f"Verdict: REFUSED ({count} blocking reason{'s' if count != 1 else ''})",
            style="bold red",
        ))


def _flow(plan: Plan, console: Console) -> None:
    """Which Upgrade Coordinator order the plan follows, and where it comes from."""
    flow = plan.flow
    if flow is None:
        if plan.no_flow:
            console.print(Text.assemble(("Flow: ", "bold"), ("none", "bold red"),
                                        f": {printable(plan.no_flow)}"))
        return
    order = " -> ".join(p.value for p in flow.order)
    console.print(Text.assemble(("Flow: ", "bold"), printable(f"{flow.id} ({flow.title}): "),
                                (order, "bold")))
    console.print(_list([(Text("  source:"), Text(printable(flow.source)))]))


def _operating(plan: Plan) -> list[str]:
    """The canary, failure budget and VM placement lines (none when not asked for)."""
    out = []
    if plan.canary_hosts:
        then = ("then a pause until `resume`" if plan.canary_watch_s is None
                else f"then a watch of {hms(plan.canary_watch_s)} (in the estimate)")
        out.append(f"Canary: {printable(', '.join(plan.canary_hosts))} alone first, {then}")
    if plan.max_fail_hosts_percent:
        hosts = sum(len(g.units) for g in plan.phase(Phase.HOSTS).groups)
        allowed = plan.max_fail_hosts_percent * hosts // 100
        out.append(f"Failure budget: {plan.max_fail_hosts_percent} % of {hosts} hosts: the "
                   f"hosts phase goes on past up to {allowed} failed host"
                   f"{'' if allowed == 1 else 's'}")
    if plan.restore_vm_placement:
        out.append("VM placement: VMs the tool moves go back to their host once it is "
                   "upgraded (clusters whose DRS is not fully automated)")
    return out


def _table(plan: Plan) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    table.add_column("Phase / group", no_wrap=True, max_width=22, overflow="ellipsis")
    table.add_column("Units, in order", ratio=1, overflow="fold")
    table.add_column("At once", justify="right", no_wrap=True)
    table.add_column("Start", justify="right", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    capped = False
    for phase in plan.phases:
        work = "nothing to do" if phase.skipped else _PHASE_WORK.get(phase.name, "")
        table.add_row(
            Text(phase.name.value, style="bold"),
            Text(work, style="dim"),
            _groups_at_once(phase),
            hms(phase.estimated_start_s),
            hms(phase.estimated_duration_s),
        )
        for group in phase.groups:
            start, duration = _group_times(plan, phase, group)
            capped = capped or group.note is not None
            units = Text(printable(", ".join(group.units)))
            if group.current:
                units.append(("; " if group.units else "")
                             + printable(f"already at {plan.target_version}: "
                                         f"{', '.join(group.current)}"),
                             style="dim")
            table.add_row(
                Text(printable(f"  {group.name}")),
                units,
                f"{group.max_parallel}{'*' if group.note else ''}" if group.units else "",
                start,
                duration,
            )
    if capped:
        table.caption = "* concurrency capped: see the notes"
        table.caption_justify = "left"
    return table


def _groups_at_once(phase: PhasePlan) -> str:
    if len(phase.groups) < 2:
        return ""
    n = phase.max_parallel_groups
    return f"{n} group{'s' if n != 1 else ''}"


def _group_times(plan: Plan, phase: PhasePlan, group: GroupPlan) -> tuple[str, str]:
    units = set(group.units)
    bars = [b for b in plan.schedule if b.phase is phase.name and b.unit in units]
    if not bars:
        return "", ""
    start = min(b.start for b in bars)
    return hms(start), hms(max(b.end for b in bars) - start)


def _findings(findings: tuple[Finding, ...], console: Console) -> None:
    if not findings:
        console.print(Text.assemble(("Pre-check findings: ", "bold"), "none"))
        return
    console.print(Text("Pre-check findings:", style="bold"))
    rows = []
    for f in findings:
        if f.blocking:
            marker = Text("  [BLOCKING]", style="bold red")
        elif f.advisory and not f.acknowledged:
            marker = Text("  [warning]", style="yellow")
        else:
            marker = Text("  [acknowledged]", style="yellow")
        where = f" on {f.unit}" if f.unit else ""
        text = Text(printable(f"{f.severity.value} {f.id}{where}: {f.message}"))
        if f.blocking and f.severity is Severity.WARNING:
            text.append(printable(f" (acknowledge with --ack {f.id})"))
        elif f.advisory and not f.acknowledged:
            text.append(" (shown, does not block)")
        rows.append((marker, text))
    console.print(_list(rows))


def _list(rows: list[tuple[Text, Text]]) -> Table:
    """Two columns without borders: a marker, and text that wraps under itself."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for marker, text in rows:
        grid.add_row(marker, text)
    return grid


def _compatibility(plan: Plan, console: Console) -> None:
    info = plan.compatibility
    verdict = Text("OK", style="green") if plan.compatible else Text("REFUSED", style="bold red")
    console.print(Text.assemble(("Compatibility: ", "bold"), verdict))
    rows = []
    if info.get("reason"):
        rows.append((Text("  -"), Text(printable(str(info["reason"])))))
    if info.get("source"):
        rows.append((Text("  -"), Text(f"source: {info['source']}")))
    if rows:
        console.print(_list(rows))
