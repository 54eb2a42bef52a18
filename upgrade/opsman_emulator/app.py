"""The starlette application of the Ops Manager API emulator.

Endpoints as Ops Manager documents them (see :mod:`upgrade.adapters.opsman.client`):

* ``POST /uaa/oauth/token`` (form-encoded): the password grant for client ``opsman``
  with an empty secret and the user's name and password, or the client-credentials
  grant; the client may also authenticate with HTTP basic auth, as UAA allows.  Bad
  credentials get 401 ``{"error": "unauthorized", "error_description": "Bad
  credentials"}``, an unknown grant 400 ``unsupported_grant_type``.
* ``GET /api/v0/info`` and ``GET /api/v0/deployed/products`` with ``Authorization:
  Bearer TOKEN``; without a valid token 401 ``{"errors": {"errors": [...]}}``.

Tokens live in memory: a restarted emulator asks clients to log in again, as a restarted
UAA whose signing key changed would.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from upgrade.opsman_emulator.state import load_state

#: seconds a token is valid (UAA's default for the opsman client is 12 hours)
TOKEN_LIFETIME_S = 43_199


@dataclass
class Accounts:
    """Who may log in: the admin user (through client ``opsman``), and a UAA client."""

    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    tokens: set[str] = field(default_factory=set)

    def user_ok(self, username: str, password: str) -> bool:
        """True for the admin user's name and password (compared in constant time)."""
        return (self.username is not None and self.password is not None
                and hmac.compare_digest(username.encode(), self.username.encode())
                and hmac.compare_digest(password.encode(), self.password.encode()))

    def client_ok(self, client_id: str, secret: str) -> bool:
        """True for the configured UAA client and its secret."""
        return (self.client_id is not None and self.client_secret is not None
                and hmac.compare_digest(client_id.encode(), self.client_id.encode())
                and hmac.compare_digest(secret.encode(), self.client_secret.encode()))


def _unauthorized_uaa() -> JSONResponse:
    return JSONResponse({"error": "unauthorized", "error_description": "Bad credentials"},
                        status_code=401, headers={"WWW-Authenticate": 'Basic realm="UAA/client"'})


def _basic_client(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client, _, secret = decoded.partition(":")
    return unquote(client), unquote(secret)


def _form_fields(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (what a token request is) as a dict."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))


def create_app(state_dir: Path, accounts: Accounts,
               new_token: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> Starlette:
    """The emulator's ASGI application over the state in ``state_dir``."""

    async def token(request: Request) -> JSONResponse:
        fields = _form_fields(await request.body())
        client = _basic_client(request) or (fields.get("client_id", ""),
                                            fields.get("client_secret", ""))
        grant = fields.get("grant_type", "")
        if grant == "password":
            ok = client == ("opsman", "") and accounts.user_ok(fields.get("username", ""),
                                                               fields.get("password", ""))
            scope = "opsman.admin scim.me uaa.user openid"
        elif grant == "client_credentials":
            ok = accounts.client_ok(*client)
            scope = "opsman.admin"
        else:
            return JSONResponse({"error": "unsupported_grant_type",
                                 "error_description": f"Unsupported grant type: {grant}"},
                                status_code=400)
        if not ok:
            return _unauthorized_uaa()
        value = new_token()
        accounts.tokens.add(value)
        return JSONResponse({"access_token": value, "token_type": "bearer",
                             "expires_in": TOKEN_LIFETIME_S, "scope": scope,
                             "jti": secrets.token_hex(16)})

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return False
        presented = header[7:].strip()
        return any(hmac.compare_digest(presented, t) for t in accounts.tokens)

    def refused() -> JSONResponse:
        return JSONResponse({"errors": {"errors": ["Unauthorized: a valid UAA bearer token "
                                                   "is required"]}}, status_code=401)

    async def info(request: Request) -> JSONResponse:
        if not authorized(request):
            return refused()
        return JSONResponse({"info": {"version": load_state(state_dir).info_version()}})

    async def deployed(request: Request) -> JSONResponse:
        if not authorized(request):
            return refused()
        return JSONResponse(load_state(state_dir).deployed_products())

    return Starlette(routes=[
        Route("/uaa/oauth/token", token, methods=["POST"]),
        Route("/api/v0/info", info, methods=["GET"]),
        Route("/api/v0/deployed/products", deployed, methods=["GET"]),
    ])
