"""A third-party NSX-T client's documented upgrade flow, against the real emulator.

The client is VMware's Ansible collection ``vmware/ansible-for-nsxt``; its
``tests/playbooks/topologies/upgrade/`` runs, in order, ``nsxt_upgrade_upload_mub``,
``nsxt_upgrade_plan``, ``nsxt_upgrade_eula_accept``, ``nsxt_upgrade_uc``,
``nsxt_upgrade_prechecks`` and ``nsxt_upgrade_run`` (then the post-checks and
the facts modules).  The test repeats each module's requests (URLs, methods,
bodies, headers, the fields it reads and how it judges them) with httpx; the
Ansible code itself is not used.

Found as: the flow failed at its first step.  Every module asks
``GET /node/services/install-upgrade`` for ``service_properties.enabled_on`` and
continues at ``https://{enabled_on}/api/v1``, so an answer without the port
sent it to port 443; and ``nsxt_upgrade_upload_mub`` polls
``/upgrade/bundles/latest/upload-status``, which answered "bundle latest not
found".
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.emulator.test_emulator import snapshot
from tests.nsxt_emulator_support import PASSWORD, USERNAME, Emulator, running_emulator

#: the modules sleep 5-20 s between polls; the emulator runs at --speed 600
PAUSE_S = 0.05
MUB_URL = "http://repo.example/VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub"
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


class ModuleFailed(Exception):
    """What ``module.fail_json`` would report."""


class AnsibleRequests:
    """``request()`` of ``plugins/module_utils/vmware_nsxt.py``, as the modules call it.

    Basic auth on every request; a GET follows ``cursor`` through every page; any
    body with a top-level ``error_code`` is raised as an error, even with a 200;
    ``ignore_errors`` returns other 4xx/5xx answers instead of raising.  A refused
    connection raises (urllib's ``URLError``).
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.http = httpx.Client(verify=context, auth=(USERNAME, PASSWORD), timeout=10)
        self.calls: list[tuple[str, str]] = []

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __call__(self, url: str, data: str | None = None, headers: dict[str, str] | None = None,
                 method: str = "GET", ignore_errors: bool = False) -> tuple[int, Any]:
        rc, resp = self._one(url, data, headers, method, ignore_errors)
        if method != "GET":
            return rc, resp
        if rc != 200:
            return rc, None
        cursor = resp.get("cursor")
        page_url = url + ("&" if urlsplit(url).query else "?") + "cursor="
        while cursor and not cursor.startswith("0000"):
            rc, page = self._one(page_url + cursor, data, headers, method, ignore_errors)
            if rc != 200:
                return rc, None
            resp["results"].extend(page.get("results", []))
            cursor = page.get("cursor")
        return rc, resp

    def _one(self, url: str, data: str | None, headers: dict[str, str] | None, method: str,
             ignore_errors: bool) -> tuple[int, Any]:
        self.calls.append((method, url))
        answer = self.http.request(method, url, content=data, headers=headers)
        resp = json.loads(answer.text) if answer.text else None
        if answer.status_code >= 400 and not ignore_errors:
            raise ModuleFailed(answer.status_code, resp)
        if resp is not None and "error_code" in resp:
            raise ModuleFailed(resp["error_code"], resp)
        return answer.status_code, resp


def wait_for_operation_to_execute(request: AnsibleRequests, url: str, attributes: list[str],
                                  desired: list[str], undesired: list[str]) -> None:
    """``common_utils.wait_for_operation_to_execute``: poll until an attribute is desired."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, resp = request(url, headers={"Accept": "application/json"}, ignore_errors=True)
        value = resp
        for attribute in attributes:
            value = value[attribute]
        if value in desired:
            return
        if value in undesired:
            raise ModuleFailed(resp)
        time.sleep(PAUSE_S)
    raise ModuleFailed("Operation timed out.")


class Modules:
    """The ``nsxt_upgrade_*`` modules' requests, each starting from ``hostname``."""

    def __init__(self, request: AnsibleRequests, hostname: str) -> None:
        self.request = request
        self.hostname = hostname

    def orchestrator(self) -> str:
        """``get_upgrade_orchestrator_node``: the node the modules continue on."""
        _, resp = self.request(
            f"https://{self.hostname}/api/v1/node/services/install-upgrade",
            headers=JSON_HEADERS, ignore_errors=True)
        node: str = resp["service_properties"]["enabled_on"]
        return f"https://{node}/api/v1"

    def upload_mub(self, url: str) -> None:
        """``nsxt_upgrade_upload_mub`` with ``url``: POST it, poll bundle ``latest``."""
        api = self.orchestrator()
        rc, _ = self.request(f"{api}/upgrade/bundles", data=json.dumps({"url": url}),
                             headers=JSON_HEADERS, method="POST", ignore_errors=True)
        if rc != 200:
            raise ModuleFailed(rc)
        wait_for_operation_to_execute(self.request, f"{api}/upgrade/bundles/latest/upload-status",
                                      ["status"], ["SUCCESS"], ["FAILED"])

    def plan(self, component: str, **settings: bool) -> None:
        """``nsxt_upgrade_plan`` state present: PUT the component's settings."""
        self.request(f"{self.orchestrator()}/upgrade/plan/{component.upper()}/settings",
                     data=json.dumps(settings), headers=JSON_HEADERS, method="PUT",
                     ignore_errors=True)

    def eula_accept(self) -> None:
        """``nsxt_upgrade_eula_accept``."""
        self.request(f"{self.orchestrator()}/upgrade/eula/accept", data="",
                     headers=JSON_HEADERS, method="POST", ignore_errors=True)

    def eula_acceptance(self) -> Any:
        """``nsxt_upgrade_eula_accept_facts`` required_info acceptance (on ``hostname``)."""
        return self.request(f"https://{self.hostname}/api/v1/upgrade/eula/acceptance",
                            headers={"Accept": "application/json"}, ignore_errors=True)[1]

    def upgrade_uc(self) -> None:
        """``nsxt_upgrade_uc``: upgrade_uc, then poll uc-upgrade-status ``state``."""
        api = self.orchestrator()
        self.request(f"{api}/upgrade?action=upgrade_uc", data="", headers=JSON_HEADERS,
                     method="POST", ignore_errors=True)
        wait_for_operation_to_execute(self.request, f"{api}/upgrade/uc-upgrade-status",
                                      ["state"], ["SUCCESS"], ["FAILED"])

    def prechecks(self) -> list[Any]:
        """``nsxt_upgrade_prechecks`` present: run them, wait for every component's
        ``pre_upgrade_status`` COMPLETED, fail on a FAILURE; the failures."""
        api = self.orchestrator()
        self.request(f"{api}/upgrade?action=execute_pre_upgrade_checks", data="",
                     headers=JSON_HEADERS, method="POST", ignore_errors=True)
        while True:
            _, resp = self.request(f"{api}/upgrade/status-summary",
                                   headers={"Accept": "application/json"}, ignore_errors=True)
            statuses = [c["pre_upgrade_status"]["status"] for c in resp["component_status"]]
            assert "ABORTED" not in statuses
            if all(s == "COMPLETED" for s in statuses):
                break
            time.sleep(PAUSE_S)
        # a GET without ignore_errors: on a 2.5.1 manager (no such list before 3.1) the
        # module fails here, after the checks ran ("... error occured while retrieving
        # the results")
        _, resp = self.request(f"{api}/upgrade/pre-upgrade-checks/failures")
        if any(r.get("type") == "FAILURE" for r in resp["results"]):
            raise ModuleFailed(resp)
        results: list[Any] = resp["results"]
        return results

    def run_paused(self) -> str:
        """``nsxt_upgrade_run`` with paused_upgrade true: start or continue, wait until
        the component is done; its exit message."""
        api = self.orchestrator()
        target = self._attribute(f"{api}/upgrade/summary", "target_version")
        assert int(target[0]) < 9  # 9.x would take the reverse-order path
        checks = 0
        while True:
            self.request(f"{api}/upgrade/upgrade-unit-groups?sync=true", method="GET",
                         ignore_errors=True)
            status = self._attribute(f"{api}/upgrade/status-summary", "overall_upgrade_status")
            checks += 1
            if status in ("IN_PROGRESS", "PAUSING"):
                if checks > 2:
                    raise ModuleFailed(f"Upgrade is in state: {status}, can't continue")
            elif status == "SUCCESS":
                return "Upgrade state is SUCCESS. No need to continue."
            else:
                break
            time.sleep(PAUSE_S)
        action = "start" if status == "NOT_STARTED" else "continue"
        self.request(f"{api}/upgrade/plan?action={action}", data="", headers=JSON_HEADERS,
                     method="POST", ignore_errors=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(PAUSE_S)
            can_continue, is_failed = self._continuity(api)
            if not can_continue and is_failed:
                raise ModuleFailed("Upgrade failed.")
            if not can_continue:
                upgrade_status = self._attribute(f"{api}/upgrade/summary", "upgrade_status")
                if upgrade_status == "SUCCESS":
                    return "System has been upgraded successfully!!!"
                if upgrade_status not in (None, "IN_PROGRESS", "PAUSING", "PAUSED"):
                    raise ModuleFailed(f"upgrade status is {upgrade_status}")
            elif not is_failed:
                return "A component has been upgraded successfully."
        raise ModuleFailed("the run did not end")

    def postchecks(self, component: str) -> Any:
        """``nsxt_upgrade_postchecks``: run them, wait on aggregate-info's post_upgrade_status."""
        api = self.orchestrator()
        self.request(f"{api}/upgrade/{component.upper()}?action=execute_post_upgrade_checks",
                     data="", headers=JSON_HEADERS, method="POST", ignore_errors=True)
        info = f"{api}/upgrade/upgrade-unit-groups/aggregate-info"
        while True:
            _, resp = self.request(info, headers={"Accept": "application/json"},
                                   ignore_errors=True)
            if all(r["post_upgrade_status"]["status"] == "COMPLETED"
                   for r in resp["results"] if r["type"] == component.upper()
                   and r["upgrade_unit_count"] > 0 and r["status"] != "NOT_STARTED"):
                break
            time.sleep(PAUSE_S)
        return self.request(info)[1]

    def facts(self, path: str) -> Any:
        """A ``*_facts`` module: one GET on ``hostname``."""
        return self.request(f"https://{self.hostname}/api/v1{path}",
                            headers={"Accept": "application/json"}, ignore_errors=True)[1]

    def _attribute(self, url: str, name: str) -> Any:
        """``get_attribute_from_endpoint`` with fail_on_error false: None on any error."""
        try:
            _, resp = self.request(url, headers={"Accept": "application/json"},
                                   ignore_errors=True)
        except (ModuleFailed, httpx.TransportError):
            return None
        return resp.get(name) if resp is not None else None

    def _continuity(self, api: str) -> tuple[bool, bool]:
        """``check_continuity``: (can_continue, is_failed) from the component statuses."""
        statuses = self._attribute(f"{api}/upgrade/status-summary", "component_status")
        if statuses is None:
            return True, True
        kinds = [c["status"] for c in statuses]
        if "IN_PROGRESS" in kinds or "PAUSING" in kinds:
            return False, False
        found_not_started = False
        for kind in reversed(kinds):
            if kind == "NOT_STARTED":
                found_not_started = True
            elif kind == "PAUSED":
                return True, False
            elif kind == "SUCCESS":
                return found_not_started, False
            elif kind == "FAILED":
                return False, True
            else:
                return True, True
        return True, True


@pytest.fixture
def tls_emulator(tmp_path: Path) -> Iterator[Emulator]:
    """The modules are written for NSX-T 2.5+: the emulator speaks 2.5 (2.5.1's API)."""
    with running_emulator(tmp_path, tls=True, api="2.5") as emu:
        yield emu


@pytest.mark.slow
def test_ansible_for_nsxt_upgrade_flow(tls_emulator: Emulator) -> None:
    """vmware/ansible-for-nsxt's upgrade modules, in its topology's order, upgrade the lab.

    Requests as in plugins/modules/nsxt_upgrade_upload_mub.py, nsxt_upgrade_plan.py,
    nsxt_upgrade_eula_accept.py, nsxt_upgrade_uc.py, nsxt_upgrade_prechecks.py,
    nsxt_upgrade_run.py, nsxt_upgrade_postchecks.py, nsxt_upgrade_history.py,
    nsxt_upgrade_status_summary_facts.py and plugins/module_utils/{vmware_nsxt,
    common_utils}.py (github.com/vmware/ansible-for-nsxt).
    """
    assert tls_emulator.cert is not None
    request = AnsibleRequests(ssl.create_default_context(cafile=str(tls_emulator.cert)))
    try:
        _flow(tls_emulator, request)
    finally:
        request.close()
    counts = {u["id"]: u["upgrade_count"] for u in snapshot(tls_emulator.state_dir)["units"]}
    assert set(counts.values()) == {1}


def _flow(tls_emulator: Emulator, request: AnsibleRequests) -> None:
    hostname = tls_emulator.url.split("://")[1]  # the playbook's nsx_manager: "host:port"
    modules = Modules(request, hostname)
    assert modules.orchestrator() == f"https://{hostname}/api/v1"

    modules.upload_mub(MUB_URL)
    modules.plan("host", parallel=False, pause_after_each_group=False, pause_on_error=True)
    modules.plan("edge", parallel=False, pause_after_each_group=False, pause_on_error=True)
    modules.eula_accept()
    assert modules.eula_acceptance() == {"acceptance": True}
    modules.upgrade_uc()
    # nsxt_upgrade_prechecks runs the checks and waits for pre_upgrade_status COMPLETED,
    # then reads /upgrade/pre-upgrade-checks/failures, which VMware added in 3.1: against
    # a 2.5.1 manager the module fails at that last step (VMware's 2.5.1 SDK has no such
    # path); the checks' results are in aggregate-info, where 2.5.1 puts them
    with pytest.raises(ModuleFailed) as failed:
        modules.prechecks()
    assert failed.value.args[0] == 404
    info = modules.facts("/upgrade/upgrade-units/aggregate-info")["results"]
    warned = [(u["display_name"], c["status"]) for u in info
              for c in u["pre_upgrade_checks"]["checks_with_warnings"]["checks"]]
    assert warned == [("edge-01", "WARNING")]

    messages = [modules.run_paused() for _ in range(4)]
    assert messages == ["A component has been upgraded successfully."] * 3 + [
        "System has been upgraded successfully!!!"]
    assert modules.run_paused() == "Upgrade state is SUCCESS. No need to continue."

    info = modules.postchecks("host")
    assert {r["post_upgrade_status"]["status"] for r in info["results"]} == {"COMPLETED"}
    summary = modules.facts("/upgrade/status-summary")
    assert [c["component_type"] for c in summary["component_status"]] == [
        "HOST", "EDGE", "CCP", "MP"]
    assert summary["overall_upgrade_status"] == "SUCCESS"
    history = modules.facts("/upgrade/history")["results"]
    assert [h["upgrade_status"] for h in history] == ["STARTED", "SUCCESS"]
    assert all(h["target_version"] == "2.3.0.0" for h in history)
    assert ("GET", f"https://{hostname}/api/v1/upgrade/bundles/latest/upload-status") in \
        request.calls
