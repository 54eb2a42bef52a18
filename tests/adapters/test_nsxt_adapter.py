"""The ``nsxt`` adapter against the real emulator (a subprocess on a localhost port).

The adapter drives a whole upgrade operation by operation; a wrong password, an
unreachable manager, a certificate that does not verify and a bundle that fails
verification each give a clear error; an interrupted upload resumes without
uploading twice; nothing is upgraded twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import structlog
from structlog.testing import capture_logs

from tests.emulator.contract import records, traffic_problems
from tests.nsxt_emulator_support import (
    PASSWORD,
    USERNAME,
    Emulator,
    closed_port,
    running_emulator,
)
from tests.vcsim_support import Vcsim
from upgrade.adapters.nsxt.adapter import BY_COORDINATOR, NsxtAdapter
from upgrade.adapters.vsphere.client import VSphereClient
from upgrade.core.engine.messages import OpState
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import BUNDLE, COORDINATOR, SYSTEM, Drs, Inventory, Op, Severity, Vm
from upgrade.errors import AdapterError, TransientAdapterError
from upgrade.sim.store import load_snapshot

T = TypeVar("T")
TARGET = "2.3.0.0"
BUNDLE_NAME = "VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _quiet_structlog() -> None:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / BUNDLE_NAME
    path.write_bytes(b"MUB" + bytes(range(256)) * 64)
    return path


def adapter(emu: Emulator, bundle: Path | None = None, **options: Any) -> NsxtAdapter:
    options.setdefault("ca_bundle", emu.cert)
    return NsxtAdapter(emu.url, USERNAME, options.pop("password", PASSWORD), TARGET,
                       bundle_path=bundle, **options)


async def wait(nsxt: NsxtAdapter, op: Op, unit: str, timeout: float = 30.0,
               seen: list[str] | None = None) -> OpStatus:
    """Poll until the operation is done or failed; transient errors are waited out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = await nsxt.status(op, unit)
        except TransientAdapterError as exc:
            if seen is not None:
                seen.append(f"transient: {exc}")
        else:
            if seen is not None and (not seen or seen[-1] != status.detail):
                seen.append(status.detail)
            if status.state in ("done", "failed"):
                return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"{op.value} on {unit} did not finish")


def counts(emu: Emulator) -> dict[str, int]:
    return {u["id"]: u["upgrade_count"] for u in load_snapshot(emu.state_dir)["units"]}


