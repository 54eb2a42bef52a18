"""The starlette application of the NSX-T Manager upgrade-API emulator.

Every ``/api/`` request passes the :class:`Guard` first: it brings the site to
now, answers 503 while the manager is stopping for its own upgrade, checks
basic authentication (401 without credentials, 403 with wrong ones) and saves
the site (and its clock) before any response leaves, so an answered change, and
the time a client saw, are durable.  It also turns anything unexpected into a
500 and one log line, never a traceback.  Then :class:`~.limits.BodyLimit`
bounds the request body (413).  Errors are NSX error bodies: ``{"httpStatus",
"error_code", "error_message", "module_name"}``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upgrade.emulator import handlers as h
from upgrade.emulator.coordinator import sync
from upgrade.emulator.limits import BodyLimit
from upgrade.emulator.site import ApiError, Site

log = structlog.get_logger(__name__)
_STOPPING = "Some appliance components are not functioning properly."


def error_body(status: int, code: int, message: str, module: str = "upgrade") -> dict[str, Any]:
    """An NSX API error body: VMware's ApiError (``error_code``, ``error_message``,
    ``module_name``; the SDK defines no ``httpStatus``)."""
    return {"error_code": code, "error_message": message, "module_name": module}


def _error(status: int, code: int, message: str, module: str = "upgrade",
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, module), status_code=status,
                        headers=headers)


class Guard:
    """ASGI middleware: sync the site, the manager's 503 window, basic auth, save-on-answer."""

    def __init__(self, app: ASGIApp, site: Site, username: str, password: str) -> None:
        self.app = app
        self.site = site
        self.username = username.encode()
        self.password = password.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        self.site.answered += 1
        now = sync(self.site)
        if self.site.manager_phase(now) in ("stopping", "down"):
            await _error(503, 101, _STOPPING, "common-services")(scope, receive, send)
            return
        denied = self._denied(scope)
        if denied is not None:
            await denied(scope, receive, send)
            return

        started = False

        async def send_saved(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                # only a request other than a GET changes the coordinator's configuration
                self.site.save(clock=True, changed=scope["method"] != "GET")
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_saved)
        except Exception as exc:  # one log line and a 500; the emulator goes on
            log.error("emulator.internal_error", method=scope["method"], path=scope["path"],
                      error=f"{type(exc).__name__}: {exc}")
            if not started:
                await _error(500, 99, f"internal error of the emulator: {type(exc).__name__}")(
                    scope, receive, send)

    def _denied(self, scope: Scope) -> Response | None:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic" or not encoded:
            return _error(401, 98, "The credentials were missing: use HTTP basic authentication",
                          "common-services", {"WWW-Authenticate": 'Basic realm="NSX Manager"'})
        try:
            user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            user, password = b"", b""
        good = hmac.compare_digest(user, self.username) & hmac.compare_digest(password,
                                                                                self.password)
        if not good:
            return _error(403, 403, "The credentials were incorrect or the account specified "
                          "has been locked.", "common-services")
        return None


# -- the application ----------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.code, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    what = "not found" if exc.status_code == 404 else str(exc.detail)
    return _error(exc.status_code, exc.status_code,
                  f"{request.method} {request.url.path}: {what}", "common-services")


