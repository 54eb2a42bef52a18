"""Each adapter turns the target's status words into :class:`OpState` members where it
reads the answer: the tables against the vendor's enums, every word's member, what a
word the vendor does not define reads as, and the adapters' answers built on them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from pyVmomi import vim

from tests.sim_helpers import TARGET, make_inventory
from upgrade.adapters.nsxt.api import UC_STATUS, ManagerApi
from upgrade.adapters.nsxt.bundle import AdapterMemory, BundleUpload
from upgrade.adapters.nsxt.http import NsxtHttpError
from upgrade.adapters.nsxt.status_enums import (
    BUNDLE_UPLOAD,
    CHECKS_EXECUTION,
    UC_UPGRADE,
    UNIT_UPGRADE,
)
from upgrade.adapters.nsxt.upgrades import Upgrades
from upgrade.adapters.status_words import StatusWords
from upgrade.adapters.vsphere import maintenance
from upgrade.adapters.vsphere.collector import ENTER, TASK_STATE, Collector, Obj, Task
from upgrade.core.engine.messages import OpState
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import Op
from upgrade.sim import ops
from upgrade.sim.world import World

T = TypeVar("T")
CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "nsxt"
NOT_STARTED, RUNNING, DONE, FAILED = (
    OpState.NOT_STARTED, OpState.RUNNING, OpState.DONE, OpState.FAILED)
#: words no release of the vendor's API defines
STRANGE = ("BOGUS", "success", "", "In Progress")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def vendor_words(schema: str, prop: str) -> set[str]:
    """Every word the NSX-T 2.3 and 2.5.1 SDKs define for ``schema.prop``."""
    words: set[str] = set()
    for path in sorted(CONTRACTS.glob("nsxt-upgrade-api-*.json")):
        found = json.loads(path.read_text())["components"]["schemas"].get(schema)
        if found is not None:
            words |= set(found["properties"][prop]["enum"])
    return words


# -- the tables -------------------------------------------------------------------------

NSX_TABLES = [
    (UNIT_UPGRADE, {"SUCCESS": DONE, "FAILED": FAILED, "IN_PROGRESS": RUNNING,
                    "PAUSING": RUNNING, "PAUSED": NOT_STARTED, "NOT_STARTED": NOT_STARTED},
     NOT_STARTED),
    (UC_UPGRADE, {"NOT_STARTED": NOT_STARTED, "IN_PROGRESS": RUNNING, "SUCCESS": DONE,
                  "FAILED": FAILED}, NOT_STARTED),
    (BUNDLE_UPLOAD, {"UPLOADING": RUNNING, "VERIFYING": RUNNING, "SUCCESS": DONE,
                     "FAILED": FAILED}, RUNNING),
    (CHECKS_EXECUTION, {"NOT_STARTED": NOT_STARTED, "IN_PROGRESS": RUNNING,
                        "COMPLETED": DONE}, DONE),
]
VSPHERE = (TASK_STATE, {"queued": RUNNING, "running": RUNNING, "success": DONE,
                        "error": FAILED}, DONE)


@pytest.mark.parametrize("table", [t for t, _, _ in NSX_TABLES], ids=lambda t: t.name)
def test_each_nsx_table_lists_exactly_the_words_of_vmware_api(table: StatusWords) -> None:
    """A word VMware's 2.3 or 2.5.1 API defines is never read as 'unlisted', and the table
    invents none (the contracts are generated from the SDK wheels)."""
    schema, prop = table.name.split(".")
    assert set(table.states) == vendor_words(schema, prop)


@pytest.mark.parametrize(("table", "expected", "unlisted"), [*NSX_TABLES, VSPHERE],
                         ids=lambda x: x.name if isinstance(x, StatusWords) else "")
def test_every_word_reads_as_its_member(table: StatusWords, expected: dict[str, OpState],
                                        unlisted: OpState) -> None:
    """Each word means one member (a member, never a string); any other word, None or a
    non-string reads as the table's unlisted state, which is what the adapter always did."""
    for word, member in expected.items():
        assert type(table.read(word)) is OpState
        assert table.read(word) is member, word
        assert table.lists(word)
    assert table.unlisted is unlisted
    for word in (*STRANGE, None, 3, ["SUCCESS"]):
        if not (isinstance(word, str) and word in expected):
            assert table.read(word) is unlisted, word
            assert not table.lists(word)


# -- the nsxt adapter's answers -----------------------------------------------------------


