"""Start the NSX-T upgrade-API emulator (``python -m upgrade emulate nsxt``) for tests.

:func:`running_emulator` starts it as a real subprocess on a free port, reads
the ``listening on URL`` line, and stops it (SIGTERM, then SIGKILL) when the
test is done.  Inventories are small and durations short so that, at
``--speed 600``, a whole upgrade takes a few seconds.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
USERNAME = "admin"
PASSWORD = "Em-ulat0r!pass"
START_TIMEOUT_S = 30.0

#: a small lab: 2 clusters (3 hosts), 1 edge cluster of 2 edges, 1 controller, 1 manager
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
    - name: cluster-b
      drs: manual
      hosts:
        - {id: esx-03, vms: [db-1]}
durations: {host_upgrade: 60, edge_upgrade: 60, controller_upgrade: 60, manager_upgrade: 400,
            vmotion: 10, bundle_upload: 120, coordinator_upgrade: 30, precheck: 20,
            postcheck: 20}
health:
  warnings:
    - {id: edge-connectivity-degraded, unit: edge-01, message: "uplink fp-eth1 is down"}
  errors: []
"""


@dataclass
class Emulator:
    """A running emulator."""

    url: str
    state_dir: Path
    process: subprocess.Popen[str] = field(repr=False)
    cert: Path | None = None
    api: str = "2.3"

    @property
    def traffic(self) -> Path:
        """The exchanges it recorded (``--record``)."""
        return traffic_log(self.state_dir)

    def client(self, **options: Any) -> httpx.Client:
        """A synchronous httpx client with the emulator's credentials (and CA)."""
        options.setdefault("auth", (USERNAME, PASSWORD))
        options.setdefault("base_url", self.url)
        options.setdefault("timeout", 10.0)
        if self.cert is not None:
            options.setdefault("verify", _context(self.cert))
        return httpx.Client(**options)

    @property
    def log(self) -> Path:
        """Where its stderr goes (appended to by every start on the same state dir)."""
        return emulator_log(self.state_dir)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop it (SIGTERM: cleanly; SIGKILL: as a crash); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def _context(cert: Path) -> Any:
    import ssl

    return ssl.create_default_context(cafile=str(cert))


def write_inventory(directory: Path, text: str = INVENTORY, extra: str = "") -> Path:
    """The inventory file ``directory/inventory-src.yaml``."""
    path = directory / "inventory-src.yaml"
    path.write_text(text + extra)
    return path


def emulator_log(state_dir: Path) -> Path:
    """The file that collects the stderr of the emulators started on ``state_dir``."""
    return state_dir.parent / f"{state_dir.name}-emulator.log"


def traffic_log(state_dir: Path) -> Path:
    """Where the emulators started on ``state_dir`` record their exchanges."""
    return state_dir.parent / f"{state_dir.name}-traffic.jsonl"


def closed_port() -> int:
    """A localhost port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(inventory: Path, state_dir: Path, *, speed: float = 600, tls: bool = False,
                   port: int = 0, env: dict[str, str] | None = None, api: str | None = None,
                   record: Path | None = None, target: str | None = None) -> Emulator:
    """Start ``nsxt-upgrade emulate nsxt`` and wait for its ``listening on`` line.

    ``api``: its ``--api-version`` (default: the emulator's own, 2.3; the environment's
    NSXT_TEST_API_VERSION when set); ``record``: where it appends every exchange
    (default: the environment's NSXT_TEST_RECORD, else ``state_dir``'s sibling
    ``<name>-traffic.jsonl``), which the contract tests read; ``target``: its
    ``--target-version`` (default: the emulator's own, 2.3.0.0).
    """
    environ = {**os.environ, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD,
               **(env or {})}
    command = [sys.executable, "-m", "upgrade", "emulate", "nsxt", "--inventory", str(inventory),
               "--state-dir", str(state_dir), "--port", str(port), "--speed", str(speed)]
    if tls:
        command.append("--tls")
    if target:
        command += ["--target-version", target]
    api = api or os.environ.get("NSXT_TEST_API_VERSION")
    if api:
        command += ["--api-version", api]
    command += ["--record", str(record or traffic_log(state_dir))]
    log = emulator_log(state_dir)
    with log.open("a") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True,
                                   env=environ, cwd=ROOT)
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline and not line:
            if selector.select(timeout=0.1):
                line = process.stdout.readline()
                if not line:
                    break
    if not line.startswith("listening on "):
        process.kill()
        process.wait()
        process.stdout.close()
        raise AssertionError(f"the emulator did not start: {line!r}\n{log.read_text()}")
    cert = state_dir / "emulator-cert.pem" if tls else None
    return Emulator(line.split()[-1], state_dir, process, cert, api or "2.3")


@contextmanager
def running_emulator(tmp_path: Path, inventory_extra: str = "", **options: Any
                     ) -> Iterator[Emulator]:
    """An emulator over a fresh state dir in ``tmp_path``, stopped afterwards."""
    inventory = write_inventory(tmp_path, extra=inventory_extra)
    emulator = start_emulator(inventory, tmp_path / "state", **options)
    try:
        yield emulator
    finally:
        emulator.stop()


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll ``predicate()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(interval)
