"""The NSX-T upgrade-API contract (contracts/nsxt/, generated from VMware's SDK) as a checker.

:class:`Contract` validates one recorded exchange (``emulate nsxt --record``: method,
path, query, body, status, answer) with openapi-core: the request against the
operation's parameters and body, the answer's status and body against its
responses.  Operations that share a path and differ by ``?action=`` (VMware's
``/upgrade/plan?action=start`` ...) are one OpenAPI operation; what each action
takes, answers and with which status is in the operation's ``x-nsx-actions`` and
is checked here on top.

:func:`traffic_problems` checks a whole recording: what the client sent (every
request must be one the contract has; the adapter's one probe of a 2.5.1 endpoint
on a 2.3 manager is expected and answered 404) and what the emulator answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jsonschema import Draft4Validator
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts" / "nsxt"
#: the contract document of each ``emulate nsxt --api-version``
DOCUMENTS = {"2.3": CONTRACTS / "nsxt-upgrade-api-2.3.json",
             "2.5": CONTRACTS / "nsxt-upgrade-api-2.5.1.json"}
API = "/api/v1"
#: the adapter asks for this (2.5.1) once to learn which API the manager speaks
PROBE = ("GET", API + "/upgrade/uc-upgrade-status")


@cache
def document(api: str) -> dict[str, Any]:
    """The contract document for ``api`` (2.3 or 2.5)."""
    doc: dict[str, Any] = json.loads(DOCUMENTS[api].read_text())
    return doc


@cache
def contract(api: str) -> Contract:
    """The checker for ``api`` (2.3 or 2.5)."""
    return Contract(document(api))


@dataclass(frozen=True)
class Problem:
    """What is wrong with one exchange, and whose fault it is."""

    side: str  # "request" (the client's) or "response" (the emulator's)
    exchange: str
    what: str

    def __str__(self) -> str:
        return f"{self.side}: {self.exchange}: {self.what}"


class Contract:
    """One contract document, able to check recorded exchanges."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.openapi = OpenAPI.from_dict(doc)
        self._schemas = doc["components"]["schemas"]

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        """The contract's operation for ``method`` on the concrete ``path`` (under /api/v1)."""
        parts = path.removeprefix(API).strip("/").split("/")
        for template, ops in self.doc["paths"].items():
            tparts = template.strip("/").split("/")
            if len(tparts) == len(parts) and all(
                    t == p or (t.startswith("{") and t.endswith("}"))
                    for t, p in zip(tparts, parts, strict=True)):
                found: dict[str, Any] | None = ops.get(method.lower())
                if found is not None:
                    return found
        return None

    def _request(self, rec: dict[str, Any]) -> MockRequest:
        query = dict(parse_qsl(rec.get("query") or "", keep_blank_values=True))
        body = rec.get("body")
        content_type = (rec.get("content_type") or "application/json").split(";")[0].strip()
        multipart = content_type.startswith("multipart/")
        headers = {"Authorization": "Basic recorded"} if rec.get("authorization", True) else {}
        data = None if multipart or not body else body.encode()
        return MockRequest("http://127.0.0.1", rec["method"].lower(), rec["path"], args=query,
                           headers=headers, data=data,
                           content_type="application/json" if multipart or not data
                           else content_type)

    def _action(self, rec: dict[str, Any]) -> dict[str, Any] | None:
        op = self.operation(rec["method"], rec["path"]) or {}
        actions = op.get("x-nsx-actions")
        if not actions:
            return None
        action = dict(parse_qsl(rec.get("query") or "")).get("action", "")
        found: dict[str, Any] | None = actions.get(action)
        return found

    def request_problems(self, rec: dict[str, Any]) -> list[Problem]:
        """What is wrong with the request of ``rec`` (method, path, query, body)."""
        where = f"{rec['method']} {rec['path']}" + (f"?{rec['query']}" if rec.get("query") else "")
        try:
            self.openapi.validate_request(self._request(rec))
        except Exception as exc:  # openapi-core's errors: each says what is wrong
            return [Problem("request", where, _why(exc))]
        action = self._action(rec)
        if action is not None and isinstance(action.get("request"), dict) and rec.get("body"):
            errors = self._schema_errors(action["request"], json.loads(rec["body"]))
            if errors:
                return [Problem("request", where, f"body: {errors}")]
        return []

    def response_problems(self, rec: dict[str, Any]) -> list[Problem]:
        """What is wrong with the answer of ``rec`` (status, body)."""
        where = f"{rec['method']} {rec['path']}" + (f"?{rec['query']}" if rec.get("query") else "")
        status = int(rec["status"])
        body = rec.get("response")
        action = self._action(rec)
        if action is not None and status < 300:
            if status != action["status"]:
                return [Problem("response", where, f"status {status}, the contract says "
                                f"{action['status']}")]
            expected = action.get("response")
            if expected is None:
                return [] if not body else [Problem("response", where,
                                                    f"a body where VMware has none: {body[:80]}")]
            if not body:
                return [Problem("response", where, "no body")]
            errors = self._schema_errors(expected, json.loads(body))
            return [Problem("response", where, errors)] if errors else []
        if self.operation(rec["method"], rec["path"]) is None:
            return []  # a path the contract does not have: its 404/405 is checked elsewhere
        request = self._request({**rec, "body": None} if status >= 400 else rec)
        response = MockResponse(body.encode() if body else b"", status_code=status,
                                content_type="application/json")
        try:
            self.openapi.validate_response(request, response)
        except Exception as exc:
            return [Problem("response", where, _why(exc))]
        return []

    def _schema_errors(self, schema: dict[str, Any], value: Any) -> str:
        full = {**schema, "components": {"schemas": self._schemas}}
        validator = Draft4Validator(full)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        return "; ".join(f"{'/'.join(map(str, e.path)) or '(body)'}: {e.message}"
                         for e in errors[:3])


def _why(exc: BaseException) -> str:
    """openapi-core's error as one line: the schema errors (which field, why) first."""
    cur: BaseException | None = exc
    while cur is not None:
        errors = getattr(cur, "schema_errors", None)
        if errors:
            return f"{type(exc).__name__}: " + "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:200]}"
                for e in list(errors)[:3])
        cur = cur.__cause__ or cur.__context__
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def records(path: Path) -> list[dict[str, Any]]:
    """The exchanges an emulator recorded (``--record``)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def traffic_problems(path: Path, api: str) -> list[Problem]:
    """Every problem of the recorded traffic against the ``api`` contract: requests
    the client should not have sent, answers the emulator should not have given."""
    checker = contract(api)
    problems: list[Problem] = []
    for rec in records(path):
        known = checker.operation(rec["method"], rec["path"]) is not None
        if not known:
            if (rec["method"], rec["path"]) == PROBE and int(rec["status"]) == 404:
                continue  # the adapter's probe: a 2.3 manager has no uc-upgrade-status
            problems.append(Problem("request", f"{rec['method']} {rec['path']}",
                                    f"not in VMware's {api} API (answered {rec['status']})"))
            if int(rec["status"]) < 400:
                problems.append(Problem("response", f"{rec['method']} {rec['path']}",
                                        f"answered {rec['status']} for a path VMware's {api} "
                                        "API does not have"))
            continue
        if int(rec["status"]) not in (401, 403, 503):  # auth and outage answers: no request
            problems += checker.request_problems(rec)
        problems += checker.response_problems(rec)
    return problems