def _routes(api: str) -> list[Route]:
    """The endpoints of NSX-T ``api`` (2.3, or 2.5 = 2.3 and what 2.5.1 added); anything
    else answers 404, as the real manager of that version does."""
    up = "/api/v1/upgrade"
    get, post, put = ["GET"], ["POST"], ["PUT"]
    routes = [
        Route(f"{up}/summary", h.summary, methods=get),
        Route(f"{up}/status-summary", h.status_summary, methods=get),
        Route(f"{up}/eula/accept", h.eula_accept, methods=post),
        Route(f"{up}/eula/acceptance", h.eula_acceptance, methods=get),
        Route(f"{up}/eula/content", h.eula_content, methods=get),
        Route(f"{up}/history", h.history, methods=get),
        Route(f"{up}/bundles", h.bundles, methods=post),
        Route(f"{up}/bundles/{{bundle_id}}", h.bundle_info, methods=get),
        Route(f"{up}/bundles/{{bundle_id}}/upload-status", h.bundle_upload_status, methods=get),
        Route(f"{up}/upgrade-unit-groups", h.unit_groups, methods=["GET", "POST"]),
        Route(f"{up}/upgrade-unit-groups/aggregate-info", h.aggregate_info, methods=get),
        Route(f"{up}/upgrade-unit-groups-status", h.groups_status, methods=get),
        Route(f"{up}/upgrade-unit-groups/{{group_id}}", h.unit_group,
              methods=["GET", "PUT", "POST", "DELETE"]),
        Route(f"{up}/upgrade-unit-groups/{{group_id}}/status", h.group_status, methods=get),
        Route(f"{up}/upgrade-unit-groups/{{group_id}}/upgrade-unit/{{unit_id}}", h.unit_reorder,
              methods=post),
        Route(f"{up}/upgrade-units", h.units, methods=get),
        Route(f"{up}/upgrade-units/aggregate-info", h.units_aggregate, methods=get),
        Route(f"{up}/upgrade-units/{{unit_id}}", h.one_unit, methods=get),
        Route(f"{up}/upgrade-units-stats", h.units_stats, methods=get),
        Route(f"{up}/nodes", h.nodes, methods=get),
        Route(f"{up}/nodes-summary", h.nodes_summary, methods=get),
        Route(f"{up}/version-whitelist", h.version_whitelist, methods=get),
        Route(f"{up}/version-whitelist/{{component}}", h.component_whitelist,
              methods=["GET", *put]),
        Route(f"{up}/plan/{{component}}/settings", h.plan_settings, methods=["GET", *put]),
        Route(f"{up}/plan", h.plan, methods=post),
        Route(up, h.upgrade_action, methods=post),
        Route("/api/v1/node/services/install-upgrade", h.install_upgrade, methods=get),
        Route("/api/v1/node/services/{service}/status", h.service_status, methods=get),
        Route("/api/v1/cluster/status", h.cluster_status, methods=get),
        Route("/api/v1/node", h.node, methods=get),
    ]
    if api == "2.5":
        routes += [
            Route(f"{up}/uc-upgrade-status", h.uc_upgrade_status, methods=get),
            Route(f"{up}/functional-state", h.functional_state, methods=get),
            Route(f"{up}/upgrade-checks-info", h.checks_info, methods=get),
            Route(f"{up}/bundles/{{bundle_id}}", h.bundle_info, methods=post),
            Route(f"{up}/{{component}}", h.component_action, methods=post),
        ]
    return routes


class Recorder:
    """ASGI middleware: every ``/api/`` exchange as one JSON line in ``path`` (method,
    path, query, request content type and body, status, response body), for checking
    clients and the emulator against the API contract (``emulate nsxt --record``).

    The line is written (and flushed) before the last part of the answer is sent: a
    client that has its answer finds the exchange recorded.  (Written after the
    answer, a client reading the record at once raced the server and, on a busy
    machine, sometimes missed its own last exchange.)  An exchange the application
    ends without finishing an answer is written when it ends."""

    #: bodies longer than this are recorded as null (an uploaded bundle, say)
    MAX_BODY = 1 << 20

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app
        self.out = path.open("a", encoding="utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        request: list[bytes] = []
        response: list[bytes] = []
        status = [0]
        headers = dict(scope["headers"])
        multipart = b"multipart/" in headers.get(b"content-type", b"")

        async def receive_recorded() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not multipart:
                request.append(message.get("body", b""))
            return message

        written = False

        def write() -> None:
            nonlocal written
            if not written:
                written = True
                self._write(scope, headers, multipart, b"".join(request), status[0],
                            b"".join(response))

        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            elif message["type"] == "http.response.body":
                response.append(message.get("body", b""))
                if not message.get("more_body", False):
                    write()  # before the answer is complete at the client
            await send(message)

        try:
            await self.app(scope, receive_recorded, send_recorded)
        finally:
            write()

    def _write(self, scope: Scope, headers: dict[bytes, bytes], multipart: bool,
               request: bytes, status: int, response: bytes) -> None:
        def text(body: bytes) -> str | None:
            return body.decode("utf-8", "replace") if len(body) <= self.MAX_BODY else None

        record = {"method": scope["method"], "path": scope["path"],
                  "query": scope["query_string"].decode("latin-1"),
                  "content_type": headers.get(b"content-type", b"").decode("latin-1"),
                  "authorization": bool(headers.get(b"authorization")),
                  "body": None if multipart else text(request), "status": status,
                  "response_type": "application/json", "response": text(response)}
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()


def create_app(site: Site, username: str, password: str, record: Path | None = None
               ) -> Starlette:
    """The emulator's ASGI application over ``site``, accepting ``username``/``password``;
    every exchange appended to ``record`` when given."""
    recording = [Middleware(Recorder, path=record)] if record is not None else []
    app = Starlette(
        routes=_routes(site.api),
        middleware=[*recording,
                    Middleware(Guard, site=site, username=username, password=password),
                    Middleware(BodyLimit, refuse=_error)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.site = site
    app.state.public_port = None  # set by the server once its public port is known
    return app