class FakeManager:
    """Just enough of an NSX Manager behind :class:`NsxtClient`: canned bodies by path."""

    where = "https://nsx.test"

    def __init__(self, bodies: dict[str, Any]) -> None:
        self.bodies = bodies
        self.posted: list[str] = []

    async def get(self, path: str, **params: Any) -> Any:
        if path not in self.bodies:
            raise NsxtHttpError(f"no {path}", 404)
        return self.bodies[path]

    async def pages(self, path: str, **params: Any) -> list[Any]:
        return list(await self.get(path))

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        self.posted.append(path)
        return {"bundle_id": "b-2"}


def unit_manager(word: Any, version: str) -> FakeManager:
    unit = {"id": "u-1", "display_name": "esx-1", "group": {"id": "g-1"}}
    return FakeManager({
        "/upgrade/upgrade-units": [unit],
        "/upgrade/upgrade-unit-groups/g-1/status": [
            {"id": "u-1", "status": word, "percent_complete": 42.0}],
        "/upgrade/upgrade-units/u-1": {"current_version": version},
    })


def upgrades(client: FakeManager) -> Upgrades:
    return Upgrades(client, "2.3.0.0", ManagerApi(client), AdapterMemory(None))  # type: ignore[arg-type]


@pytest.mark.parametrize(("word", "version", "state", "detail"), [
    ("SUCCESS", "2.2.0.0", DONE, "esx-1 upgraded"),
    ("IN_PROGRESS", "2.2.0.0", RUNNING, "esx-1 upgrading (40-50%)"),
    ("PAUSING", "2.2.0.0", RUNNING, "esx-1 upgrading (40-50%)"),
    ("PAUSED", "2.2.0.0", NOT_STARTED, "esx-1 reports 2.2.0.0"),
    ("NOT_STARTED", "2.3.0.0", DONE, "esx-1 already reports 2.3.0.0"),
    ("BOGUS", "2.2.0.0", NOT_STARTED, "esx-1 reports 2.2.0.0"),
    ("BOGUS", "2.3.0.0", DONE, "esx-1 already reports 2.3.0.0"),
    (None, "2.2.0.0", NOT_STARTED, "esx-1 reports 2.2.0.0"),
])
def test_a_unit_upgrade_status_is_a_member(word: Any, version: str, state: OpState,
                                          detail: str) -> None:
    """The unit's status word decides; paused, not started or a word 2.3/2.5.1 do not
    define: the version the unit reports does."""
    status = run(upgrades(unit_manager(word, version)).upgrade_status("esx-1"))
    assert type(status.state) is OpState
    assert (status.state, status.detail) == (state, detail)


def test_a_failed_unit_names_its_errors() -> None:
    client = unit_manager("FAILED", "2.2.0.0")
    client.bodies["/upgrade/upgrade-unit-groups/g-1/status"][0]["errors"] = ["disk full"]
    assert run(upgrades(client).upgrade_status("esx-1")) == OpStatus(
        FAILED, "upgrading esx-1 failed: disk full")


@pytest.mark.parametrize(("uc", "state"), [
    ({"state": "SUCCESS"}, DONE), ({"state": "FAILED", "status": "no space"}, FAILED),
    ({"state": "IN_PROGRESS", "status": "copying"}, RUNNING),
    ({"state": "NOT_STARTED"}, NOT_STARTED), ({"state": "BOGUS"}, NOT_STARTED),
    ({}, NOT_STARTED),
])
def test_the_coordinator_status_on_2_5_1_is_a_member(uc: dict[str, str],
                                                     state: OpState) -> None:
    """``uc-upgrade-status``'s state word read at once; an unknown word: not started."""
    client = FakeManager({"/upgrade/summary": {"upgrade_coordinator_updated": False},
                          UC_STATUS: uc})
    status = run(upgrades(client).coordinator_status())
    assert type(status.state) is OpState and status.state is state


def bundle(word: Any) -> tuple[BundleUpload, FakeManager]:
    client = FakeManager({
        "/upgrade/bundles/b-1/upload-status": {"status": word, "percent": 30},
        "/upgrade/summary": {"target_version": "2.3.0.0.0.1234"},
    })
    memory = AdapterMemory(None)
    memory.remember(bundle_id="b-1")
    upload = BundleUpload(client, memory, "2.3.0.0", path=None,  # type: ignore[arg-type]
                          url="https://files.test/nsx.mub", timeout_s=60)
    return upload, client


