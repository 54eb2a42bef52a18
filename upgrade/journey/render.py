"""The journey's plan and status for people (text) and for scripts (JSON)."""

from __future__ import annotations

import os
from typing import Any

from upgrade.journey.planning import JourneyPlan
from upgrade.render import hms

_PHASES = ("precheck", "bundle", "coordinator", "hosts", "edges", "controllers", "manager",
           "postcheck")


def plan_json(plan: JourneyPlan) -> dict[str, Any]:
    """``journey plan --format json``."""
    steps = []
    for step in plan.steps:
        doc: dict[str, Any] = {**step.to_json(), "operator_step": not step.is_hop,
                               "estimated_duration_s": None}
        hop = plan.hops.get(step.n)
        if hop is not None:
            bundle = hop.bundle
            doc.update(
                estimated_duration_s=hop.estimated_duration_s,
                bundle={"path": None if bundle.path is None else str(bundle.path),
                        "url": bundle.url, "sha256": bundle.sha256},
                phases=[{"name": p["name"], "estimated_duration_s": p["estimated_duration_s"]}
                        for p in hop.plan["phases"]],
                findings=hop.plan["findings"], refusals=hop.plan["refusals"],
                compatibility=hop.plan["compatibility"],
            )
            if "flow" in hop.plan:
                doc["flow"] = hop.plan["flow"]
        steps.append(doc)
    return {"journey": plan.spec.name, "from": plan.start.to_json(),
            "to": plan.result.to_json()["to"],
            "found": plan.result.found, "steps": steps,
            "estimated_duration_s": plan.estimated_duration_s,
            "operator_steps": sum(1 for s in plan.steps if not s.is_hop),
            "warnings": [w for s in plan.steps for w in s.warnings],
            "refusals": plan.refusals}


def plan_text(plan: JourneyPlan) -> str:
    """``journey plan``: every step with its estimate, sources and warnings."""
    hops = sum(1 for s in plan.steps if s.is_hop)
    gates = len(plan.steps) - hops
    lines = [f"Journey {plan.spec.name}: {plan.start.describe()} \u2192 "
             f"{plan.result.goal.describe()}",
             f"{len(plan.steps)} steps: {hops} NSX-T upgrade{'s' if hops != 1 else ''} run by "
             f"nsxt-upgrade, {gates} operator step{'s' if gates != 1 else ''} (gates: the "
             "journey stops until the new version is confirmed)", ""]
    for step in plan.steps:
        hop = plan.hops.get(step.n)
        if hop is not None:
            estimate = f"estimated {hms(hop.estimated_duration_s)} (nsxt-upgrade)"
        else:
            estimate = "operator step (not estimated)"
        lines.append(f"{step.n:2d}. {step.title()}: {estimate}")
        lines.append(f"    state after: {step.after.describe()}")
        if hop is not None:
            flow = hop.plan.get("flow")
            if isinstance(flow, dict):
                lines.append(f"    flow: {flow.get('id')} ({flow.get('source')})")
            phases = ", ".join(f"{p['name']} {hms(p['estimated_duration_s'])}"
                               for p in hop.plan["phases"] if p["name"] in _PHASES)
            lines.append(f"    phases: {phases}")
            bundle = hop.bundle
            shown = os.path.normpath(bundle.path) if bundle.path is not None else str(bundle.url)
            lines.append(f"    bundle: {shown}"
                         + (f" (sha256 {bundle.sha256[:12]}\u2026)" if bundle.sha256
                            else " (no sha256: unverified)"))
            for finding in hop.plan["findings"]:
                ack = " (acknowledged)" if finding.get("acknowledged") else ""
                lines.append(f"    finding: {finding['severity']} {finding['id']}: "
                             f"{finding['message']}{ack}")
            for warning in hop.plan["compatibility"].get("warnings", ()):
                lines.append(f"    compatibility warning: {warning}")
            for refusal in hop.plan["refusals"]:
                lines.append(f"    refused: {refusal}")
        else:
            lines.append(f"    confirmed by: Ops Manager's API or `journey resume --confirm "
                         f"{step.kind}={step.new}`")
        lines.append(f"    why: {step.reason}")
        lines.append(f"    source: {step.source}")
        for warning in step.warnings:
            lines.append(f"    warning: {warning}")
    if not plan.result.found:
        lines += [f"refused: {r}" for r in plan.refusals]
    lines += ["", f"Estimated: {hms(plan.estimated_duration_s)} of NSX-T upgrades, plus "
              f"{gates} operator step{'s' if gates != 1 else ''}."]
    return "\n".join(lines) + "\n"


def status_text(doc: dict[str, Any]) -> str:
    """``journey status``."""
    lines = [f"journey {doc['journey']}: {doc['state']}"]
    if doc["at"]:
        at = doc["at"]
        lines.append(f"at: PKS {at['pks']}, NSX-T {at['nsxt']}, Ops Manager {at['opsman']}")
    for step in doc["steps"]:
        where = f"  ({step['state_dir']})" if step.get("state_dir") else ""
        run = step.get("run")
        units = (f", units {run['units']['done']}/{run['units']['total']}"
                 if run and run.get("units") else "")
        lines.append(f"{step['n']:2d}. {step['kind']:6s} {step['from']} \u2192 {step['to']}: "
                     f"{step['state']}{units}{where}")
    if doc.get("waiting_for"):
        wanted = ", ".join(f"{k}={v}" for k, v in doc["waiting_for"].items())
        lines.append(f"waiting for: {wanted}")
    if doc.get("reason"):
        lines.append(f"refused: {doc['reason']}")
    if doc.get("next"):
        lines.append(f"next: {doc['next']}")
    return "\n".join(lines) + "\n"
