"""The Ops Manager client against the Ops Manager API emulator (a real HTTP(S) server):
UAA token (password and client-credentials grants), /api/v0/info, deployed products,
bad credentials, TLS; and the emulator's own answers, read raw with httpx."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest

from tests.journey.support import OPSMAN_PASSWORD, OPSMAN_USER, opsman_emulator
from upgrade.adapters.opsman.client import (
    Login,
    OpsmanClient,
    parse_opsman_version,
    parse_product_version,
)
from upgrade.core.versions import Version
from upgrade.errors import AdapterError

CLIENT = {"OPSMAN_CLIENT_ID": "automation", "OPSMAN_CLIENT_SECRET": "cl1ent-s3cret"}


def _read(url: str, login: Login, cert: Path | None, **options: object) -> object:
    async def go() -> object:
        async with OpsmanClient(url, login, ca_bundle=cert, **options) as client:  # type: ignore[arg-type]
            return await client.read()
    return asyncio.run(go())


def test_versions_as_ops_manager_writes_them() -> None:
    """2.3-build.123 names the minor only; 2.10.5-build.12 the patch; tiles 1.2.5-build.8."""
    minor = parse_opsman_version("2.3-build.123")
    assert minor.version == Version.parse("2.3") and minor.build == 123
    assert not minor.patch_known and minor.matches(Version.parse("2.3.1"))
    assert not minor.matches(Version.parse("2.4.0"))
    patch = parse_opsman_version("2.10.5-build.12")
    assert patch.patch_known and patch.matches(Version.parse("2.10.5"))
    assert parse_product_version("1.2.5-build.8") == Version.parse("1.2.5")
    with pytest.raises(AdapterError):
        parse_opsman_version("two point three")


@pytest.mark.parametrize("tls", [True, False])
def test_client_reads_both_versions_and_follows_a_tile_upgrade(tmp_path: Path, tls: bool) -> None:
    """The password grant for client opsman; Ops Manager's version and the PKS tile's; a
    tile upgrade (emulate opsman-set) shows in the next reading."""
    with opsman_emulator(tmp_path / "om", opsman="2.3.1", pks="1.2.5", tls=tls) as om:
        assert om.url.startswith("https://" if tls else "http://")
        login = Login(username=OPSMAN_USER, password=OPSMAN_PASSWORD)
        reading = _read(om.url, login, om.cert)
        assert reading.opsman.text == "2.3-build.123"  # type: ignore[attr-defined]
        assert reading.pks == Version.parse("1.2.5")  # type: ignore[attr-defined]
        om.set(pks="1.2.7", opsman="2.4.2")
        after = _read(om.url, login, om.cert)
        assert after.pks == Version.parse("1.2.7")  # type: ignore[attr-defined]
        assert after.opsman.version == Version.parse("2.4")  # type: ignore[attr-defined]


def test_client_credentials_grant(tmp_path: Path) -> None:
    """A UAA client of one's own (OPSMAN_CLIENT_ID/SECRET) gets a token too."""
    with opsman_emulator(tmp_path / "om", env=CLIENT, info_format="patch") as om:
        login = Login(client_id=CLIENT["OPSMAN_CLIENT_ID"],
                      client_secret=CLIENT["OPSMAN_CLIENT_SECRET"])
        reading = _read(om.url, login, om.cert)
        assert reading.opsman.text == "2.1.3-build.123"  # type: ignore[attr-defined]
        assert reading.opsman.patch_known  # type: ignore[attr-defined]


def test_bad_credentials_and_certificates_are_named_never_the_secret(tmp_path: Path) -> None:
    """A wrong password: the UAA answers 401 and the error names the variables, not the
    password; an unknown certificate: the error names ca_bundle."""
    with opsman_emulator(tmp_path / "om") as om:
        wrong = Login(username=OPSMAN_USER, password="wrong-pass-77")
        with pytest.raises(AdapterError) as refused:
            _read(om.url, wrong, om.cert)
        assert "401" in str(refused.value) and "OPSMAN_PASSWORD" in str(refused.value)
        assert "wrong-pass-77" not in str(refused.value)
        with pytest.raises(AdapterError, match="ca_bundle"):
            _read(om.url, Login(username=OPSMAN_USER, password=OPSMAN_PASSWORD), None)


