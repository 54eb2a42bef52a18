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
from http import HTTPStatus
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
#: Spring's names where Python's differ (NSX Manager is a Spring application)
_STATUS_NAMES = {413: "PAYLOAD_TOO_LARGE"}
_STOPPING = "Some appliance components are not functioning properly."


def error_body(status: int, code: int, message: str, module: str = "upgrade") -> dict[str, Any]:
    """An NSX API error body."""
    try:
        name = _STATUS_NAMES.get(status) or HTTPStatus(status).name
    except ValueError:
        name = str(status)
    return {"httpStatus": name, "error_code": code, "error_message": message,
            "module_name": module}


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
                self.site.save(clock=True)
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


def _routes() -> list[Route]:
    up = "/api/v1/upgrade"
    get, post, put = ["GET"], ["POST"], ["PUT"]
    return [
        Route(f"{up}/summary", h.summary, methods=get),
        Route(f"{up}/status-summary", h.status_summary, methods=get),
        Route(f"{up}/uc-upgrade-status", h.uc_upgrade_status, methods=get),
        Route(f"{up}/pre-upgrade-checks/failures", h.precheck_failures, methods=get),
        Route(f"{up}/eula/accept", h.eula_accept, methods=post),
        Route(f"{up}/eula/acceptance", h.eula_acceptance, methods=get),
        Route(f"{up}/eula/content", h.eula_content, methods=get),
        Route(f"{up}/history", h.history, methods=get),
        Route(f"{up}/bundles", h.bundles, methods=["GET", "POST"]),
        Route(f"{up}/bundles/{{bundle_id}}", h.bundle_info, methods=get),
        Route(f"{up}/bundles/{{bundle_id}}/upload-status", h.bundle_upload_status, methods=get),
        Route(f"{up}/upgrade-unit-groups", h.unit_groups, methods=["GET", "POST"]),
        Route(f"{up}/upgrade-unit-groups/aggregate-info", h.aggregate_info, methods=get),
        Route(f"{up}/upgrade-unit-groups-status", h.groups_status, methods=get),
        Route(f"{up}/upgrade-unit-groups/{{group_id}}", h.unit_group,
              methods=["GET", "PUT", "POST"]),
        Route(f"{up}/upgrade-unit-groups/{{group_id}}/upgrade-unit/status", h.group_units_status,
              methods=get),
        Route(f"{up}/upgrade-units", h.units, methods=get),
        Route(f"{up}/upgrade-units/{{unit_id}}", h.one_unit, methods=get),
        Route(f"{up}/plan/{{component}}/settings", h.plan_settings, methods=["GET", *put]),
        Route(f"{up}/plan", h.plan, methods=post),
        Route(up, h.upgrade_action, methods=post),
        Route(f"{up}/{{component}}", h.component_action, methods=post),
        Route("/api/v1/node/services/install-upgrade", h.install_upgrade, methods=get),
        Route("/api/v1/node/services/{service}/status", h.service_status, methods=get),
        Route("/api/v1/cluster/status", h.cluster_status, methods=get),
        Route("/api/v1/node", h.node, methods=get),
    ]


def create_app(site: Site, username: str, password: str) -> Starlette:
    """The emulator's ASGI application over ``site``, accepting ``username``/``password``."""
    app = Starlette(
        routes=_routes(),
        middleware=[Middleware(Guard, site=site, username=username, password=password),
                    Middleware(BodyLimit, refuse=_error)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.site = site
    app.state.public_port = None  # set by the server once its public port is known
    return app