@pytest.mark.slow
@pytest.mark.parametrize("api", ["2.3", "2.5"])
def test_the_adapter_drives_a_whole_upgrade(tmp_path: Path, bundle: Path, api: str) -> None:
    """The same upgrade against a manager speaking VMware's 2.3 API and one with 2.5.1's
    additions: the adapter learns which and uses what is there."""
    async def upgrade(emu: Emulator) -> list[str]:
        nsxt = adapter(emu, bundle, state_dir=tmp_path)
        try:
            inventory = await nsxt.inventory()
            assert str(inventory.version) == "2.1.0.0"
            assert inventory.manager == "nsx-mgr-01"
            assert inventory.controllers == ("ctrl-01",)
            assert [(e.name, e.edges) for e in inventory.edge_clusters] == [
                ("edge-cluster-1", ("edge-01", "edge-02"))]
            assert [(c.name, c.hosts, c.drs) for c in inventory.clusters] == [
                ("cluster-a", ("esx-01", "esx-02"), Drs.FULLY_AUTOMATED),
                ("cluster-b", ("esx-03",), Drs.FULLY_AUTOMATED)]
            assert all(h.vms == () for h in inventory.hosts)  # no vCenter: no VMs known
            # the unit's warnings (VMware's texts carry no ids: one is made of unit and text)
            assert [(w.id, w.severity, w.unit, w.message) for w in inventory.warnings] == [
                ("edge-01-uplink-fp-eth1-is-down", Severity.WARNING, "edge-01",
                 "uplink fp-eth1 is down")]
            assert await nsxt.api.has_v25() is (api == "2.5")

            # 2.3 has no check to run: the health the manager reports is the pre-check
            before = {Op.PRECHECK: "done" if api == "2.3" else "not_started"}
            for op, unit in ((Op.PRECHECK, SYSTEM), (Op.UPLOAD, BUNDLE),
                             (Op.COORDINATOR, COORDINATOR)):
                assert (await nsxt.status(op, unit)).state == before.get(op, "not_started")
                await nsxt.start(op, unit)
                status = await wait(nsxt, op, unit)
                assert status.state == "done", status
            for host in inventory.hosts:
                for op in (Op.ENTER_MAINTENANCE, Op.EVACUATE):
                    await nsxt.start(op, host.id)
                    assert await nsxt.status(op, host.id) == OpStatus(OpState.DONE, BY_COORDINATOR)
                await nsxt.start(Op.UPGRADE, host.id)
                await nsxt.start(Op.UPGRADE, host.id)  # idempotent while it runs
                assert (await wait(nsxt, Op.UPGRADE, host.id)).state == "done"
                assert (await wait(nsxt, Op.VERIFY, host.id)).state == "done"
                await nsxt.start(Op.EXIT_MAINTENANCE, host.id)
                assert (await nsxt.status(Op.EXIT_MAINTENANCE, host.id)).state == "done"
            for unit in (*inventory.edge_clusters[0].edges, *inventory.controllers):
                await nsxt.start(Op.UPGRADE, unit)
                assert (await wait(nsxt, Op.UPGRADE, unit)).state == "done"
                assert await nsxt.unit_version(unit) == TARGET
            seen: list[str] = []
            await nsxt.start(Op.UPGRADE, inventory.manager)
            await wait(nsxt, Op.UPGRADE, inventory.manager, seen=seen)
            await wait(nsxt, Op.VERIFY, inventory.manager, seen=seen)
            await nsxt.start(Op.POSTCHECK, SYSTEM)
            assert (await wait(nsxt, Op.POSTCHECK, SYSTEM)).state == "done"
            await nsxt.start(Op.UPGRADE, "esx-01")  # already at the target: not again
            return seen
        finally:
            await nsxt.close()

    with running_emulator(tmp_path, tls=True, api=api) as emu:
        seen = run(upgrade(emu))
        assert counts(emu) == dict.fromkeys(
            ("esx-01", "esx-02", "esx-03", "edge-01", "edge-02", "ctrl-01", "nsx-mgr-01"), 1)
    # every request the adapter sent, and every answer, within VMware's contract
    problems = traffic_problems(emu.traffic, api)
    assert problems == [], "\n".join(map(str, problems))
    sent = {(r["method"], r["path"].split("/upgrade-unit-groups/")[-1].split("/")[-1])
            for r in records(emu.traffic)}
    assert ("GET", "status") in sent  # unit status from the group's /status
    assert (("GET", "uc-upgrade-status") in sent) is True  # the probe (404 on 2.3)
    assert any(s.startswith("transient:") for s in seen), seen  # the manager's outage
    assert any(re.search("management cluster is (UNSTABLE|INITIALIZING)", s)
               for s in seen), seen  # not yet ready
    assert seen[-1] == f"nsx-mgr-01 reports {TARGET}"
    assert json.loads((tmp_path / "nsxt-adapter.json").read_text())["bundle_id"]


def test_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    with running_emulator(tmp_path) as emu:
        nsxt = adapter(emu, password="not-the-password")
        with pytest.raises(AdapterError) as caught:
            run(_closing(nsxt, nsxt.inventory()))
    message = str(caught.value)
    assert not isinstance(caught.value, TransientAdapterError)
    assert f"authentication failed for user '{USERNAME}' at {emu.url}" in message
    assert "check NSXT_USERNAME/NSXT_PASSWORD" in message
    assert "not-the-password" not in message and PASSWORD not in message


def test_unreachable_manager_is_transient() -> None:
    url = f"https://127.0.0.1:{closed_port()}"
    nsxt = NsxtAdapter(url, USERNAME, PASSWORD, TARGET)
    expected = re.escape(f"cannot connect to the NSX Manager at {url}")
    with pytest.raises(TransientAdapterError, match=expected):
        run(_closing(nsxt, nsxt.status(Op.UPLOAD, BUNDLE)))


