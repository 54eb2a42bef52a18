"""Engine snapshots (issue 12 item 2), pure core: an engine rebuilt from its snapshot goes
on exactly as the original does."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim_helpers import Case, cases, fault_sets
from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import encode
from upgrade.core.engine.snapshot import VERSION, dec, enc, migrate, readable
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Op
from upgrade.core.plan import PHASES
from upgrade.shell.journal import dump_payload

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _fresh(case: Case) -> Engine:
    return Engine(case.plan, case.inventory, Policy.from_playbook(case.playbook))


def _through_json(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(dump_payload(data))
    return loaded


@SETTINGS
@given(cases(), st.data())
def test_an_engine_from_its_snapshot_issues_the_same_actions(case: Case, data: st.DataObject,
                                                             ) -> None:
    if data.draw(st.booleans()):
        case = case.with_faults(data.draw(fault_sets(case.inventory)))
    run = case.run()
    run.start()
    for _ in range(3):  # retry failures, resume pauses: more of the state gets exercised
        if run.state is RunState.DONE:
            break
        run.resume(retry_failed=True)
    events = run.events
    cut = data.draw(st.integers(0, len(events)))
    original = _fresh(case)
    for event in events[:cut]:
        original.handle(event)
    saved = _through_json(original.snapshot())
    copy = Engine.from_snapshot(case.plan, case.inventory, Policy.from_playbook(case.playbook),
                                saved)  # type: ignore[arg-type]
    assert _through_json(copy.snapshot()) == saved
    # enums stored as plain strings come back as the enums; derived counters are rebuilt
    assert copy.stop is original.stop and copy.phase is original.phase
    assert all(copy.items[i].waiting is item.waiting for i, item in original.items.items())
    assert all(copy.ledger.failed_in(p) == original.ledger.failed_in(p) for p in PHASES)
    for event in events[cut:]:
        assert [encode(a) for a in copy.handle(event)] == \
            [encode(a) for a in original.handle(event)], event
        assert copy.quiet == original.quiet
    assert _through_json(copy.snapshot()) == _through_json(original.snapshot())
    assert copy.state is original.state


def test_a_fresh_engine_snapshots_to_almost_nothing() -> None:
    from tests.sim_helpers import make_inventory, make_playbook
    from upgrade.core.model import Drs
    case = Case(make_inventory([(Drs.MANUAL, ((True,), (True,)))], edge_clusters=(1,),
                               controllers=1), make_playbook())
    snap = _fresh(case).snapshot()
    assert snap["items"] == {} and snap["groups"] == {}


def test_values_come_back_with_their_types() -> None:
    value = {("a", 1): [1.5, float("inf"), None], Op.UPGRADE: {"x", "y"}, "t": (Op.VERIFY,)}
    assert dec(json.loads(json.dumps(enc(value)))) == value


def test_a_version_1_snapshot_reads_as_the_current_layout() -> None:
    """The old layout (the engine's attributes by name, helper objects as ``$o``) is moved
    field by field to the parts; a layout this version does not know, or an attribute
    version 1 never had, is refused."""
    old = {"version": 1, "state": "paused", "items": {}, "groups": {}, "pipelines": [],
           "engine": {"now": 5.0, "stop": "pause", "_checkpoint": True,
                      "_running_vms": {"$dd": [["esx-01", []]], "rm": []},
                      "canary": {"$o": {"stage": {"$e": "x:Stage", "v": "done"}}},
                      "phase": {"$e": "upgrade.core.plan:Phase", "v": "hosts"}}}
    assert migrate(old) == {
        "version": VERSION, "state": "paused", "phase": old["engine"]["phase"],
        "parts": {"run": {"now": 5.0, "stop": "pause", "checkpoint": True},
                  "capacity": {"running_vms": {"$dd": [["esx-01", []]], "rm": []}},
                  "canary": {"stage": {"$e": "x:Stage", "v": "done"}}},
        "items": {}, "groups": {}, "pipelines": []}
    assert readable(old) and not readable({"version": 3})
    with pytest.raises(ValueError, match="version 3"):
        migrate({"version": 3})
    with pytest.raises(ValueError, match="_gone"):
        migrate({**old, "engine": {"_gone": 1}})
