"""`nsxt-upgrade journey` as an operator meets it: real files, the CLI in subprocesses,
the simulated adapter; gates confirmed with --confirm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.journey.support import (
    PATH,
    assert_hops_exactly_once,
    journey,
    make_lab,
    status,
)


def test_plan_prints_every_step_with_estimate_sources_and_warnings(tmp_path: Path) -> None:
    """`journey plan` lists compat path's eleven steps in order: NSX-T hops with the
    engine's estimate and phases, the PKS / Ops Manager steps as operator steps, each
    with its source; it changes nothing."""
    journey_file = make_lab(tmp_path / "lab")
    before = sorted(p.name for p in (tmp_path / "lab").iterdir())
    proc = journey("plan", journey_file)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for n, (kind, old, new) in enumerate(PATH, start=1):
        label = {"pks": "PKS", "opsman": "Ops Manager", "nsxt": "NSX-T"}[kind]
        assert f"{n:2d}. upgrade {label} {old} \u2192 {new}" in text
    assert text.count("operator step (not estimated)") == 9
    assert text.count("(nsxt-upgrade)") == 2
    assert "phases: precheck" in text and "controllers" in text
    assert text.count("    source: ") == 11
    assert "pivotal-cf/docs-pks" in text
    assert "Estimated: " in text and "plus 9 operator steps" in text
    assert sorted(p.name for p in (tmp_path / "lab").iterdir()) == before  # nothing written


def test_plan_json_carries_each_hop_estimate(tmp_path: Path) -> None:
    """`journey plan --format json`: one document; hops carry the engine's estimate (the
    sum is the journey's), gates have none."""
    journey_file = make_lab(tmp_path / "lab")
    proc = journey("plan", journey_file, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [(s["kind"], s["from"], s["to"]) for s in doc["steps"]] == PATH
    hops = [s for s in doc["steps"] if s["kind"] == "nsxt"]
    assert all(s["estimated_duration_s"] > 0 for s in hops)
    assert all(s["estimated_duration_s"] is None and s["operator_step"]
               for s in doc["steps"] if s["kind"] != "nsxt")
    assert doc["estimated_duration_s"] == sum(s["estimated_duration_s"] for s in hops)
    assert hops[0]["phases"][0]["name"] == "precheck"
    assert doc["operator_steps"] == 9 and doc["refusals"] == []


def test_a_hop_without_a_bundle_is_exit_2_at_bundles(tmp_path: Path) -> None:
    """A hop the `bundles:` map has no bundle for: exit 2, FILE:LINE:COL of `bundles`,
    naming the version; no traceback."""
    lab = tmp_path / "lab"
    journey_file = make_lab(lab, bundles={"2.2": "{path: nsx-2.2.mub}"})
    proc = journey("plan", journey_file)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = next(i for i, text in enumerate(journey_file.read_text().splitlines(), start=1)
                if text.startswith("bundles:"))
    assert proc.stderr.startswith(f"{journey_file}:{line}:1: bundles: no upgrade bundle for "
                                  "NSX-T 2.3.1.0 (step 11")
    assert "Traceback" not in proc.stderr
    run = journey("run", journey_file, "--yes", "--state-dir", tmp_path / "j")
    assert run.returncode == 2 and "no upgrade bundle for NSX-T 2.3.1.0" in run.stderr


def test_bundle_keys_compare_as_versions(tmp_path: Path) -> None:
    """`"2.2"` names the bundle of NSX-T 2.2.0.0."""
    lab = tmp_path / "lab"
    journey_file = make_lab(lab, bundles={"2.2": "{path: nsx-2.2.mub}",
                                          "2.3.1": "{path: nsx-2.3.1.mub}"})
    proc = journey("plan", journey_file, "--ack", "bundle-unverified")
    assert proc.returncode == 0, proc.stderr


def _confirm_all(journey_file: Path, state_dir: Path) -> list[int]:
    codes = []
    for kind, _old, new in PATH:
        if kind == "nsxt":
            continue
        proc = journey("resume", journey_file, "--state-dir", state_dir,
                       "--confirm", f"{kind}={new}")
        codes.append(proc.returncode)
        assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    return codes


def test_run_with_confirm_ends_done_every_unit_once_per_hop(tmp_path: Path) -> None:
    """`journey run` stops at each gate (exit 3, saying what to do); `resume --confirm`
    passes it; both NSX-T hops run in their own state dirs; the journey ends 0 with every
    unit of each hop upgraded exactly once."""
    journey_file = make_lab(tmp_path / "lab")
    state_dir = tmp_path / "j"
    first = journey("run", journey_file, "--yes", "--state-dir", state_dir)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "step 1/11 is yours: upgrade PKS 1.1.4 \u2192 1.1.5" in first.stdout
    assert "--confirm pks=1.1.5" in first.stdout
    doc = status(journey_file, state_dir)
    assert doc["state"] == "waiting" and doc["waiting_for"] == {"pks": "1.1.5"}
    assert doc["at"] == {"pks": "1.1.4", "nsxt": "2.1.0.0", "opsman": "2.1.3"}
    codes = _confirm_all(journey_file, state_dir)
    assert codes == [3] * 8 + [0]
    doc = status(journey_file, state_dir)
    assert doc["state"] == "done" and doc["waiting_for"] is None
    assert doc["at"] == {"pks": "1.3.5", "nsxt": "2.3.1.0", "opsman": "2.3.1"}
    assert [s["state"] for s in doc["steps"]] == ["done"] * 11
    assert [s["state_dir"] for s in doc["steps"] if s["kind"] == "nsxt"] == [
        str(state_dir / "steps" / "03-nsxt-2.2.0.0"), str(state_dir / "steps" / "11-nsxt-2.3.1.0")]
    assert_hops_exactly_once(state_dir)
    again = journey("resume", journey_file, "--state-dir", state_dir)
    assert again.returncode == 0 and "is done" in again.stdout
    assert_hops_exactly_once(state_dir)


def test_several_gates_confirmed_at_once(tmp_path: Path) -> None:
    """An operator who did the PKS 1.2.x upgrades in one sitting confirms the last one:
    the gates up to it pass together, the ones after still wait."""
    journey_file = make_lab(tmp_path / "lab")
    state_dir = tmp_path / "j"
    assert journey("run", journey_file, "--yes", "--state-dir", state_dir).returncode == 3
    proc = journey("resume", journey_file, "--state-dir", state_dir, "--confirm", "pks=1.1.5",
                   "--confirm", "opsman=2.2.3")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    proc = journey("resume", journey_file, "--state-dir", state_dir, "--confirm", "pks=1.2.8")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    doc = status(journey_file, state_dir)
    assert [s["state"] for s in doc["steps"]][:8] == ["done"] * 7 + ["waiting"]
    assert doc["waiting_for"] == {"opsman": "2.3.1"}


@pytest.mark.parametrize(("confirm", "words"), [
    ("pks=1.2.0", "is not supported by the compatibility matrix"),
    ("pks=1.1.6", "not on the journey's path"),
])
def test_a_confirmed_state_off_the_path_is_refused(tmp_path: Path, confirm: str,
                                                    words: str) -> None:
    """A confirmed version that makes an unsupported state (PKS 1.2.0 on NSX-T 2.1) is
    refused with exit 4 and nothing moves; so is a supported one the path did not take."""
    journey_file = make_lab(tmp_path / "lab")
    state_dir = tmp_path / "j"
    assert journey("run", journey_file, "--yes", "--state-dir", state_dir).returncode == 3
    proc = journey("resume", journey_file, "--state-dir", state_dir, "--confirm", confirm)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    doc = status(journey_file, state_dir)
    assert doc["state"] == "waiting" and doc["at"]["pks"] == "1.1.4"
    assert words in doc["reason"]
    assert not (state_dir / "steps").exists()


def test_a_bundle_that_does_not_match_its_sha256_stops_before_the_hop(tmp_path: Path) -> None:
    """The hop's bundle is hashed before its run starts: a mismatch is exit 2 at the
    journey's sha256 line, naming both digests; no run is started."""
    lab = tmp_path / "lab"
    journey_file = make_lab(lab)
    state_dir = tmp_path / "j"
    assert journey("run", journey_file, "--yes", "--state-dir", state_dir).returncode == 3
    (lab / "nsx-2.2.mub").write_text("a truncated download\n")
    proc = journey("resume", journey_file, "--state-dir", state_dir, "--confirm", "pks=1.1.5",
                   "--confirm", "opsman=2.2.3")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = next(i for i, text in enumerate(journey_file.read_text().splitlines(), start=1)
                if text.startswith('  "2.2.0.0"'))
    assert proc.stderr.startswith(f"{journey_file}:{line}:")
    assert "bundle sha256 mismatch" in proc.stderr
    assert not (state_dir / "steps" / "03-nsxt-2.2.0.0" / "journal.sqlite").exists()


def test_run_twice_and_resume_before_run_are_refused(tmp_path: Path) -> None:
    """`journey run` on a started journey and `resume` on none: exit 2, saying which."""
    journey_file = make_lab(tmp_path / "lab")
    state_dir = tmp_path / "j"
    early = journey("resume", journey_file, "--state-dir", state_dir)
    assert early.returncode == 2 and "has not started" in early.stderr
    assert status(journey_file, state_dir)["state"] == "not_started"
    assert journey("run", journey_file, "--yes", "--state-dir", state_dir).returncode == 3
    again = journey("run", journey_file, "--yes", "--state-dir", state_dir)
    assert again.returncode == 2 and "journey resume" in again.stderr


def test_malformed_confirm_is_exit_2(tmp_path: Path) -> None:
    """--confirm takes pks=V or opsman=V only."""
    journey_file = make_lab(tmp_path / "lab")
    state_dir = tmp_path / "j"
    assert journey("run", journey_file, "--yes", "--state-dir", state_dir).returncode == 3
    for bad in ("nsxt=2.2", "pks", "pks=one"):
        proc = journey("resume", journey_file, "--state-dir", state_dir, "--confirm", bad)
        assert proc.returncode == 2, (bad, proc.stderr)
        assert proc.stderr.startswith("error: --confirm")


def test_a_second_runner_is_exit_5_and_status_says_running(tmp_path: Path) -> None:
    """While one `journey resume` runs a hop (on the real clock), status says running and a
    second runner is refused with exit 5; the first then finishes its hop."""
    import subprocess
    import time

    from tests.run_support import ENV, command

    journey_file = make_lab(tmp_path / "lab")
    state_dir = tmp_path / "j"
    assert journey("run", journey_file, "--yes", "--state-dir", state_dir, "--speed",
                   "100").returncode == 3
    first = subprocess.Popen(command("journey", "resume", journey_file, "--state-dir",
                                     state_dir, "--confirm", "pks=1.1.5", "--confirm",
                                     "opsman=2.2.3"), env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (state_dir / "steps" / "03-nsxt-2.2.0.0" / "journal.sqlite").exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        assert status(journey_file, state_dir)["state"] == "running"
        second = journey("resume", journey_file, "--state-dir", state_dir)
        assert second.returncode == 5, second.stderr
        assert "is carrying out the journey" in second.stderr
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 3, err
    assert status(journey_file, state_dir)["waiting_for"] == {"pks": "1.2.4"}


def test_no_supported_path_is_refused(tmp_path: Path) -> None:
    """A goal no path reaches (a PKS downgrade): `journey plan` and `run` exit 4."""
    journey_file = make_lab(tmp_path / "lab")
    journey_file.write_text(journey_file.read_text().replace('to: {pks: "1.3.5"',
                                                             'to: {pks: "1.0.0"'))
    plan = journey("plan", journey_file)
    assert plan.returncode == 4 and "no supported path" in plan.stderr
    run = journey("run", journey_file, "--yes", "--state-dir", tmp_path / "j")
    assert run.returncode == 4 and "no supported path" in run.stderr


def test_the_shipped_example_journey_runs_to_the_end(books: Path, tmp_path: Path) -> None:
    """playbooks/journey/lab-journey.yaml: plan exits 0, and run plus one resume per gate
    (--confirm) ends 0 with the reference lab at NSX-T 2.3.1, every unit once per hop."""
    from tests.journey.support import world

    journey_file = books / "journey" / "lab-journey.yaml"
    assert journey("plan", journey_file).returncode == 0
    state_dir = tmp_path / "j"
    assert journey("run", journey_file, "--yes", "--state-dir", state_dir).returncode == 3
    assert _confirm_all(journey_file, state_dir)[-1] == 0
    assert status(journey_file, state_dir)["state"] == "done"
    for slug in ("03-nsxt-2.2.0.0", "11-nsxt-2.3.1.0"):
        units = world(state_dir / "steps" / slug)["units"]
        assert len(units) == 8 and all(u["upgrade_count"] == 1 for u in units)