def test_bad_certificate_names_the_fix(tmp_path: Path) -> None:
    with running_emulator(tmp_path, tls=True) as emu:
        strict = NsxtAdapter(emu.url, USERNAME, PASSWORD, TARGET)  # system CAs only
        with pytest.raises(AdapterError) as caught:
            run(_closing(strict, strict.inventory()))
        assert not isinstance(caught.value, TransientAdapterError)
        assert "TLS verification of the NSX Manager" in str(caught.value)
        assert "ca_bundle" in str(caught.value) and "insecure: true" in str(caught.value)
        with capture_logs() as logs:
            lax = NsxtAdapter(emu.url, USERNAME, PASSWORD, TARGET, insecure=True)
        assert run(_closing(lax, lax.inventory())).manager == "nsx-mgr-01"
        assert [e["event"] for e in logs] == ["nsxt.tls_verification_disabled"]
        assert PASSWORD not in repr(logs)


def test_unreadable_ca_bundle(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="cannot read the NSX Manager CA bundle"):
        NsxtAdapter("https://127.0.0.1:1", USERNAME, PASSWORD, TARGET,
                    ca_bundle=tmp_path / "missing.pem")


def test_not_a_manager_url() -> None:
    with pytest.raises(AdapterError, match="not an NSX Manager URL"):
        NsxtAdapter("nsx.example", USERNAME, PASSWORD, TARGET)


def test_failed_bundle_verification_is_clear_and_retried(tmp_path: Path, bundle: Path) -> None:
    fault = "faults:\n  - {unit: bundle, op: upload, kind: fail}\n"

    async def upload(emu: Emulator) -> tuple[OpStatus, OpStatus]:
        nsxt = adapter(emu, bundle)
        try:
            await nsxt.start(Op.UPLOAD, BUNDLE)
            failed = await wait(nsxt, Op.UPLOAD, BUNDLE)
            await nsxt.start(Op.UPLOAD, BUNDLE)  # a failed upload is uploaded again
            return failed, await wait(nsxt, Op.UPLOAD, BUNDLE)
        finally:
            await nsxt.close()

    with running_emulator(tmp_path, inventory_extra=fault) as emu:
        failed, retried = run(upload(emu))
        uploads = [o for o in load_snapshot(emu.state_dir)["operations"] if o["op"] == "upload"]
    assert failed.state == "failed"
    assert f"upgrade bundle {BUNDLE_NAME} failed to upload or verify" in failed.detail
    assert "verification failed" in failed.detail
    assert retried.state == "done"
    assert [o["attempt"] for o in uploads] == [2]


@pytest.mark.slow
def test_interrupted_upload_resumes_without_uploading_twice(tmp_path: Path,
                                                            bundle: Path) -> None:
    async def interrupted(emu: Emulator) -> list[OpStatus]:
        first = adapter(emu, bundle, state_dir=tmp_path)
        await first.start(Op.UPLOAD, BUNDLE)
        await first.close()  # the orchestrator dies while the manager verifies the bundle
        statuses = []
        # found by the id kept in the state dir (VMware's API has no list of bundles), then
        # also without it, by the summary's upgrade_bundle_file_name once it succeeded
        for state_dir in (tmp_path, None):
            again = adapter(emu, bundle, state_dir=state_dir)
            try:
                statuses.append(await again.status(Op.UPLOAD, BUNDLE))
                await again.start(Op.UPLOAD, BUNDLE)
                statuses.append(await wait(again, Op.UPLOAD, BUNDLE))
                await again.start(Op.UPLOAD, BUNDLE)
            finally:
                await again.close()
        return statuses

    with running_emulator(tmp_path, speed=100) as emu:
        statuses = run(interrupted(emu))
        with emu.client() as client:
            # VMware has no list of bundles: only POST is there
            assert client.get("/api/v1/upgrade/bundles").status_code == 405
        uploads = [o for o in load_snapshot(emu.state_dir)["operations"] if o["op"] == "upload"]
    assert statuses[0].state == "running"
    assert [s.state for s in statuses[1:]] == ["done", "done", "done"]
    assert [o["attempt"] for o in uploads] == [1]


def test_nsx_error_bodies_become_clear_messages(tmp_path: Path) -> None:
    async def too_early(emu: Emulator) -> None:
        nsxt = adapter(emu)
        try:
            await nsxt.start(Op.UPGRADE, "esx-01")
        finally:
            await nsxt.close()

    with running_emulator(tmp_path) as emu, pytest.raises(AdapterError) as caught:
        run(too_early(emu))
    message = str(caught.value)
    assert "POST /api/v1/upgrade/plan" in message and "refused (400)" in message
    assert "the Upgrade Coordinator has not been upgraded yet" in message
    assert "[error 30013, upgrade]" in message


def test_upload_without_a_bundle_and_unknown_units(tmp_path: Path) -> None:
    async def check(emu: Emulator) -> None:
        nsxt = adapter(emu)
        try:
            with pytest.raises(AdapterError, match=r"needs bundle\.path or bundle\.url"):
                await nsxt.start(Op.UPLOAD, BUNDLE)
            with pytest.raises(AdapterError, match="no upgrade unit called 'esx-99'"):
                await nsxt.status(Op.UPGRADE, "esx-99")
            with pytest.raises(AdapterError, match="upload runs on 'bundle'"):
                await nsxt.start(Op.UPLOAD, "esx-01")
        finally:
            await nsxt.close()

    with running_emulator(tmp_path) as emu:
        run(check(emu))


def test_bundle_by_url(tmp_path: Path) -> None:
    url = f"https://depot.example/nsx/{BUNDLE_NAME}"

    async def upload(emu: Emulator) -> OpStatus:
        nsxt = NsxtAdapter(emu.url, USERNAME, PASSWORD, TARGET, bundle_url=url)
        try:
            await nsxt.start(Op.UPLOAD, BUNDLE)
            return await wait(nsxt, Op.UPLOAD, BUNDLE)
        finally:
            await nsxt.close()

    with running_emulator(tmp_path) as emu:
        assert run(upload(emu)).state == "done"
        # our client names the bundle by the id the manager gave it, never by ``latest``
        # (a name only VMware's Ansible modules use; the API reference documents none)
        sent = [r["path"] for r in records(emu.traffic)]
        assert "/api/v1/upgrade/bundles" in sent
        assert not any(p.startswith("/api/v1/upgrade/bundles/latest") for p in sent), sent
        with emu.client() as client:
            info = client.get("/api/v1/upgrade/bundles/latest").json()
            summary = client.get("/api/v1/upgrade/summary").json()
    assert info["url"] == url  # UpgradeBundleInfo: bundle_size and url
    assert summary["upgrade_bundle_file_name"] == BUNDLE_NAME


VCENTER = {"clusters": [
    {"name": "cluster-a", "drs": "fully_automated",
     "hosts": [{"id": "esx-01", "vms": ["web-1"]}, {"id": "esx-02", "vms": []}]},
    {"name": "cluster-b", "drs": "manual", "hosts": [{"id": "esx-03", "vms": ["db-1"]}]},
]}


@pytest.mark.slow
def test_vcenter_takes_over_maintenance_mode(tmp_path: Path,
                                              vcsim_factory: Callable[..., Vcsim]) -> None:
    sim = vcsim_factory(VCENTER)

    async def drive(emu: Emulator) -> tuple[Inventory, list[OpStatus]]:
        vcenter = await VSphereClient.connect(sim.url, sim.username, sim.password,
                                              ca_bundle=sim.ca_bundle)
        nsxt = adapter(emu, vsphere=vcenter, state_dir=tmp_path)
        try:
            inventory = await nsxt.inventory()
            statuses = []
            await nsxt.start(Op.EVACUATE, "esx-01", (("web-1", "esx-02"),))
            statuses.append(await wait(nsxt, Op.EVACUATE, "esx-01"))
            await nsxt.start(Op.ENTER_MAINTENANCE, "esx-01")
            statuses.append(await wait(nsxt, Op.ENTER_MAINTENANCE, "esx-01"))
            statuses.append(await nsxt.status(Op.POSTCHECK, SYSTEM))
            await nsxt.start(Op.EXIT_MAINTENANCE, "esx-01")
            statuses.append(await wait(nsxt, Op.EXIT_MAINTENANCE, "esx-01"))
        finally:
            await nsxt.close()  # closes the vCenter session too
        def connect() -> Awaitable[VSphereClient]:  # connected when first needed
            return VSphereClient.connect(sim.url, sim.username, sim.password,
                                         ca_bundle=sim.ca_bundle)

        again = adapter(emu, vsphere=connect, state_dir=tmp_path)
        try:  # the moves of the evacuation are remembered in the state dir
            statuses.append(await again.status(Op.EVACUATE, "esx-01"))
        finally:
            await again.close()
        return inventory, statuses

    with running_emulator(tmp_path) as emu:
        inventory, statuses = run(drive(emu))
    assert [(c.name, c.drs, c.hosts) for c in inventory.clusters] == [
        ("cluster-a", Drs.FULLY_AUTOMATED, ("esx-01", "esx-02")),
        ("cluster-b", Drs.MANUAL, ("esx-03",))]
    assert inventory.host("esx-01").vms == (Vm("web-1", True),)
    evacuated, entered, postcheck, exited, remembered = statuses
    assert (evacuated.state, entered.state, exited.state) == ("done", "done", "done")
    assert postcheck.state == "failed" and "esx-01 is still in maintenance mode" in postcheck.detail
    assert remembered.state == "done"


async def _closing(nsxt: NsxtAdapter, work: Coroutine[Any, Any, T]) -> T:
    try:
        return await work
    finally:
        await nsxt.close()


def test_finding_ids_from_vmware_warning_texts() -> None:
    """VMware's unit warnings are texts: the id is the unit and the text's first words."""
    from upgrade.adapters.nsxt.checks import finding_id

    assert finding_id("edge-01", "uplink fp-eth1 is down") == "edge-01-uplink-fp-eth1-is-down"
    text = "edge-01 reports degraded connectivity: uplink vNIC fp-eth1 is disconnected"
    assert finding_id("edge-01", text) == \
        "edge-01-reports-degraded-connectivity-uplink-vnic-fp-eth1-is"
    assert len(finding_id("esx-01", "word " * 100)) <= 60
    assert finding_id("esx-01", "!!!") == "esx-01"


@pytest.mark.slow
@pytest.mark.parametrize("api", ["2.3", "2.5"])
def test_a_failed_coordinator_upgrade_is_started_again(tmp_path: Path, bundle: Path,
                                                       api: str) -> None:
    """2.5.1 reports the coordinator's failure (uc-upgrade-status FAILED); 2.3 only ever
    says upgrade_coordinator_updated: false, so it reads as running until the engine's
    timeout. Either way the next start asks the manager again, and it is done."""
    fault = "faults:\n  - {unit: coordinator, op: coordinator, kind: fail}\n"

    async def coordinator(emu: Emulator) -> list[str]:
        nsxt = adapter(emu, bundle, state_dir=tmp_path)
        try:
            await nsxt.start(Op.UPLOAD, BUNDLE)
            assert (await wait(nsxt, Op.UPLOAD, BUNDLE)).state == "done"
            await nsxt.start(Op.COORDINATOR, COORDINATOR)
            await asyncio.sleep(0.5)  # 300 simulated seconds: the attempt has failed
            first = await nsxt.status(Op.COORDINATOR, COORDINATOR)
            await nsxt.start(Op.COORDINATOR, COORDINATOR)  # the engine's retry
            done = await wait(nsxt, Op.COORDINATOR, COORDINATOR)
            return [first.state, done.state]
        finally:
            await nsxt.close()

    with running_emulator(tmp_path, fault, speed=600, tls=True, api=api) as emu:
        states = run(coordinator(emu))
        attempts = [o["attempt"] for o in load_snapshot(emu.state_dir)["operations"]
                    if o["op"] == "coordinator"]
    assert states == ["running" if api == "2.3" else "failed", "done"]
    assert attempts[-1] == 2


def _group_reads(emu: Emulator) -> list[str]:
    """The group-status reads the emulator answered, in order (their group ids)."""
    return [r["path"].split("/")[-2] for r in records(emu.traffic)
            if r["method"] == "GET" and r["path"].endswith("/status")
            and "/upgrade-unit-groups/" in r["path"]]


def test_polls_of_a_groups_units_share_one_recent_read(tmp_path: Path, bundle: Path) -> None:
    """VMware's API has no status of one upgrade unit: each poll reads its group's.  Polls
    of a group's units within STATUS_FRESH_S (on the adapter's clock) share one read; a
    later poll, a unit of another group and a unit started since each read again."""
    from upgrade.adapters.nsxt.upgrades import STATUS_FRESH_S, progress_band
    from upgrade.clock import VirtualClock

    clock = VirtualClock()

    async def polls(emu: Emulator) -> list[tuple[str, list[str]]]:
        nsxt = adapter(emu, bundle, state_dir=tmp_path, clock=clock)
        seen: list[tuple[str, list[str]]] = []
        try:
            await nsxt.inventory()
            for op, unit in ((Op.UPLOAD, BUNDLE), (Op.COORDINATOR, COORDINATOR)):
                await nsxt.start(op, unit)
                assert (await wait(nsxt, op, unit)).state == "done"
            base = len(_group_reads(emu))

            def note(what: str) -> None:
                seen.append((what, _group_reads(emu)[base:]))

            await nsxt.status(Op.UPGRADE, "esx-01")
            await nsxt.status(Op.UPGRADE, "esx-02")  # cluster-a too: the same read
            note("two units of one group")
            await nsxt.status(Op.UPGRADE, "esx-03")  # cluster-b: its own read
            note("another group")
            clock.advance_to(clock.now() + STATUS_FRESH_S + 1)
            await nsxt.status(Op.UPGRADE, "esx-01")  # too old now
            note("later")
            await nsxt.start(Op.UPGRADE, "esx-01")  # the read just made says not started
            status = await nsxt.status(Op.UPGRADE, "esx-01")  # none from before the start
            note("after a start")
            assert status.state == "running", status
            await nsxt.status(Op.UPGRADE, "esx-02")  # read after esx-01's start: shared
            note("a sibling after the start")
        finally:
            await nsxt.close()
        return seen

    with running_emulator(tmp_path, speed=100) as emu:  # a host upgrade takes 0.6 s
        seen = run(polls(emu))
    groups = dict(seen)
    a, b = groups["another group"]
    assert len(groups["two units of one group"]) == 1 and a != b
    assert groups["later"] == [a, b, a]
    assert groups["after a start"] == [a, b, a, a]
    assert groups["a sibling after the start"] == groups["after a start"]
    assert [progress_band(p) for p in (0, 9.9, 10, 55.5, 100, None)] == [
        "0-10%", "0-10%", "10-20%", "50-60%", "90-100%", "progress unknown"]


async def _upload_step(nsxt: NsxtAdapter, timeout: float = 30.0) -> tuple[OpStatus, list[str]]:
    """The engine's upload stage against ``nsxt``: poll; NOT_STARTED (the start was lost)
    starts the upload again; until the manager reports it done or failed."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        status = await nsxt.status(Op.UPLOAD, BUNDLE)
        seen.append(status.state)
        if status.state in ("done", "failed"):
            return status, seen
        if status.state == "not_started":
            await nsxt.start(Op.UPLOAD, BUNDLE)
            seen.append("start")
        await asyncio.sleep(0.05)
    raise AssertionError(f"the upload step did not end: {seen[-5:]}")


def _post_upload(emu: Emulator, bundle: Path) -> str:
    """The killed run's upload: the manager accepts it, the id is never recorded."""
    with emu.client() as client, bundle.open("rb") as stream:
        answer = client.post("/api/v1/upgrade/bundles", params={"action": "upload"},
                             files={"file": (bundle.name, stream)})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["bundle_id"])


@pytest.mark.parametrize("fault", ["", "faults:\n  - {unit: bundle, op: upload, kind: fail}\n"])
def test_upload_accepted_but_its_id_lost_is_reconciled(tmp_path: Path, bundle: Path,
                                                       fault: str) -> None:
    """Killed after the manager accepted the upload, before the id was kept: VMware's API
    names no upload in progress (no list of bundles; error 30110's ApiError carries no
    id), so the new adapter waits for it and ends done once: with that upload when it
    succeeds, with a new one when it fails; never a failed step."""
    async def resume(emu: Emulator) -> tuple[OpStatus, list[str], OpStatus]:
        _post_upload(emu, bundle)
        nsxt = adapter(emu, bundle, state_dir=tmp_path)  # nothing remembered: a fresh dir
        try:
            ended, seen = await _upload_step(nsxt)
            return ended, seen, await nsxt.status(Op.UPLOAD, BUNDLE)
        finally:
            await nsxt.close()

    with running_emulator(tmp_path, inventory_extra=fault, speed=100) as emu:
        ended, seen, after = run(resume(emu))
        uploads = [o for o in load_snapshot(emu.state_dir)["operations"] if o["op"] == "upload"]
    assert ended.state == "done", (ended, seen)
    assert after.state == "done"
    assert seen.count("done") == 1 and "failed" not in seen
    # the killed run's upload is used when it succeeds; a failed one is uploaded once more
    assert [o["attempt"] for o in uploads] == ([2] if fault else [1])


def test_waiting_for_an_unnamed_upload_tries_again_once_per_recheck(tmp_path: Path,
                                                                    bundle: Path) -> None:
    """Each try of the upload sends the whole bundle: while the manager is busy with an
    upload it gives no id for, the status is RUNNING (the wait) until BUSY_RECHECK_S on
    the adapter's clock have passed since the refusal, then NOT_STARTED (try again)."""
    from upgrade.adapters.nsxt.bundle import BUSY_RECHECK_S
    from upgrade.clock import VirtualClock

    clock = VirtualClock()

    async def busy(emu: Emulator) -> list[str]:
        _post_upload(emu, bundle)
        nsxt = adapter(emu, bundle, state_dir=tmp_path, clock=clock)
        try:
            states = [(await nsxt.status(Op.UPLOAD, BUNDLE)).state]
            await nsxt.start(Op.UPLOAD, BUNDLE)  # refused: 30110
            states.append((await nsxt.status(Op.UPLOAD, BUNDLE)).state)
            await clock.sleep_until(clock.now() + BUSY_RECHECK_S - 1)
            states.append((await nsxt.status(Op.UPLOAD, BUNDLE)).state)
            await clock.sleep_until(clock.now() + 1)
            states.append((await nsxt.status(Op.UPLOAD, BUNDLE)).state)
            return states
        finally:
            await nsxt.close()

    # slow enough that the upload in progress is still running when the test ends
    with running_emulator(tmp_path, speed=1) as emu:
        states = run(busy(emu))
        posts = [r["status"] for r in records(emu.traffic)
                 if r["method"] == "POST" and r["path"] == "/api/v1/upgrade/bundles"]
    assert states == ["not_started", "running", "running", "not_started"]
    assert posts == [200, 400]


def test_waiting_for_an_unnamed_upload_ends_at_the_uploads_timeout(tmp_path: Path,
                                                                  bundle: Path) -> None:
    """A manager that stays busy with an upload it gives no id for is not waited on for
    ever: once the upload's timeout has passed since the first refusal (kept across
    restarts of the step), the step fails, naming what to check and `resume`."""
    from upgrade.clock import VirtualClock

    clock = VirtualClock()

    async def busy(emu: Emulator) -> list[str]:
        _post_upload(emu, bundle)
        nsxt = adapter(emu, bundle, state_dir=tmp_path, clock=clock, upload_timeout_s=3600.0)
        try:
            await nsxt.start(Op.UPLOAD, BUNDLE)  # refused: 30110
            seen = [str((await nsxt.status(Op.UPLOAD, BUNDLE)).state)]
            await clock.sleep_until(clock.now() + 3000)
            await nsxt.start(Op.UPLOAD, BUNDLE)  # the engine's retry: refused again
            seen.append(str((await nsxt.status(Op.UPLOAD, BUNDLE)).state))
            await clock.sleep_until(clock.now() + 601)
            last = await nsxt.status(Op.UPLOAD, BUNDLE)
            seen += [str(last.state), last.detail]
            return seen
        finally:
            await nsxt.close()

    with running_emulator(tmp_path, speed=1) as emu:
        seen = run(busy(emu))
    assert seen[:3] == ["running", "running", "failed"], seen
    assert "longer than the upload's timeout (3600 s)" in seen[3]
    assert "nsxt-upgrade resume --retry-failed" in seen[3]
