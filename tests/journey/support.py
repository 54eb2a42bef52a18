"""A small lab for journeys: a site playbook, its simulated inventory, two NSX-T bundles
and a journey file from PKS 1.1.4 / NSX-T 2.1 / Ops Manager 2.1.3 to PKS 1.3.5 / NSX-T
2.3.1; and the Ops Manager API emulator as a real subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.run_support import ENV, ROOT, nsxt

OPSMAN_USER = "admin"
OPSMAN_PASSWORD = "Om-emul4tor!secret"
OPSMAN_ENV = {"OPSMAN_USERNAME": OPSMAN_USER, "OPSMAN_PASSWORD": OPSMAN_PASSWORD}

INVENTORY = """\
nsx: {version: "2.1.0.0", manager: nsx-mgr-01, controllers: [ctrl-01],
      edge_clusters: [{name: edge-cluster-1, edges: [edge-01, edge-02]}]}
compute:
  clusters:
    - name: cluster-a
      drs: fully_automated
      hosts:
        - {id: esx-01, vms: [web-1]}
        - {id: esx-02, vms: []}
        - {id: esx-03, vms: [db-1]}
durations: {host_upgrade: 60, edge_upgrade: 60, controller_upgrade: 60, manager_upgrade: 120,
            vmotion: 10, bundle_upload: 60, coordinator_upgrade: 30}
seed: 3
"""

SITE = """\
name: journey-site
target_version: "2.2.0.0"
bundle: {path: nsx-2.2.mub}
inventory: {adapter: simulated, source: inventory.yaml}
hosts: {mode: serial, upgrade_mode: maintenance}
on_error: pause
"""

#: what `compat path` proposes for this journey: (kind, from, to), in order
PATH = [("pks", "1.1.4", "1.1.5"), ("opsman", "2.1.3", "2.2.3"), ("nsxt", "2.1.0.0", "2.2.0.0"),
        ("pks", "1.1.5", "1.2.4"), ("pks", "1.2.4", "1.2.5"), ("pks", "1.2.5", "1.2.7"),
        ("pks", "1.2.7", "1.2.8"), ("opsman", "2.2.3", "2.3.1"), ("pks", "1.2.8", "1.3.4"),
        ("pks", "1.3.4", "1.3.5"), ("nsxt", "2.2.0.0", "2.3.1.0")]
UNITS = ["esx-01", "esx-02", "esx-03", "edge-01", "edge-02", "ctrl-01", "nsx-mgr-01"]


def sha(path: Path) -> str:
    """The file's sha256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_lab(directory: Path, *, opsman: str = '"2.1.3"', bundles: dict[str, str] | None = None,
             inventory: str = INVENTORY) -> Path:
    """Write the lab into ``directory``; the journey file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "inventory.yaml").write_text(inventory)
    (directory / "site.yaml").write_text(SITE)
    for version in ("2.2", "2.3.1"):
        (directory / f"nsx-{version}.mub").write_text(f"lab stand-in bundle for NSX-T {version}\n")
    if bundles is None:
        bundles = {
            "2.2.0.0": f'{{path: nsx-2.2.mub, sha256: "{sha(directory / "nsx-2.2.mub")}"}}',
            "2.3.1.0": f'{{path: nsx-2.3.1.mub, sha256: "{sha(directory / "nsx-2.3.1.mub")}"}}',
        }
    lines = "".join(f'  "{k}": {v}\n' for k, v in bundles.items())
    journey = directory / "journey.yaml"
    journey.write_text(
        "name: lab-journey\n"
        "site: site.yaml\n"
        f'from: {{pks: "1.1.4", nsxt: "2.1.0.0", opsman: {opsman}}}\n'
        'to: {pks: "1.3.5", nsxt: "2.3.1.0"}\n'
        + ("bundles:\n" + lines if lines else "bundles: {}\n"))
    return journey


def journey(*args: str | Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``nsxt-upgrade journey ARGS``."""
    return nsxt("journey", *args, env=env, timeout=timeout)


def status(journey_file: Path, state_dir: Path) -> dict[str, Any]:
    """``journey status --format json`` (must succeed)."""
    proc = journey("status", journey_file, "--state-dir", state_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def world(state_dir: Path) -> dict[str, Any]:
    """``sim show --format json`` of a hop's state dir."""
    proc = nsxt("sim", "show", "--state-dir", state_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def assert_hops_exactly_once(state_dir: Path) -> None:
    """Every unit of both NSX-T hops upgraded exactly once in its hop, to the hop's target."""
    for slug, target in (("03-nsxt-2.2.0.0", "2.2.0.0"), ("11-nsxt-2.3.1.0", "2.3.1.0")):
        units = {u["id"]: u for u in world(state_dir / "steps" / slug)["units"]}
        assert sorted(units) == sorted(UNITS)
        for unit in units.values():
            assert unit["upgrade_count"] == 1, (slug, unit)
            assert unit["version"] == target, (slug, unit)
            assert not unit["in_maintenance"], (slug, unit)


@dataclass
class OpsmanEmulator:
    """A running ``emulate opsman``."""

    url: str
    state_dir: Path
    process: subprocess.Popen[str] = field(repr=False)
    cert: Path | None = None

    def set(self, **versions: str) -> None:
        """``emulate opsman-set``: the operator's upgrade of Ops Manager or the PKS tile."""
        args: list[str] = []
        for product, version in versions.items():
            args += [f"--{product}", version]
        proc = nsxt("emulate", "opsman-set", "--state-dir", self.state_dir, *args)
        assert proc.returncode == 0, proc.stderr

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def opsman_emulator(state_dir: Path, *, opsman: str = "2.1.3", pks: str = "1.1.4",
                    tls: bool = True, info_format: str = "minor",
                    env: dict[str, str] | None = None) -> Iterator[OpsmanEmulator]:
    """``nsxt-upgrade emulate opsman`` on a free port, stopped afterwards."""
    command = [sys.executable, "-m", "upgrade", "emulate", "opsman", "--state-dir",
               str(state_dir), "--opsman", opsman, "--pks", pks, "--info-format", info_format]
    if tls:
        command.append("--tls")
    log = state_dir.parent / f"{state_dir.name}-opsman.log"
    with log.open("a") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True,
                                   env={**ENV, **OPSMAN_ENV, **(env or {})}, cwd=ROOT)
    assert process.stdout is not None
    line = ""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not line:
            if selector.select(timeout=0.1):
                line = process.stdout.readline()
                if not line:
                    break
    if not line.startswith("listening on "):
        process.kill()
        process.wait()
        raise AssertionError(f"emulate opsman did not start: {line!r}\n{log.read_text()}")
    emulator = OpsmanEmulator(line.split()[-1], state_dir, process,
                              state_dir / "emulator-cert.pem" if tls else None)
    try:
        yield emulator
    finally:
        emulator.stop()


def env_without_opsman() -> dict[str, str]:
    """The tests' environment with no Ops Manager credentials."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OPSMAN_")}
