"""Bundle integrity (DESIGN section 7) as an operator meets it: `plan` and `run` on real files.

A ``path`` bundle with ``sha256`` is hashed before anything is uploaded; a mismatch is exit 2
on the playbook's ``sha256`` line with both digests and nothing written anywhere; the digest
is cached in the state dir so `resume` does not read the file again unless it changed; a
bundle without ``sha256`` plans with the warning ``bundle-unverified``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_run_cli import at_terminal
from tests.nsxt_emulator_support import PASSWORD, USERNAME, running_emulator
from tests.run_support import BUNDLE, ENV, LAB, command, edit, nsxt, world
from upgrade.shell.bundle import CACHE_FILE, digest_of, hash_file, remember
from upgrade.sim.store import load_snapshot

SHIPPED_SHA = hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
WRONG_SHA = "0" * 64
UPLOAD_FAILS_TWICE = "faults:\n  - {unit: bundle, op: upload, kind: fail, times: 2}\n"


def sha_position(playbook: Path) -> tuple[int, int]:
    """(line, column) of the sha256 value in ``playbook``."""
    for number, line in enumerate(playbook.read_text().splitlines(), 1):
        if "sha256:" in line:
            return number, line.index("sha256:") + len("sha256: ") + 1
    raise AssertionError("no sha256 line")


def verified_lines(state_dir: Path) -> list[str]:
    """The run.log messages saying the bundle was verified, in order."""
    entries = [json.loads(line) for line in (state_dir / "run.log").read_text().splitlines()]
    return [e["text"] for e in entries if "verified: sha256" in e.get("text", "")]


def test_shipped_playbooks_carry_the_shipped_bundles_digest() -> None:
    """Every shipped playbook's sha256 is the digest of the bundle it names."""
    for playbook in sorted(LAB.parent.glob("*.yaml")):
        text = playbook.read_text()
        if "sha256:" in text:
            assert SHIPPED_SHA in text, playbook.name


def test_wrong_digest_exits_2_on_the_sha256_line_and_writes_nothing(books: Path,
                                                                    tmp_path: Path) -> None:
    """A wrong sha256: `run` exits 2 with one line FILE:LINE:COL naming both digests and the
    fix, creates no state dir; put right, `run` into the same state dir works."""
    playbook = edit(books / LAB.name, SHIPPED_SHA, WRONG_SHA)
    state_dir = tmp_path / "state"
    proc = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line, column = sha_position(playbook)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"{playbook}:{line}:{column}: bundle sha256 mismatch: ")
    assert f"expected {WRONG_SHA}, got {SHIPPED_SHA}" in lines[0]
    assert "sha256" in lines[0].split("(", 1)[1]  # the fix names what to do
    assert not state_dir.exists()
    assert proc.stdout == ""  # no progress off a terminal
    assert nsxt("plan", playbook).returncode == 0  # plan does not read the bundle
    edit(playbook, WRONG_SHA, SHIPPED_SHA.upper())  # the digest's case does not matter
    done = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "upgrade complete" in done.stdout
    assert f"verified: sha256 {SHIPPED_SHA} (hashed)" in done.stdout
    assert "verifying" not in done.stdout


def test_hashing_shows_progress_at_a_terminal(tmp_path: Path) -> None:
    """At a terminal the hashing shows a progress bar with the bytes read."""
    code, out = at_terminal(b"y\n", "run", LAB, "--state-dir", tmp_path / "state")
    assert code == 0, out
    size = BUNDLE.stat().st_size
    assert f"verifying {BUNDLE.name}" in out and f"{size}/{size} bytes" in out
    assert f"verified: sha256 {SHIPPED_SHA} (hashed)" in out


def test_some_other_file_is_refused(books: Path, tmp_path: Path) -> None:
    """A bundle path pointing at an unrelated file (like /etc/passwd): exit 2, the file's
    real digest named, nothing written."""
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n")
    playbook = edit(books / LAB.name, "path: bundles/VMware-NSX-upgrade-bundle-"
                    "2.3.0.0.0.10085361.mub", f"path: {other}")
    state_dir = tmp_path / "state"
    proc = nsxt("run", playbook, "--yes", "--state-dir", state_dir)
    assert proc.returncode == 2
    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    assert f"expected {SHIPPED_SHA}, got {digest} for {other}" in proc.stderr
    assert not state_dir.exists()


def test_a_directory_is_named_as_a_directory(books: Path) -> None:
    """A bundle path that is a directory says so (not "does not exist"), with its position."""
    playbook = edit(books / LAB.name, "path: bundles/VMware-NSX-upgrade-bundle-"
                    "2.3.0.0.0.10085361.mub", "path: bundles")
    for verb in (("plan",), ("run", "--yes")):
        proc = nsxt(verb[0], playbook, *verb[1:])
        assert proc.returncode == 2
        assert f"{playbook}:5:9: bundle path {books / 'bundles'} is a directory" in proc.stderr
        assert "does not exist" not in proc.stderr


def test_malformed_sha256_is_located_at_load(books: Path) -> None:
    """A sha256 that is not 64 hex characters: `plan` exits 2 at its line and column."""
    playbook = edit(books / LAB.name, SHIPPED_SHA, SHIPPED_SHA[:-1] + "g")
    proc = nsxt("plan", playbook)
    line, column = sha_position(playbook)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{playbook}:{line}:{column}: sha256 must be 64 hexadecimal")


def test_resume_uses_the_cached_digest_until_the_file_changes(books: Path,
                                                              tmp_path: Path) -> None:
    """The run hashes the bundle and caches the digest by path, size and mtime; `resume`
    (the upload not done yet) takes it from the cache; a touched file is hashed again; a
    file whose content changed is refused (exit 2) with the world untouched."""
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text() + UPLOAD_FAILS_TWICE)
    state_dir = tmp_path / "state"
    first = nsxt("run", books / LAB.name, "--yes", "--state-dir", state_dir)
    assert first.returncode == 3, first.stdout + first.stderr
    cache = json.loads((state_dir / CACHE_FILE).read_text())
    bundle = books / "bundles" / BUNDLE.name
    assert cache == {"path": str(bundle.resolve()), "size": bundle.stat().st_size,
                     "mtime_ns": bundle.stat().st_mtime_ns, "sha256": SHIPPED_SHA}
    second = nsxt("resume", "--state-dir", state_dir, "--retry-failed")
    assert second.returncode == 3, second.stdout + second.stderr
    assert [line.rsplit(" ", 1)[1] for line in verified_lines(state_dir)] == [
        "(hashed)", "(cached)"]

    stat = bundle.stat()
    os.utime(bundle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    original = bundle.read_bytes()
    bundle.write_bytes(original[:-1] + b"X")  # same size, new content
    refused = nsxt("resume", "--state-dir", state_dir, "--retry-failed")
    assert refused.returncode == 2 and "bundle sha256 mismatch" in refused.stderr
    snapshot = world(state_dir)
    assert all(u["upgrade_count"] == 0 and not u["maintenance"] for u in snapshot["units"])
    assert [o["op"] for o in snapshot["operations"] if o["op"] == "upload"] == ["upload"]

    bundle.write_bytes(original)  # restored: a new mtime, so hashed again
    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert verified_lines(state_dir)[-1].endswith("(hashed)")
    assert len(verified_lines(state_dir)) == 3


def test_no_sha256_plans_with_a_warning_that_does_not_block(books: Path,
                                                            tmp_path: Path) -> None:
    """Without sha256 the plan carries the warning bundle-unverified (not blocking: the
    plan stays runnable, exit 0); --ack marks it acknowledged; the run goes ahead."""
    playbook = edit(books / LAB.name, f'  sha256: "{SHIPPED_SHA}"\n', "")
    proc = nsxt("plan", playbook, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    finding = next(f for f in doc["findings"] if f["id"] == "bundle-unverified")
    assert finding["severity"] == "warning" and not finding["blocking"]
    assert not finding["acknowledged"] and "sha256" in finding["message"]
    assert doc["runnable"] and doc["refusals"] == []
    text = nsxt("plan", playbook)
    assert "bundle-unverified" in text.stdout and "does not block" in text.stdout
    acked = json.loads(nsxt("plan", playbook, "--format", "json", "--ack",
                            "bundle-unverified").stdout)
    assert next(f for f in acked["findings"] if f["id"] == "bundle-unverified")["acknowledged"]
    run = nsxt("run", playbook, "--yes", "--state-dir", tmp_path / "state")
    assert run.returncode == 0 and "verified: sha256" not in run.stdout
    # with the sha256 given there is no such warning, and acknowledging it is an error
    assert "bundle-unverified" not in nsxt("plan", LAB, "--format", "json").stdout
    assert nsxt("plan", LAB, "--ack", "bundle-unverified").returncode == 2


def test_hashing_streams_in_chunks_and_the_cache_is_keyed(tmp_path: Path) -> None:
    """hash_file reports progress chunk by chunk up to the size; the cache answers only for
    the same resolved path, size and mtime."""
    data = os.urandom(3 * (1 << 20) + 5)
    path = tmp_path / "b.mub"
    path.write_bytes(data)
    seen: list[tuple[int, int]] = []
    assert hash_file(path, lambda done, total: seen.append((done, total))) == \
        hashlib.sha256(data).hexdigest()
    assert len(seen) == 4 and seen[-1] == (len(data), len(data))
    state = tmp_path / "state"
    state.mkdir()
    first = digest_of(path, state)
    assert first.hashed
    remember(state, first)
    assert not digest_of(path, state).hashed
    assert not digest_of(tmp_path / "." / "b.mub", state).hashed  # the same resolved path
    os.utime(path, ns=(0, 0))
    assert digest_of(path, state).hashed


@pytest.mark.slow
def test_nsxt_adapter_uploads_nothing_on_a_mismatch(tmp_path: Path) -> None:
    """Against the NSX-T emulator: a wrong sha256 is exit 2 before any request that changes
    the manager (no bundle uploaded, nothing upgraded); the right one uploads the bundle."""
    emu_dir = tmp_path / "emulator"
    emu_dir.mkdir()
    with running_emulator(emu_dir, speed=6000) as emu:
        playbook = tmp_path / "real.yaml"
        playbook.write_text(
            "name: real\ntarget_version: \"2.3.0.0\"\n"
            f"bundle: {{path: {BUNDLE}, sha256: \"{WRONG_SHA}\"}}\n"
            f"inventory: {{adapter: nsxt, manager: \"{emu.url}\"}}\n"
            "compatibility: {pks: \"1.2.0\", opsman: \"2.3.1\"}\n"
            "prechecks: {acknowledge: [edge-01-uplink-fp-eth1-is-down]}\n")
        env = {**ENV, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD}

        def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
            return subprocess.run(command(*args), capture_output=True, text=True, env=env,
                                  timeout=120, check=False, stdin=subprocess.DEVNULL)

        state_dir = tmp_path / "state"
        refused = run("run", playbook, "--yes", "--state-dir", state_dir, "--speed", "6000")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"{playbook}:3:" in refused.stderr and "bundle sha256 mismatch" in refused.stderr
        assert not state_dir.exists()
        with emu.client() as client:
            assert client.get("/api/v1/upgrade/bundles/latest").status_code == 404
        assert all(u["upgrade_count"] == 0 for u in load_snapshot(emu.state_dir)["units"])

        playbook.write_text(playbook.read_text().replace(WRONG_SHA, SHIPPED_SHA))
        done = run("run", playbook, "--yes", "--state-dir", state_dir, "--speed", "6000")
        assert done.returncode == 0, done.stdout + done.stderr
        with emu.client() as client:
            assert client.get("/api/v1/upgrade/bundles/latest").status_code == 200