@pytest.mark.parametrize(("word", "state", "detail", "uploads_again"), [
    ("UPLOADING", RUNNING, "uploading nsx.mub (30%)", False),
    ("VERIFYING", RUNNING, "verifying nsx.mub (30%)", False),
    ("SUCCESS", DONE, "bundle nsx.mub uploaded and verified (id b-1)", False),
    ("FAILED", FAILED, "upgrade bundle nsx.mub failed to upload or verify: "
                       "the manager gives no details", True),
    ("BOGUS", RUNNING, "bogus nsx.mub (30%)", True),
])
def test_a_bundle_upload_status_is_a_member(word: str, state: OpState, detail: str,
                                            uploads_again: bool) -> None:
    """The upload-status word read at once.  A word the API does not define is followed as
    running by a poll and uploaded again by a start (as before)."""
    upload, client = bundle(word)
    status = run(upload.status())
    assert type(status.state) is OpState
    assert (status.state, status.detail) == (state, detail)
    run(upload.start())
    assert client.posted == (["/upgrade/bundles"] if uploads_again else [])


# -- the vsphere adapter's answers ----------------------------------------------------------


class FakeVCenter:
    """A collector with one host not in maintenance mode and its tasks."""

    def __init__(self, *tasks: Task) -> None:
        self._tasks = list(tasks)

    def host(self, name: str) -> Obj:
        return Obj("host-1", {"name": name, "runtime.inMaintenanceMode": False})

    def tasks(self, refs: list[Any], kinds: tuple[str, ...]) -> list[Task]:
        return self._tasks


def task(word: str, error: str = "") -> Task:
    return Task("host-1", TASK_STATE.read(word), word, (1.0, "t-1"), 40, error)


@pytest.mark.parametrize(("tasks", "state", "detail"), [
    ((), NOT_STARTED, "host esx-1 is not in maintenance mode"),
    ((task("queued"),), RUNNING, "entering maintenance mode on host esx-1: task queued (40%)"),
    ((task("running"),), RUNNING,
     "entering maintenance mode on host esx-1: task running (40%)"),
    ((task("error", "timed out"),), FAILED,
     "entering maintenance mode on host esx-1 failed: timed out"),
    ((task("success"),), NOT_STARTED, "host esx-1 is not in maintenance mode"),
    ((task("bogus"),), NOT_STARTED, "host esx-1 is not in maintenance mode"),
])
def test_a_maintenance_task_state_is_a_member(tasks: tuple[Task, ...], state: OpState,
                                              detail: str) -> None:
    """The last task's state (read as a member by the collector) decides, and the message
    keeps vCenter's own word ("task queued")."""
    status = maintenance.status(FakeVCenter(*tasks), "esx-1", entering=True)  # type: ignore[arg-type]
    assert type(status.state) is OpState
    assert (status.state, status.detail) == (state, detail)


@pytest.mark.parametrize("word", ["queued", "running", "success", "error", "bogus"])
def test_the_collector_reads_task_states_as_members(monkeypatch: pytest.MonkeyPatch,
                                                    word: str) -> None:
    """Where the collector reads a task's ``info`` it keeps a member and vCenter's word."""
    host, ref = vim.HostSystem("host-1"), vim.Task("task-1")
    info = SimpleNamespace(entity=host, descriptionId="HostSystem.enterMaintenanceMode",
                           queueTime=None, key="task-1", progress=10, error=None, state=word)
    monkeypatch.setattr(Collector, "_retrieve", lambda self, spec: [Obj(ref, {"info": info})])
    si = SimpleNamespace(content=SimpleNamespace(taskManager=vim.TaskManager("TaskManager")))
    (found,) = Collector(si, "vc.test").tasks([host], (ENTER,))
    assert type(found.state) is OpState
    assert (found.state, found.word) == (VSPHERE[1].get(word, DONE), word)
    assert Collector(si, "vc.test").in_flight(host, ENTER) is (found.state is RUNNING)


# -- the simulated adapter's answers --------------------------------------------------------


def test_the_simulated_world_answers_members() -> None:
    """The simulated target answers members itself (no word to read): not started, running,
    done, and failed for an operation the world fails."""
    world = World(make_inventory(), TARGET)
    seen = [world.status(Op.UPGRADE, "nsx-mgr", 0.0)[0]]
    world.start(Op.UPGRADE, "nsx-mgr", 10.0)
    seen += [world.status(Op.UPGRADE, "nsx-mgr", 100.0)[0],
             world.status(Op.UPGRADE, "nsx-mgr", 1210.0)[0]]
    assert [type(s) for s in seen] == [OpState] * 3
    assert seen == [NOT_STARTED, RUNNING, DONE]
    assert type(ops.status(world, Op.UPGRADE, "nsx-mgr", 1300.0).state) is OpState


def test_no_adapter_builds_a_status_from_a_string() -> None:
    """Every ``OpStatus(...)`` under ``upgrade/adapters`` names a member (or a member read
    from a table), never a string the core would convert later."""
    import ast

    import upgrade.adapters

    root = Path(upgrade.adapters.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "OpStatus" and node.args
                    and isinstance(node.args[0], ast.Constant | ast.JoinedStr)):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []
