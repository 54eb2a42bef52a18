"""End to end with the real-target adapters: ``nsxt-upgrade`` against the NSX-T emulator and vcsim.

Each test rehearses the lab (``playbooks/lab-inventory.yaml``, about three simulated hours) as an
operator would with ``playbooks/lab-real-2.1-to-2.3.yaml``: the emulator runs as a subprocess
over HTTPS on a free port at a high ``--speed``, vcsim serves the same clusters, DRS levels,
hosts and VMs (``nsxt-upgrade emulate vcsim-spec``), the shipped playbook is copied with their
addresses and one CA bundle holding both certificates, and ``nsxt-upgrade run``/``resume`` run
as subprocesses with the same ``--speed``.

What is checked: the emulator's world (every unit at the target, upgraded exactly once,
components in order, edges of a cluster one at a time) and, while the run goes, vCenter (a
host the emulator says is upgrading is in maintenance mode with no powered-on VM on it; never
two hosts in maintenance at once; no VM lost); and the failures an operator meets first: a
wrong password, a manager that cannot be reached, a certificate that does not verify, a
bundle that fails verification.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.contract import records, traffic_problems
from tests.nsxt_emulator_support import (
    PASSWORD,
    USERNAME,
    Emulator,
    closed_port,
    start_emulator,
)
from tests.run_support import ENV, ROOT, check_world, command, journal_records, peek_phase
from tests.vcsim_support import Vcsim
from upgrade.adapters.nsxt.bundle import BUSY_RECHECK_S
from upgrade.adapters.vsphere.client import VCenterInventory, VSphereClient
from upgrade.core.model import Fault, FaultKind, Inventory, Op
from upgrade.emulator.vcenter import vcsim_spec
from upgrade.inputs.inventory import dump_inventory, load_inventory
from upgrade.shell.journal import Journal
from upgrade.sim.store import load_snapshot

pytestmark = pytest.mark.slow

#: simulated seconds per real second, for the emulator and the runner alike
SPEED = 900
#: the NSX-T API versions the emulator speaks (`emulate nsxt --api-version`): the adapter
#: must work against both; the mission's target, 2.3, is the default
APIS = ["2.3", "2.5"]
TARGET = "2.3.0.0"
SHIPPED = ROOT / "playbooks" / "lab-real-2.1-to-2.3.yaml"
RUN_TIMEOUT_S = 120.0


def lab_inventory(*faults: Fault) -> Inventory:
    """The lab inventory (with ``faults`` instead of its own)."""
    return replace(load_inventory(ROOT / "playbooks" / "lab-inventory.yaml"), faults=faults)


@dataclass
class Lab:
    """One rehearsal: the emulator, vcsim, the playbook pointing at both, the run's state dir."""

    root: Path
    inventory: Inventory
    emulator: Emulator
    vcenter: Vcsim
    playbook: Path
    state_dir: Path
    env: dict[str, str] = field(repr=False)
    api: str = "2.3"

    def nsxt(self, *args: str | Path, env: dict[str, str] | None = None,
             timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """Run ``nsxt-upgrade ARGS`` to completion (environment overrides in ``env``)."""
        return subprocess.run(command(*args), cwd=self.root, capture_output=True, text=True,
                              env={**self.env, **(env or {})}, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)

    def spawn(self, *args: str | Path) -> subprocess.Popen[str]:
        """Start ``nsxt-upgrade ARGS`` in the background (output to files in the lab)."""
        log = (self.root / "runner.log").open("a")
        with log:
            return subprocess.Popen(command(*args), cwd=self.root, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, text=True,
                                    env=self.env)

    def run_args(self) -> list[str | Path]:
        """``run PLAYBOOK --yes --clock real --speed SPEED --state-dir DIR``."""
        return ["run", self.playbook, "--yes", *self.clock(), "--state-dir", self.state_dir]

    def resume_args(self, *extra: str) -> list[str | Path]:
        """``resume --state-dir DIR --clock real --speed SPEED [EXTRA]``."""
        return ["resume", "--state-dir", self.state_dir, *self.clock(), *extra]

    def continue_args(self) -> list[str | Path]:
        """After a kill: ``resume``, or ``run`` again when the run was killed while starting
        (discovering, planning), before it recorded anything that ``resume`` could continue."""
        if (self.state_dir / "journal.sqlite").is_file():
            with Journal.open(self.state_dir, create=False) as journal:
                if journal.get_meta("playbook_path") is not None:
                    return self.resume_args()
        return self.run_args()

    @staticmethod
    def clock() -> list[str]:
        """The runner's clock: real, at the emulator's speed."""
        return ["--clock", "real", "--speed", str(SPEED)]

    def world(self) -> dict[str, Any]:
        """The emulator's world, as ``sim show --state-dir`` prints it."""
        return load_snapshot(self.emulator.state_dir)

    def counts(self) -> dict[str, int]:
        """How often the emulator upgraded each unit."""
        return {u["id"]: u["upgrade_count"] for u in self.world()["units"]}

    def vcenter_inventory(self) -> VCenterInventory:
        """vcsim's clusters, hosts (VMs) and maintenance flags, read now."""
        async def read() -> VCenterInventory:
            client = await VSphereClient.connect(self.vcenter.url, self.vcenter.username,
                                                 self.vcenter.password,
                                                 ca_bundle=self.vcenter.ca_bundle)
            async with client:
                return await client.inventory()

        return asyncio.run(read())


def shipped_playbook(path: Path, manager: str, vcenter: str | None,
                     ca_bundle: str | None, insecure: bool = False) -> Path:
    """``playbooks/lab-real-2.1-to-2.3.yaml`` pointed at ``manager`` and ``vcenter``."""
    text = SHIPPED.read_text()
    changes = {
        '"https://127.0.0.1:8443"': f'"{manager}"',
        "path: bundles/": f"path: {ROOT / 'playbooks' / 'bundles'}/",
        "  insecure: false\n": f"  insecure: {'true' if insecure else 'false'}\n",
    }
    changes['  vcenter: "https://127.0.0.1:8989/sdk"\n'] = \
        f'  vcenter: "{vcenter}"\n' if vcenter else ""
    shipped_ca = ("  ca_bundle: .nsxt-upgrade/rehearsal/ca-bundle.pem"
                  "   # written by rehearse-lab.sh\n")
    changes[shipped_ca] = f"  ca_bundle: {ca_bundle}\n" if ca_bundle else ""
    for old, new in changes.items():
        assert old in text, f"{old!r} is no longer in {SHIPPED}"
        text = text.replace(old, new)
    path.write_text(text)
    return path


@pytest.fixture
def rehearsal(tmp_path: Path, vcsim_factory: Callable[..., Vcsim]
              ) -> Iterator[Callable[..., Lab]]:
    """``start(*faults, api="2.3")``: the emulator (HTTPS, port 0, SPEED, NSX-T API ``api``)
    and vcsim on the lab inventory."""
    emulators: list[Emulator] = []

    def start(*faults: Fault, api: str = "2.3") -> Lab:
        inventory = lab_inventory(*faults)
        source = tmp_path / "lab-inventory.yaml"
        source.write_text(dump_inventory(inventory))
        vcenter = vcsim_factory(spec=vcsim_spec(inventory))
        emulator = start_emulator(source, tmp_path / "emulator", speed=SPEED, tls=True, api=api)
        emulators.append(emulator)
        assert emulator.cert is not None
        # one file, both CAs: httpx and pyVmomi (both OpenSSL) load every certificate in it
        (tmp_path / "ca-bundle.pem").write_text(
            emulator.cert.read_text() + Path(vcenter.ca_bundle).read_text())
        playbook = shipped_playbook(tmp_path / "lab-real.yaml", emulator.url, vcenter.url,
                                    "ca-bundle.pem")
        env = {**ENV, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD,
               "VSPHERE_USERNAME": vcenter.username, "VSPHERE_PASSWORD": vcenter.password}
        return Lab(tmp_path, inventory, emulator, vcenter, playbook, tmp_path / "run", env, api)

    yield start
    for emulator in emulators:
        emulator.stop()


class Watch(threading.Thread):
    """Watches vCenter and the emulator together while a run goes.

    A host counts as upgrading during a vCenter read only when the emulator's world shows
    the same upgrade open both before the read and ``settle`` seconds after it (the world is
    saved every tick); such a host must be in maintenance mode with no powered-on VM.
    """

    def __init__(self, lab: Lab, settle: float = 0.12) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.settle = settle
        self.stop = threading.Event()
        self.samples: Counter[str] = Counter()
        self.violations: list[str] = []
        self.errors: list[BaseException] = []
        self.most_upgrades = 0
        self.rounds = 0

    def __enter__(self) -> Watch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(30)
        assert not self.errors, f"the watch failed: {self.errors[0]!r}"

    def run(self) -> None:
        try:
            asyncio.run(self._watch())
        except BaseException as exc:  # reported by __exit__
            self.errors.append(exc)

    def _upgrading(self) -> dict[str, float]:
        world = self.lab.world()
        now = float(world["time"])
        self.most_upgrades = max([self.most_upgrades, *(u["upgrade_count"]
                                                        for u in world["units"])])
        return {u["id"]: u["upgrades"][-1]["start"] for u in world["units"]
                if u["kind"] == "host" and u["upgrades"]
                and (u["upgrades"][-1]["end"] is None or u["upgrades"][-1]["end"] > now)}

    async def _watch(self) -> None:
        vc = self.lab.vcenter
        vms = {vm.id: vm.powered_on for h in self.lab.inventory.hosts for vm in h.vms}
        async with await VSphereClient.connect(vc.url, vc.username, vc.password,
                                               ca_bundle=vc.ca_bundle) as client:
            while not self.stop.is_set():
                before = self._upgrading()
                vcenter = await client.inventory()
                hosts = vcenter.host_map
                await asyncio.sleep(self.settle)
                after = self._upgrading()
                self.rounds += 1
                seen = {v.id: v.powered_on for h in hosts.values() for v in h.vms}
                if seen != vms:
                    self.violations.append(f"VMs changed: {seen} (was {vms})")
                busy = sorted(vcenter.in_maintenance)
                if len(busy) > 1:  # hosts: mode serial
                    self.violations.append(f"{', '.join(busy)} in maintenance at once")
                for host, start in before.items():
                    if after.get(host) != start:
                        continue  # ended around the read: cannot tell
                    self.samples[host] += 1
                    in_maintenance = host in vcenter.in_maintenance
                    running = [v.id for v in hosts[host].vms if v.powered_on]
                    if not in_maintenance or running:
                        self.violations.append(
                            f"{host} upgrading while in_maintenance={in_maintenance} "
                            f"with powered-on VMs {running}")


def check_finished(lab: Lab) -> None:
    """The emulator's world and vCenter after a run that finished."""
    world = lab.world()
    plan = json.loads((lab.state_dir / "plan.json").read_text())
    # the emulator knows nothing of maintenance mode and VMs (vCenter does): check the units
    # there, and the VMs in vcsim
    no_vms = replace(lab.inventory, hosts=tuple(replace(h, vms=()) for h in lab.inventory.hosts))
    check_world({**world, "vms": []}, plan, no_vms)
    versions = {u["id"]: (u["version"], u["upgrade_count"]) for u in world["units"]}
    assert versions == dict.fromkeys(lab.inventory.units(), (TARGET, 1))

    vcenter = lab.vcenter_inventory()
    assert sorted(vcenter.in_maintenance) == []
    cluster_of = {h.id: h.cluster for h in lab.inventory.hosts}
    where = {vm.id: (h.id, vm.powered_on) for h in vcenter.hosts for vm in h.vms}
    for host in lab.inventory.hosts:
        for vm in host.vms:
            now_on, powered_on = where.pop(vm.id)
            assert powered_on == vm.powered_on, f"{vm.id} changed power state"
            assert cluster_of[now_on] == host.cluster, f"{vm.id} left {host.cluster}"
    assert where == {}, f"VMs appeared: {where}"
    # what the adapter sent and what the emulator answered, within VMware's contract
    problems = traffic_problems(lab.emulator.traffic, lab.api)
    assert problems == [], "\n".join(map(str, problems[:10]))


def secrets_in(directory: Path, *secrets: str) -> list[str]:
    """Files under ``directory`` that contain any of ``secrets``."""
    return [str(p) for p in directory.rglob("*") if p.is_file()
            and any(s.encode() in p.read_bytes() for s in secrets)]


@pytest.mark.parametrize("api", APIS)
def test_the_lab_upgrade_runs_to_the_end_with_vms_evacuated(rehearsal: Callable[..., Lab],
                                                           api: str) -> None:
    """`plan` reads the manager and vCenter (stdout stays one JSON document); `run` upgrades
    every unit exactly once, in order; vCenter shows each host in maintenance mode without
    powered-on VMs while it upgrades, one host at a time, and none left in maintenance;
    against a manager speaking NSX-T 2.3's API and one speaking 2.5.1's."""
    lab = rehearsal(api=api)
    plan = lab.nsxt("plan", lab.playbook, "--format", "json")
    assert plan.returncode == 0, plan.stderr
    phases = {p["name"]: p for p in json.loads(plan.stdout)["phases"]}
    assert [g["units"] for g in phases["hosts"]["groups"]] == [["esx-01", "esx-02"],
                                                               ["esx-03", "esx-04"]]
    assert [g["units"] for g in phases["edges"]["groups"]] == [["edge-01", "edge-02"]]

    with Watch(lab) as watch:
        done = lab.nsxt(*lab.run_args())
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"upgrade complete: 8 units at {TARGET}" in done.stdout
    assert watch.violations == []
    assert set(watch.samples) == {"esx-01", "esx-02", "esx-03", "esx-04"}, (
        f"hosts seen upgrading: {dict(watch.samples)} in {watch.rounds} rounds")
    check_finished(lab)
    moves = json.loads((lab.state_dir / "nsxt-adapter.json").read_text())["moves"]
    assert set(moves) == {"esx-03", "esx-04"}  # DRS off: the orchestrator moved them itself


@pytest.mark.parametrize("api", APIS)
def test_killed_at_random_moments_and_resumed_every_unit_is_upgraded_once(
        rehearsal: Callable[..., Lab], api: str) -> None:
    """SIGKILL the runner at a few random moments and resume each time until it is done: the
    emulator counts exactly one upgrade per unit, and vCenter never sees a host upgrading
    out of maintenance mode or with powered-on VMs."""
    seed = int(os.environ.get("E2E_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    lab = rehearsal(api=api)
    kills: list[str] = []
    with Watch(lab) as watch:
        proc = lab.spawn(*lab.run_args())
        for _ in range(4):
            time.sleep(rng.uniform(1.0, 3.5))
            if proc.poll() is not None:
                break
            proc.kill()
            proc.wait()
            kills.append(peek_phase(lab.state_dir) or "starting")
            assert watch.most_upgrades <= 1
            proc = lab.spawn(*lab.continue_args())
        code = proc.wait(RUN_TIMEOUT_S)
    log = (lab.root / "runner.log").read_text()
    assert code == 0, f"seed {seed}, killed in {kills}:\n{log[-3000:]}"
    assert kills, f"seed {seed}: the run ended before the first kill"
    assert watch.violations == [], f"seed {seed}, killed in {kills}"
    check_finished(lab)


def test_a_wrong_password_is_named_never_printed_and_resume_continues(
        rehearsal: Callable[..., Lab]) -> None:
    """A wrong NSXT_PASSWORD at `run` fails at discovery, before any state exists: a clean
    exit 1 naming NSXT_USERNAME/NSXT_PASSWORD, nothing written. At `resume` (the password
    changed after a crash) it is refused before anything runs, the journal untouched, and
    `resume` with the right one finishes. No password appears in any output or state file."""
    lab = rehearsal()
    wrong = "Wr0ng-pa55word-" + str(random.randrange(10**6))
    for command_ in (["plan", lab.playbook], lab.run_args()):
        refused = lab.nsxt(*command_, env={"NSXT_PASSWORD": wrong})
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "NSXT_USERNAME/NSXT_PASSWORD" in refused.stderr
        assert f"user {USERNAME!r}" in refused.stderr
        assert wrong not in refused.stdout + refused.stderr
    assert not (lab.state_dir / "journal.sqlite").exists()

    proc = lab.spawn(*lab.run_args())
    deadline = time.monotonic() + 30
    while peek_phase(lab.state_dir) in (None, "precheck") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    before = len(journal_records(lab.state_dir))
    refused = lab.nsxt(*lab.resume_args(), env={"NSXT_PASSWORD": wrong})
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "NSXT_USERNAME/NSXT_PASSWORD" in refused.stderr
    assert wrong not in refused.stdout + refused.stderr
    vc_refused = lab.nsxt(*lab.resume_args(), env={"VSPHERE_PASSWORD": wrong})
    assert vc_refused.returncode == 1, vc_refused.stdout + vc_refused.stderr
    assert "VSPHERE_USERNAME / VSPHERE_PASSWORD" in vc_refused.stderr
    assert wrong not in vc_refused.stdout + vc_refused.stderr
    assert len(journal_records(lab.state_dir)) == before

    done = lab.nsxt(*lab.resume_args())
    assert done.returncode == 0, done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    check_finished(lab)
    assert secrets_in(lab.state_dir, PASSWORD, wrong, lab.vcenter.password) == []


def test_an_unreachable_manager_is_a_clear_message(tmp_path: Path) -> None:
    """A manager nothing listens on: `plan` and `run` exit 1 naming the manager's address,
    before anything is written."""
    manager = f"https://127.0.0.1:{closed_port()}"
    playbook = shipped_playbook(tmp_path / "lab-real.yaml", manager, None, None)
    env = {**ENV, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD}
    commands: list[list[str | Path]] = [
        ["plan", playbook], ["run", playbook, "--yes", "--state-dir", tmp_path / "run"]]
    for args in commands:
        proc = subprocess.run(command(*args), cwd=tmp_path, capture_output=True, text=True,
                              env=env, timeout=60, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"cannot connect to the NSX Manager at {manager}" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_certificate_that_does_not_verify_names_ca_bundle_and_insecure(
        rehearsal: Callable[..., Lab]) -> None:
    """No ca_bundle (and insecure false): the emulator's self-signed certificate fails, and
    the message names ca_bundle and insecure; a bundle with only the emulator's CA then
    fails on vCenter's the same way; insecure: true plans, with a warning on stderr."""
    lab = rehearsal()
    none = shipped_playbook(lab.root / "no-ca.yaml", lab.emulator.url, lab.vcenter.url, None)
    proc = lab.nsxt("run", none, "--yes", *lab.clock(), "--state-dir", lab.state_dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "TLS verification of the NSX Manager" in proc.stderr
    assert "ca_bundle" in proc.stderr and "insecure: true" in proc.stderr
    assert not lab.state_dir.exists()

    assert lab.emulator.cert is not None
    (lab.root / "nsx-only.pem").write_text(lab.emulator.cert.read_text())
    half = shipped_playbook(lab.root / "nsx-ca.yaml", lab.emulator.url, lab.vcenter.url,
                            "nsx-only.pem")
    proc = lab.nsxt("plan", half)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "vCenter" in proc.stderr and "ca_bundle" in proc.stderr
    assert "insecure: true" in proc.stderr

    insecure = shipped_playbook(lab.root / "insecure.yaml", lab.emulator.url, lab.vcenter.url,
                                None, insecure=True)
    proc = lab.nsxt("plan", insecure)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tls_verification_disabled" in proc.stderr


@pytest.mark.parametrize("api", APIS)
def test_a_failed_bundle_verification_pauses_and_retry_failed_finishes(
        rehearsal: Callable[..., Lab], api: str) -> None:
    """The inventory fault ``{unit: bundle, op: upload, kind: fail}``: the run pauses (exit 3)
    saying the bundle failed verification; `resume --retry-failed` uploads it again and
    finishes the upgrade, every unit upgraded once."""
    lab = rehearsal(Fault("bundle", Op.UPLOAD, FaultKind.FAIL), api=api)
    paused = lab.nsxt(*lab.run_args())
    assert paused.returncode == 3, paused.stdout + paused.stderr
    assert "bundle" in paused.stdout and "failed to upload or verify" in paused.stdout
    assert "--retry-failed" in paused.stdout
    status = lab.nsxt("status", "--state-dir", lab.state_dir, "--format", "json")
    assert json.loads(status.stdout)["state"] == "paused"
    assert set(lab.counts().values()) == {0}

    done = lab.nsxt(*lab.resume_args("--retry-failed"))
    assert done.returncode == 0, done.stdout + done.stderr
    check_finished(lab)
    uploads = [o for o in lab.world()["operations"] if o["op"] == "upload"]
    assert [o["ok"] for o in uploads][-1] is True


def test_an_upload_the_run_never_recorded_is_waited_for_not_repeated(
        rehearsal: Callable[..., Lab]) -> None:
    """The manager is already uploading the bundle when `run` reaches its upload (the state
    a `kill -9` leaves between the manager accepting the upload and the runner keeping its
    id): the manager refuses a second upload (error 30110) and names no id, so the run
    waits for that upload to end and uses it: exit 0, the bundle uploaded once."""
    lab = rehearsal(Fault("bundle", Op.UPLOAD, FaultKind.TIMEOUT))  # 3 x 1800 s: ~6 s here
    bundle = ROOT / "playbooks" / "bundles" / "VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub"
    with lab.emulator.client() as client, bundle.open("rb") as stream:
        accepted = client.post("/api/v1/upgrade/bundles", params={"action": "upload"},
                               files={"file": (bundle.name, stream)})
    assert accepted.status_code == 200, accepted.text

    done = lab.nsxt(*lab.run_args())
    assert done.returncode == 0, done.stdout + done.stderr
    check_finished(lab)
    refused = [r for r in records(lab.emulator.traffic)
               if r["method"] == "POST" and r["path"] == "/api/v1/upgrade/bundles"]
    # the run met the upload in progress (else this test proved nothing), and tried it
    # again (each try sends the whole bundle) once per BUSY_RECHECK_S, not once per poll
    statuses = [r["status"] for r in refused]
    assert statuses[:2] == [200, 400] and set(statuses[1:]) == {400}, statuses
    assert len(statuses) <= 2 + 3 * 1800 // BUSY_RECHECK_S, statuses
    # ... and waited for it: one upload, the one the run never recorded
    assert [o["attempt"] for o in lab.world()["operations"] if o["op"] == "upload"] == [1]
    assert traffic_problems(lab.emulator.traffic, lab.api) == []
