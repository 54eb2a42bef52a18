"""The next command to give an operator: the one source of every "what next" line.

The live display at the end of ``run``/``resume``, ``status`` and the report all say
what moves a run on; they must say the same.  Each reads the run its own way (the
engine, the status document, the report document) into :class:`RunFacts`, and
:func:`next_command` turns the facts into the sentence.  A failed unit *or step*
(a pre-check that failed is not a unit, but ``resume`` alone only stops at it again)
needs ``--retry-failed`` or ``--skip``; a run paused because its maintenance window
closed needs ``--wait`` (``resume`` alone pauses again at once), and both at once need
both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState, UnitState

#: the words of the stop reason the maintenance-window gate gives when it pauses a run
WINDOW_CLOSED = "maintenance window is closed"


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What decides the next command: the run's state, and why it stopped."""

    #: ``paused``, ``failed``, ``aborted``, ``done``, ``running`` or ``not_started``
    state: str
    #: a unit or a system step (pre-check, bundle, ...) failed and waits for an operator
    failed: bool = False
    #: the run paused because its maintenance window closed
    by_window: bool = False


def resume_command(state_dir: Path | None) -> str:
    """``nsxt-upgrade resume``, naming ``state_dir`` when one was given."""
    return "nsxt-upgrade resume" + (f" --state-dir {state_dir}" if state_dir else "")


def next_command(facts: RunFacts, state_dir: Path | None) -> str | None:
    """The sentence that tells an operator how to move the run on, or None (nothing to do)."""
    resume = resume_command(state_dir)
    wait = " --wait" if facts.by_window else ""
    when = " when the window opens (--wait sleeps until then)" if facts.by_window else ""
    if facts.state == "paused":
        if facts.failed:
            return (f"continue{when} with `{resume}{wait} --retry-failed` to try the failed "
                    f"units again, or `{resume}{wait} --skip UNIT` to leave one as it is")
        return f"continue{when} with `{resume}{wait}`"
    if facts.state == "failed":
        return f"fix the cause, then `{resume}{wait} --retry-failed`"
    if facts.state == "aborted" and state_dir is not None:
        return (f"closed for good; start afresh with `nsxt-upgrade run PLAYBOOK --state-dir "
                f"{state_dir}` (this run's journal moves under {state_dir / 'runs'}/)")
    return None


def engine_facts(engine: Engine) -> RunFacts:
    """The facts of a run from its (replayed or running) engine."""
    state = {RunState.PAUSED: "paused", RunState.FAILED: "failed",
             RunState.DONE: "done"}.get(engine.state, "running")
    return RunFacts(
        state,
        failed=any(i.state is UnitState.FAILED for i in engine.items.values()),
        by_window=any(WINDOW_CLOSED in reason for reason in engine.stop_reasons),
    )


def status_facts(doc: Mapping[str, Any]) -> RunFacts:
    """The facts of a run from its ``status`` document (when no engine is at hand)."""
    return RunFacts(
        str(doc["state"]),
        failed=bool(doc["units"]["failed"]),
        by_window=bool((doc.get("window") or {}).get("paused_by_window")),
    )


def report_facts(doc: Mapping[str, Any]) -> RunFacts:
    """The facts of a run from its ``report`` document: a unit that failed, or a failure
    in a phase that did not finish (a pre-check that failed), and a last pause asked by
    the window."""
    open_phases = {p["name"] for p in doc["phases"] if p["outcome"] != "done"}
    failed = any(u["outcome"] == "failed" for u in doc["units"]) or any(
        f["unit"] is None and f["phase"] in open_phases for f in doc["failures"])
    pauses = doc.get("pauses") or []
    by_window = bool(pauses) and pauses[-1]["resumed_at_s"] is None and \
        "window" in str(pauses[-1]["by"])
    return RunFacts(str(doc["state"]), failed, by_window)


def next_step(doc: Mapping[str, Any], state_dir: Path, engine: Engine | None = None) -> str | None:
    """The command that moves the run of the ``status`` document ``doc`` on, if any (from
    ``engine``, the replayed run, when there is one: it knows failed steps too)."""
    facts = status_facts(doc)
    if engine is not None and facts.state in ("paused", "failed"):
        from_engine = engine_facts(engine)
        facts = RunFacts(facts.state, from_engine.failed or facts.failed,
                         from_engine.by_window or facts.by_window)
    return next_command(facts, state_dir)
