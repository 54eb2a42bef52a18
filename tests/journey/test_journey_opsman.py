"""A journey whose gates are confirmed by Ops Manager: the Ops Manager API emulator as a
real HTTPS server, its versions moved between resumes as an operator's upgrades would."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.journey.support import (
    OPSMAN_ENV,
    PATH,
    assert_hops_exactly_once,
    journey,
    make_lab,
    opsman_emulator,
    status,
)


def _lab(tmp_path: Path, url: str, cert: Path | None) -> Path:
    ca = f", ca_bundle: {cert}" if cert is not None else ""
    return make_lab(tmp_path / "lab", opsman=f'{{url: "{url}", version: "2.1.3"{ca}}}')


@pytest.mark.slow
def test_journey_confirmed_by_the_opsman_emulator(tmp_path: Path) -> None:
    """Each gate waits (exit 3) until the emulated Ops Manager reports the new version
    (moved by `emulate opsman-set`); then `journey resume` goes on by itself, runs the
    NSX-T hops and ends 0 with every unit of each hop upgraded once."""
    with opsman_emulator(tmp_path / "opsman", opsman="2.1.3", pks="1.1.4") as om:
        journey_file = _lab(tmp_path, om.url, om.cert)
        state_dir = tmp_path / "j"
        plan = journey("plan", journey_file, env=OPSMAN_ENV)
        assert plan.returncode == 0, plan.stderr
        first = journey("run", journey_file, "--yes", "--state-dir", state_dir, env=OPSMAN_ENV)
        assert first.returncode == 3, first.stdout + first.stderr
        assert f"reads the versions from Ops Manager at {om.url}" in first.stdout
        again = journey("resume", journey_file, "--state-dir", state_dir, env=OPSMAN_ENV)
        assert again.returncode == 3  # nothing moved: still waiting, nothing recorded as done
        assert status(journey_file, state_dir)["waiting_for"] == {"pks": "1.1.5"}
        for kind, _old, new in PATH:
            if kind == "nsxt":
                continue
            om.set(**{kind: new})
            proc = journey("resume", journey_file, "--state-dir", state_dir, env=OPSMAN_ENV)
            assert proc.returncode in (0, 3), proc.stdout + proc.stderr
            assert f"confirmed (Ops Manager at {om.url})" in proc.stdout
        assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = status(journey_file, state_dir)
    assert doc["state"] == "done"
    assert doc["at"] == {"pks": "1.3.5", "nsxt": "2.3.1.0", "opsman": "2.3.1"}
    assert_hops_exactly_once(state_dir)


def test_opsman_reporting_an_unsupported_state_is_refused(tmp_path: Path) -> None:
    """An Ops Manager that reports a PKS tile the path did not lead to, in a combination
    the matrix does not support, is refused (exit 4) and the journey stays where it was."""
    with opsman_emulator(tmp_path / "opsman", opsman="2.1.3", pks="1.1.4") as om:
        journey_file = _lab(tmp_path, om.url, om.cert)
        state_dir = tmp_path / "j"
        assert journey("run", journey_file, "--yes", "--state-dir", state_dir,
                       env=OPSMAN_ENV).returncode == 3
        om.set(pks="1.2.0")
        proc = journey("resume", journey_file, "--state-dir", state_dir, env=OPSMAN_ENV)
        assert proc.returncode == 4, proc.stdout + proc.stderr
        assert "PKS 1.2.0" in proc.stderr and "not supported" in proc.stderr
        contradicted = journey("resume", journey_file, "--state-dir", state_dir,
                               "--confirm", "pks=1.1.5", env=OPSMAN_ENV)
        assert contradicted.returncode == 4
        assert "--confirm pks=1.1.5, but Ops Manager" in contradicted.stderr
    assert status(journey_file, state_dir)["at"]["pks"] == "1.1.4"


def test_bad_opsman_credentials_stop_the_journey_naming_the_variables(tmp_path: Path) -> None:
    """Wrong OPSMAN_PASSWORD: exit 1 naming the variables, never the password."""
    with opsman_emulator(tmp_path / "opsman") as om:
        journey_file = _lab(tmp_path, om.url, om.cert)
        wrong = {**OPSMAN_ENV, "OPSMAN_PASSWORD": "not-the-password-42"}
        proc = journey("plan", journey_file, env=wrong)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "OPSMAN_USERNAME/OPSMAN_PASSWORD" in proc.stderr
        assert "not-the-password-42" not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
