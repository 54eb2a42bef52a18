"""pytest plugin: govmomi's vCenter simulator (vcsim) on a free localhost port.

``tests/vcsim/main.go`` is built once per source version with Debian's ``golang-go`` and
``golang-github-vmware-govmomi-dev`` (offline: ``GO111MODULE=off GOPATH=/usr/share/gocode``)
and cached under ``$XDG_CACHE_HOME/nsxt-upgrade`` (``~/.cache/nsxt-upgrade``).

Fixtures:

- ``vcsim``: one simulator for the session (cluster ``DC0_C0``, DRS manual, hosts
  ``DC0_C0_H0..2`` with two powered-on VMs each, ``DC0_C0_H0_VM0``...). Tests that change
  its world should use ``vcsim_factory`` instead.
- ``vcsim_factory``: ``start(spec=None, **flags)`` starts a fresh simulator for one test,
  from a spec like an inventory's ``compute`` section (``{"clusters": [{"name", "drs",
  "hosts": [{"id" or "name", "vms": [...]}]}]}``) or from the count flags (``clusters=``,
  ``hosts=``, ``vms=``, ``drs=``); it is stopped when the test ends.

Without ``go`` or the govmomi sources the tests that use them are skipped, saying why;
when ``CI=true`` they fail instead, so CI never skips them silently. Tests that use these
fixtures get the ``vcsim`` marker (``-m "not vcsim"`` deselects them).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import selectors
import shutil
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

SOURCE_DIR = Path(__file__).resolve().parent / "vcsim"
GOPATH = Path(os.environ.get("VCSIM_GOPATH", "/usr/share/gocode"))
SIMULATOR = GOPATH / "src" / "github.com" / "vmware" / "govmomi" / "simulator"
APT_HINT = "apt-get install -y golang-go golang-github-vmware-govmomi-dev"
START_TIMEOUT_S = 60.0
BUILD_TIMEOUT_S = 900.0


@dataclass
class Vcsim:
    """A running simulator: its SDK URL, the one login it accepts, and its CA certificate."""

    url: str
    username: str
    password: str
    ca_bundle: str
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path = field(repr=False)

    def task(
        self, state: str, *, entity: str = "", op: str = "", message: str = "", task: str = ""
    ) -> str:
        """Create a task on ``entity`` (a host or VM name) in ``state``, or with ``task`` change
        that task's state, as another vCenter client would have; returns the task key."""
        form = {"state": state, "entity": entity, "op": op, "message": message, "task": task}
        parts = urllib.parse.urlsplit(self.url)
        request = urllib.request.Request(
            f"{parts.scheme}://{parts.netloc}/vcsim/task",
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
        )
        context = ssl.create_default_context(cafile=self.ca_bundle)
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            return str(json.loads(answer.read())["task"])


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"vcsim is required in CI but {reason}; install it with: {APT_HINT}", pytrace=False
        )
    pytest.skip(f"vcsim unavailable: {reason} (install: {APT_HINT})")


def _cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    root = Path(base) / "nsxt-upgrade"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        root = tmp_path_factory.mktemp("vcsim-cache")
    return root


def build_vcsim(cache_root: Path) -> Path:
    """Build (or reuse) the simulator binary; skips, or fails under CI, without Go/govmomi."""
    go = shutil.which("go")
    if go is None:
        _unavailable("the go command is not installed")
    if not (SIMULATOR / "simulator.go").is_file():
        _unavailable(f"the govmomi simulator sources are not in {SIMULATOR}")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    if not (env.get("GOCACHE") or env.get("XDG_CACHE_HOME") or env.get("HOME")):
        env["GOCACHE"] = str(cache_root / "go-build")  # go needs somewhere to cache
    version = subprocess.run(
        [go, "version"], capture_output=True, text=True, env=env, check=False
    ).stdout
    key = hashlib.sha256()
    key.update(version.encode())
    key.update((SOURCE_DIR / "main.go").read_bytes())
    stat = (SIMULATOR / "simulator.go").stat()
    key.update(f"{SIMULATOR}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    binary = cache_root / f"vcsim-{key.hexdigest()[:16]}"
    if binary.is_file():
        return binary
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.partial")
    started = time.monotonic()
    result = subprocess.run(
        [go, "build", "-o", str(partial), "."],
        cwd=SOURCE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        pytest.fail(f"building tests/vcsim failed:\n{result.stderr}", pytrace=False)
    partial.replace(binary)  # atomic: concurrent sessions never run a half-written binary
    print(f"built vcsim in {time.monotonic() - started:.1f}s: {binary}")
    return binary


def _read_url(process: subprocess.Popen[bytes], log_path: Path) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if selector.select(START_TIMEOUT_S):
            line = process.stdout.readline().decode().strip()
            if line.startswith("https://"):
                return line
    process.kill()
    process.wait()
    raise RuntimeError(f"vcsim did not start:\n{log_path.read_text(errors='replace')}")


@contextmanager
def run_vcsim(
    binary: Path, workdir: Path, spec: dict[str, Any] | None = None, **flags: object
) -> Iterator[Vcsim]:
    """Run the simulator until the ``with`` block ends; ``flags`` become ``-name value``."""
    workdir.mkdir(parents=True, exist_ok=True)
    username, password = "administrator@vsphere.local", secrets.token_urlsafe(12)
    ca_bundle, log_path = workdir / "vcsim-ca.pem", workdir / "vcsim.log"
    argv = [
        str(binary),
        "-listen",
        "127.0.0.1:0",
        "-username",
        username,
        "-password",
        password,
        "-cert-out",
        str(ca_bundle),
        "-exit-on-stdin-eof",
    ]
    if spec is not None:
        spec_path = workdir / "vcsim-spec.json"
        spec_path.write_text(json.dumps(spec))
        argv += ["-spec", str(spec_path)]
    for name, value in flags.items():
        argv += [f"-{name}", str(value)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    try:
        url = _read_url(process, log_path)
        yield Vcsim(url, username, password, str(ca_bundle), process, log_path)
    finally:
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()  # -exit-on-stdin-eof: it stops by itself
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="session")
def vcsim_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator program, built once (and cached across sessions)."""
    return build_vcsim(_cache_root(tmp_path_factory))


@pytest.fixture(scope="session")
def vcsim(vcsim_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vcsim]:
    """One simulator for the whole session; treat its world as read-only."""
    with run_vcsim(vcsim_binary, tmp_path_factory.mktemp("vcsim")) as sim:
        yield sim


@pytest.fixture
def vcsim_factory(vcsim_binary: Path, tmp_path: Path) -> Iterator[Callable[..., Vcsim]]:
    """Start fresh simulators for one test: ``start(spec=None, **flags)``."""
    with ExitStack() as stack:
        count = 0

        def start(spec: dict[str, Any] | None = None, **flags: object) -> Vcsim:
            nonlocal count
            count += 1
            return stack.enter_context(
                run_vcsim(vcsim_binary, tmp_path / f"vcsim-{count}", spec, **flags)
            )

        yield start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a simulator fixture with ``vcsim``."""
    for item in items:
        if {"vcsim", "vcsim_factory", "vcsim_binary"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.vcsim)