def test_emulator_answers_as_ops_manager_documents(tmp_path: Path) -> None:
    """Raw HTTP: the token answer's fields; 401 without a token or with a forged one; 400
    for an unknown grant; the deployed products' documented fields."""
    with opsman_emulator(tmp_path / "om", opsman="2.3.1", pks="1.2.5") as om:
        assert om.cert is not None
        verify = ssl.create_default_context(cafile=str(om.cert))
        with httpx.Client(base_url=om.url, verify=verify) as http:
            token = http.post("/uaa/oauth/token", data={
                "grant_type": "password", "client_id": "opsman", "client_secret": "",
                "username": OPSMAN_USER, "password": OPSMAN_PASSWORD})
            assert token.status_code == 200
            body = token.json()
            assert body["token_type"] == "bearer" and body["expires_in"] > 0
            basic = http.post("/uaa/oauth/token", auth=("opsman", ""), data={
                "grant_type": "password", "username": OPSMAN_USER,
                "password": OPSMAN_PASSWORD})
            assert basic.status_code == 200  # the client in basic auth, as UAA allows
            bad = http.post("/uaa/oauth/token", data={
                "grant_type": "password", "client_id": "opsman", "client_secret": "",
                "username": OPSMAN_USER, "password": "nope"})
            assert bad.status_code == 401 and bad.json()["error"] == "unauthorized"
            grant = http.post("/uaa/oauth/token", data={"grant_type": "implicit"})
            assert grant.status_code == 400
            assert http.get("/api/v0/info").status_code == 401
            forged = http.get("/api/v0/info", headers={"Authorization": "Bearer forged"})
            assert forged.status_code == 401 and "errors" in forged.json()
            auth = {"Authorization": f"Bearer {body['access_token']}"}
            assert http.get("/api/v0/info", headers=auth).json() == {
                "info": {"version": "2.3-build.123"}}
            products = http.get("/api/v0/deployed/products", headers=auth).json()
            pks = next(p for p in products if p["type"] == "pivotal-container-service")
            assert pks["product_version"] == "1.2.5-build.8"
            assert {"installation_name", "guid", "type", "product_version"} <= set(pks)


def _playbook(books: Path, compat: str) -> Path:
    from tests.run_support import LAB

    path = books / "lab-2.1-to-2.3.yaml"
    text = LAB.read_text()
    old = 'compatibility: {pks: "1.2.0", opsman: "2.3.1"}'
    assert old in text
    path.write_text(text.replace(old, f"compatibility: {compat}"))
    return path


def test_plan_and_run_take_versions_from_opsman_url(tmp_path: Path, books: Path) -> None:
    """`compatibility: {opsman_url: ...}`: plan and run gate the PKS tile's version as Ops
    Manager reports it (the typed opsman names the patch of a minor-only reading)."""
    from tests.journey.support import OPSMAN_ENV
    from tests.run_support import nsxt

    with opsman_emulator(tmp_path / "om", opsman="2.3.1", pks="1.2.0") as om:
        playbook = _playbook(books, f'{{opsman_url: "{om.url}", opsman_ca_bundle: "{om.cert}", '
                                    'opsman: "2.3.1"}')
        proc = nsxt("plan", playbook, "--format", "json", env=OPSMAN_ENV)
        assert proc.returncode == 0, proc.stderr
        import json

        compat = json.loads(proc.stdout)["compatibility"]
        assert (compat["pks"], compat["opsman"]) == ("1.2.0", "2.3.1")
        run = nsxt("run", playbook, "--yes", "--state-dir", tmp_path / "run", env=OPSMAN_ENV)
        assert run.returncode == 0, run.stdout + run.stderr
        om.set(pks="1.1.4")  # a tile the matrix does not support on NSX-T 2.3
        refused = nsxt("plan", playbook, env=OPSMAN_ENV)
        assert refused.returncode == 4, refused.stdout + refused.stderr
        minor_only = _playbook(books, f'{{opsman_url: "{om.url}", '
                                      f'opsman_ca_bundle: "{om.cert}"}}')
        proc = nsxt("plan", minor_only, env=OPSMAN_ENV)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"{minor_only}:") and "reports only its minor" in proc.stderr


def test_emulate_opsman_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    """No credentials in the environment, a state dir without a state and no --opsman, or
    opsman-set on nothing: exit 2, one line, no traceback."""
    import subprocess

    from tests.journey.support import env_without_opsman
    from tests.run_support import command

    def run(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command(*args), env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    bare = env_without_opsman()
    proc = run("emulate", "opsman", "--state-dir", tmp_path / "om", "--opsman", "2.3.1",
               env=bare)
    assert proc.returncode == 2 and "OPSMAN_USERNAME" in proc.stderr
    with_creds = {**bare, "OPSMAN_USERNAME": "admin", "OPSMAN_PASSWORD": "pw"}
    proc = run("emulate", "opsman", "--state-dir", tmp_path / "om", env=with_creds)
    assert proc.returncode == 2 and "give --opsman" in proc.stderr
    proc = run("emulate", "opsman-set", "--state-dir", tmp_path / "om", "--pks", "1.2.5",
               env=bare)
    assert proc.returncode == 2 and "holds no Ops Manager emulator state" in proc.stderr
    assert "Traceback" not in proc.stderr
