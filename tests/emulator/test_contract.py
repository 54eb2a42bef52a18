"""The emulator against VMware's contract (contracts/nsxt/), for both API versions.

* The contract documents carry their provenance and are what the generator makes of
  VMware's SDK wheels (checked when a wheel is at hand; CI has none and uses the
  committed documents).
* The checker (:mod:`tests.emulator.contract`) is shown to catch a wrong field, a
  wrong path and a wrong status code.
* Every operation of the contract is called once on the emulator (a tour with real
  ids) and every answer is checked; what the emulator does not serve is listed and
  answers 404/405; what the contract does not have is not served.
* schemathesis generates requests from the contract against the running emulator:
  no server error, no status or body outside the contract.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.contract import (
    API,
    DOCUMENTS,
    ROOT,
    contract,
    document,
    records,
    traffic_problems,
)
from tests.nsxt_emulator_support import Emulator, running_emulator

SDK = {"2.3": (Path("/tmp/sdk/nsx23.whl"), "2.3"), "2.5": (Path("/tmp/sdk/nsx251.whl"), "2.5.1")}
#: VMware operations the emulator does not serve, and why (also in the README)
NOT_SERVED: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module", params=["2.3", "2.5"])
def emulator(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Emulator]:
    """One emulator per API version for this module, at speed 1 (nothing completes
    while schemathesis pokes at it)."""
    with running_emulator(tmp_path_factory.mktemp(f"api{request.param}"), speed=1,
                          api=request.param) as emu:
        yield emu


# -- the documents -----------------------------------------------------------------------


@pytest.mark.parametrize("api", ["2.3", "2.5"])
def test_the_contract_names_its_source(api: str) -> None:
    info = document(api)["info"]
    source = info["x-provenance"]
    assert source["repository"] == "vmware/vsphere-automation-sdk-python"
    assert len(source["commit"]) == 40 and int(source["commit"], 16)
    assert source["file"].startswith("lib/nsx-python-sdk/nsx_python_sdk-")
    assert "com/vmware/nsx/model_client.py" in source["read"]
    assert info["version"] == {"2.3": "2.3", "2.5": "2.5.1"}[api]


@pytest.mark.parametrize("api", ["2.3", "2.5"])
def test_the_contract_is_what_the_generator_makes_of_the_wheel(api: str) -> None:
    wheel, version = SDK[api]
    if not wheel.is_file():
        pytest.skip(f"VMware's SDK wheel is not at {wheel} (CI uses the committed contract)")
    commit = document(api)["info"]["x-provenance"]["commit"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "nsxt_contract.py"), "--wheel", str(wheel),
         "--version", version, "--commit", commit, "--out", str(DOCUMENTS[api]), "--check"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_vmware_facts_the_project_relies_on() -> None:
    """The facts of issue 19, as the generated documents state them."""
    v23, v251 = document("2.3"), document("2.5")
    paths23 = v23["paths"]
    assert "/upgrade/upgrade-unit-groups/{group-id}/status" in paths23
    assert not any(p.endswith("/upgrade-unit/status") for p in paths23)
    assert "/upgrade/uc-upgrade-status" not in paths23
    assert "/upgrade/uc-upgrade-status" in v251["paths"]
    assert "/upgrade/pre-upgrade-checks/failures" not in v251["paths"]
    assert sorted(paths23["/upgrade"]["post"]["x-nsx-actions"]) == ["upgrade_uc"]
    assert "get" not in paths23["/upgrade/bundles"]
    assert min(paths23["/upgrade/upgrade-unit-groups"]["post"]["responses"]) == "201"
    schemas = v23["components"]["schemas"]
    assert "resource_type" not in schemas["UpgradeUnit"]["properties"]
    assert "overall_status" not in schemas["ClusterStatus"]["properties"]
    assert schemas["NodeServiceStatusProperties"]["properties"]["runtime_state"]["enum"] == [
        "running", "stopped"]
    assert set(schemas["UpgradeBundleInfo"]["properties"]) == {"bundle_size", "url"}
    assert "PAUSING" not in schemas["UpgradeStatus"]["properties"][
        "overall_upgrade_status"]["enum"]
    assert "PAUSING" in v251["components"]["schemas"]["UpgradeStatus"]["properties"][
        "overall_upgrade_status"]["enum"]


# -- the checker catches what is wrong --------------------------------------------------


GOOD_UNIT = {"id": "u1", "display_name": "esx-01", "type": "HOST", "current_version": "2.1",
             "group": {"id": "g1", "display_name": "cluster-a"}, "warnings": [],
             "metadata": []}


def _rec(method: str, path: str, status: int, response: Any = None, body: Any = None,
         query: str = "") -> dict[str, Any]:
    return {"method": method, "path": API + path, "query": query,
            "content_type": "application/json", "authorization": True,
            "body": json.dumps(body) if body is not None else "", "status": status,
            "response": json.dumps(response) if response is not None else ""}


def test_the_checker_catches_a_wrong_field_path_and_status(tmp_path: Path) -> None:
    check = contract("2.3")
    good = _rec("GET", "/upgrade/upgrade-units/u1", 200, GOOD_UNIT)
    assert check.request_problems(good) == [] and check.response_problems(good) == []
    extra = _rec("GET", "/upgrade/upgrade-units/u1", 200, {**GOOD_UNIT,
                                                           "resource_type": "UpgradeUnit"})
    assert "resource_type" in str(check.response_problems(extra))
    enum = _rec("GET", "/node/services/http/status", 200, {"runtime_state": "starting"})
    assert "starting" in str(check.response_problems(enum))
    created = _rec("POST", "/upgrade/upgrade-unit-groups", 200, {"type": "HOST"},
                   body={"type": "HOST", "display_name": "g"})
    assert "200" in str(check.response_problems(created))
    reorder = _rec("POST", "/upgrade/upgrade-unit-groups/g1", 200, {"id": "g1"},
                   body={"id": "g2"}, query="action=reorder")
    assert "a body where VMware has none" in str(check.response_problems(reorder))
    wrong_body = _rec("POST", "/upgrade/plan", 200, body={"units": ["u1"]},
                      query="action=upgrade_selected_units")
    assert check.request_problems(wrong_body)
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("\n".join(json.dumps(r) for r in (
        good, _rec("GET", "/upgrade/upgrade-unit-groups/g1/upgrade-unit/status", 200,
                   {"results": []}),
        _rec("GET", "/upgrade/uc-upgrade-status", 404, {"error_code": 404}))) + "\n")
    problems = [str(p) for p in traffic_problems(traffic, "2.3")]
    assert len(problems) == 2 and all("upgrade-unit/status" in p for p in problems), problems


# -- the emulator within its contract --------------------------------------------------


def _tour(client: httpx.Client, api: str) -> set[tuple[str, str, str]]:
    """Call every operation of the ``api`` contract once with real ids; what was called."""
    up = f"{API}/upgrade"
    groups = client.get(f"{up}/upgrade-unit-groups").json()["results"]
    host, other = [g for g in groups if g["type"] == "HOST"][:2]
    units = client.get(f"{up}/upgrade-units").json()["results"]
    esx = [u for u in units if u["group"]["id"] == host["id"]]
    calls: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", "/cluster/status", {}, None),
        ("GET", "/node", {}, None),
        ("GET", "/node/services/install-upgrade", {}, None),
        ("POST", "/upgrade/bundles", {}, {"url": "http://repo.example/b-2.3.0.0.mub"}),
        ("GET", "/upgrade/bundles/latest", {}, None),
        ("GET", "/upgrade/bundles/latest/upload-status", {}, None),
        ("POST", "/upgrade/eula/accept", {}, None),
        ("GET", "/upgrade/eula/acceptance", {}, None),
        ("GET", "/upgrade/eula/content", {}, None),
        ("GET", "/upgrade/history", {}, None),
        ("GET", "/upgrade/nodes", {"component_type": "HOST"}, None),
        ("GET", "/upgrade/nodes-summary", {}, None),
        ("GET", "/upgrade/plan/HOST/settings", {}, None),
        ("PUT", "/upgrade/plan/HOST/settings", {}, {"parallel": False}),
        ("GET", "/upgrade/status-summary", {"selection_status": "ALL"}, None),
        ("GET", "/upgrade/summary", {}, None),
        ("GET", "/upgrade/upgrade-unit-groups", {"sync": "true", "sort_by": "display_name"},
         None),
        ("GET", "/upgrade/upgrade-unit-groups-status", {}, None),
        ("GET", "/upgrade/upgrade-unit-groups/aggregate-info", {"component_type": "EDGE"},
         None),
        ("GET", f"/upgrade/upgrade-unit-groups/{host['id']}", {"summary": "true"}, None),
        ("PUT", f"/upgrade/upgrade-unit-groups/{host['id']}", {},
         {"type": "HOST", "display_name": host["display_name"], "parallel": False}),
        ("GET", f"/upgrade/upgrade-unit-groups/{host['id']}/status", {"has_errors": "false"},
         None),
        ("POST", f"/upgrade/upgrade-unit-groups/{host['id']}/upgrade-unit/{esx[1]['id']}",
         {"action": "reorder"}, {"id": esx[0]["id"], "is_before": True}),
        ("POST", "/upgrade/upgrade-unit-groups", {},
         {"type": "HOST", "display_name": "canary", "upgrade_units": [{"id": esx[0]["id"]}]}),
        ("POST", f"/upgrade/upgrade-unit-groups/{host['id']}", {"action": "reorder"},
         {"id": other["id"], "is_before": False}),
        ("POST", f"/upgrade/upgrade-unit-groups/{host['id']}", {"action": "add_upgrade_units"},
         {"list": [{"id": esx[0]["id"]}]}),
        ("GET", "/upgrade/upgrade-units", {"upgrade_unit_type": "HOST",
                                           "current_version": "2.1.0.0",
                                           "included_fields": "id,display_name"}, None),
        ("GET", "/upgrade/upgrade-units-stats", {"sync": "true"}, None),
        ("GET", "/upgrade/upgrade-units/aggregate-info", {"has_errors": "false"}, None),
        ("GET", f"/upgrade/upgrade-units/{esx[0]['id']}", {}, None),
        ("GET", "/upgrade/version-whitelist", {}, None),
        ("GET", "/upgrade/version-whitelist/HOST", {}, None),
        ("PUT", "/upgrade/version-whitelist/HOST", {}, {"acceptable_versions": ["2.1.0.0"]}),
        ("POST", "/upgrade", {"action": "upgrade_uc"}, None),  # 400: no bundle verified yet
        ("POST", "/upgrade/plan", {"action": "start"}, None),  # 400: coordinator not upgraded
        ("POST", "/upgrade/plan", {"action": "pause"}, None),
        ("POST", "/upgrade/plan", {"action": "continue", "skip": "false"}, None),
        ("POST", "/upgrade/plan", {"action": "reset", "component_type": "EDGE"}, None),
        ("POST", "/upgrade/plan", {"action": "upgrade_selected_units"},
         {"list": [{"id": esx[0]["id"]}]}),
    ]
    for service in document(api)["paths"]:
        if service.startswith("/node/services/") and service.endswith("/status"):
            calls.append(("GET", service, {}, None))
    if api == "2.5":
        calls += [
            ("GET", "/upgrade/uc-upgrade-status", {}, None),
            ("GET", "/upgrade/functional-state", {}, None),
            ("GET", "/upgrade/upgrade-checks-info", {}, None),
            ("POST", "/upgrade", {"action": "execute_pre_upgrade_checks"}, None),
            ("POST", "/upgrade", {"action": "abort_pre_upgrade_checks"}, None),
            ("POST", "/upgrade/EDGE", {"action": "execute_post_upgrade_checks"}, None),
            ("POST", "/upgrade/bundles/latest", {"action": "cancel_upload"}, None),
        ]
    #: refused in this state (no bundle verified, coordinator not upgraded), as VMware's
    refused = {("POST", "upgrade_uc"), ("POST", "start"), ("POST", "continue"),
               ("POST", "upgrade_selected_units")}
    for method, path, params, body in calls:
        answer = client.request(method, API + path, params=params, json=body)
        if (method, params.get("action", "")) in refused:
            assert answer.status_code == 400, (method, path, answer.text)
        else:  # every operation VMware defines is there and works
            assert answer.status_code < 300, (method, path, params, answer.text)
    made = client.post(f"{up}/upgrade-unit-groups", json={"type": "EDGE", "display_name": "e"})
    gone = client.delete(f"{up}/upgrade-unit-groups/{made.json()['id']}")
    assert (made.status_code, gone.status_code, gone.content) == (201, 200, b"")
    calls.append(("DELETE", f"/upgrade/upgrade-unit-groups/{made.json()['id']}", {}, None))
    check = contract(api)
    covered = set()
    for method, path, params, _ in calls:
        op = check.operation(method, API + path)
        assert op is not None, (method, path)
        covered.add((method, op["operationId"], params.get("action", "")))
    return covered


def test_every_operation_answers_within_the_contract(emulator: Emulator) -> None:
    """A tour of every operation; each answer (and each request) checked; every
    operation of the contract called, except those listed as not served."""
    with emulator.client() as client:
        covered = _tour(client, emulator.api)
    problems = traffic_problems(emulator.traffic, emulator.api)
    assert problems == [], "\n".join(map(str, problems))
    wanted = set()
    for template, ops in document(emulator.api)["paths"].items():
        for method, op in ops.items():
            for action in op.get("x-nsx-actions") or {"": None}:
                if action == "upload" or (method.upper(), template, action) in NOT_SERVED:
                    continue  # the multipart upload: the adapter tests upload files
                wanted.add((method.upper(), op["operationId"], action))
    assert wanted - covered == set()


@pytest.mark.parametrize("method,path", [
    ("GET", "/upgrade/uc-upgrade-status"),
    ("GET", "/upgrade/pre-upgrade-checks/failures"),
    ("POST", "/upgrade?action=execute_pre_upgrade_checks"),
    ("POST", "/upgrade/HOST?action=execute_post_upgrade_checks"),
    ("GET", "/upgrade/functional-state"),
    ("GET", "/upgrade/bundles"),
    ("GET", "/node/services/anything/status"),
    ("GET", "/node/services/policy/status"),
])
def test_what_the_version_lacks_is_not_served(emulator: Emulator, method: str,
                                              path: str) -> None:
    """2.3 lacks what 2.5.1 added; neither has what came later or never was."""
    with emulator.client() as client:
        answer = client.request(method, API + path)
    in_contract = contract(emulator.api).operation(method, API + path.split("?")[0])
    action = path.partition("action=")[2]
    if in_contract is not None and (not action or action in in_contract.get(
            "x-nsx-actions", {})):
        assert answer.status_code < 500 and answer.status_code not in (404, 405)
    else:
        assert answer.status_code in (400, 404, 405), (path, answer.text)
        assert set(answer.json()) == {"error_code", "error_message", "module_name"}


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_contract(
        emulator: Emulator) -> None:
    """Requests generated from the contract (positive data, a few per operation)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_dict(document(emulator.api))
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == sum(len(v) for v in document(emulator.api)["paths"].values())
    def fuzz(operation: Any) -> None:
        @settings(max_examples=4, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            response = case.call(base_url=emulator.url + API, auth=("admin", "Em-ulat0r!pass"),
                                 timeout=10)
            try:
                case.validate_response(response, checks=checks)
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path}: "
                                f"{str(exc)[:400]}")

        call()

    for operation in operations:
        if operation.method.upper() == "POST" and operation.path == "/upgrade/bundles":
            continue  # generated multipart uploads; the adapter tests upload files
        if any(m == operation.method.upper() and p == operation.path for m, p, _ in NOT_SERVED):
            continue
        fuzz(operation)
    assert failures == [], "\n".join(failures[:10])
    answered = [r for r in records(emulator.traffic) if r["status"] >= 500]
    assert answered == []
