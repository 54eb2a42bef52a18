"""Read what Ops Manager runs: its own version and the deployed PKS tile's, read-only.

Ops Manager's documented API (the Tanzu Operations Manager API reference,
developer.broadcom.com/xapis/tanzu-operations-manager-api, and PCF 2.3 "Using the
Ops Manager API", docs.pivotal.io/pivotalcf/2-3/customizing/ops-man-api.html):

* a token from the UAA that Ops Manager hosts under ``/uaa``: ``POST /uaa/oauth/token``
  with the password grant for client ``opsman`` and an empty secret (``uaac token
  owner get``, client name "opsman", secret blank) and the user's name and password,
  or the client-credentials grant for a UAA client of one's own; the answer carries
  ``access_token`` and ``token_type: bearer``;
* ``GET /api/v0/info`` → ``{"info": {"version": "2.3-build.123"}}``;
* ``GET /api/v0/deployed/products`` → ``[{"installation_name", "guid", "type",
  "product_version", ...}]``; the PKS tile's ``type`` is ``pivotal-container-service``.

Credentials come from ``OPSMAN_USERNAME``/``OPSMAN_PASSWORD`` or
``OPSMAN_CLIENT_ID``/``OPSMAN_CLIENT_SECRET`` in the environment (never from files)
and appear in no message or log.  Every failure leaves as an
:class:`~upgrade.errors.AdapterError` that says what to do.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from upgrade.core.versions import Version
from upgrade.errors import AdapterError, InputError, RefusedError, UpgradeError

#: the PKS tile's product type in ``/api/v0/deployed/products``
PKS_TYPE = "pivotal-container-service"
#: the UAA client Ops Manager's own users log in through (empty secret)
OPSMAN_CLIENT = "opsman"
_BUILD = re.compile(r"^v?(\d+(?:\.\d+){1,3})(?:-build\.(\d+))?$")


@dataclass(frozen=True, slots=True)
class Login:
    """How to get a token: a user (through client ``opsman``) or a UAA client of one's own."""

    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    client_secret: str | None = None

    def form(self) -> dict[str, str]:
        """The token request's form fields: the password grant, or client credentials."""
        if self.username is not None:
            return {"grant_type": "password", "username": self.username,
                    "password": self.password or "", "response_type": "token"}
        return {"grant_type": "client_credentials"}

    def client(self) -> tuple[str, str]:
        """The UAA client and its secret, sent with HTTP basic auth as UAA clients do
        (``opsman`` with an empty secret for a user's login)."""
        if self.username is not None:
            return OPSMAN_CLIENT, ""
        return self.client_id or "", self.client_secret or ""

    def who(self) -> str:
        """Who logs in, for messages (never a secret)."""
        return f"user {self.username!r}" if self.username else f"client {self.client_id!r}"


def login_from_environment() -> Login:
    """``OPSMAN_USERNAME``/``OPSMAN_PASSWORD``, else ``OPSMAN_CLIENT_ID``/
    ``OPSMAN_CLIENT_SECRET``; an InputError (exit 2) naming them when neither is set."""
    user, password = os.environ.get("OPSMAN_USERNAME"), os.environ.get("OPSMAN_PASSWORD")
    if user and password is not None:
        return Login(username=user, password=password)
    client, secret = os.environ.get("OPSMAN_CLIENT_ID"), os.environ.get("OPSMAN_CLIENT_SECRET")
    if client and secret is not None:
        return Login(client_id=client, client_secret=secret)
    raise InputError("set OPSMAN_USERNAME and OPSMAN_PASSWORD (or OPSMAN_CLIENT_ID and "
                     "OPSMAN_CLIENT_SECRET) in the environment to read Ops Manager "
                     "(credentials never go in files)")


@dataclass(frozen=True, slots=True)
class OpsmanVersion:
    """Ops Manager's version as ``/api/v0/info`` writes it: ``2.3-build.123`` names the minor
    release only (``patch_known`` False), ``2.10.5-build.12`` the patch too."""

    version: Version
    build: int | None
    text: str

    @property
    def patch_known(self) -> bool:
        """True when the reading names a patch release (three parts or more)."""
        return len(self.version.parts) >= 3

    def matches(self, expected: Version) -> bool:
        """True when ``expected`` is what this reading may be (a minor-only reading matches
        every patch of its minor)."""
        return expected == self.version if self.patch_known else expected.within(self.version)


def parse_opsman_version(text: str) -> OpsmanVersion:
    """``2.3-build.123`` → 2.3 (build 123); AdapterError when it is neither form."""
    match = _BUILD.match(str(text).strip())
    if not match:
        raise AdapterError(f"Ops Manager reports an unreadable version {text!r} (expected "
                           "e.g. 2.3-build.123)")
    build = int(match.group(2)) if match.group(2) else None
    return OpsmanVersion(Version.parse(match.group(1)), build, str(text))


def parse_product_version(text: str) -> Version:
    """A tile's ``product_version`` (``1.2.5-build.8``) → 1.2.5."""
    match = _BUILD.match(str(text).strip())
    if not match:
        raise AdapterError(f"Ops Manager reports an unreadable PKS tile version {text!r} "
                           "(expected e.g. 1.2.5-build.8)")
    return Version.parse(match.group(1))


@dataclass(frozen=True, slots=True)
class OpsmanReading:
    """What one visit to Ops Manager found."""

    url: str
    opsman: OpsmanVersion
    #: the deployed PKS tile's version; None when no PKS tile is deployed
    pks: Version | None
    pks_text: str | None

    def settle(self, pks: Version | None, opsman: Version | None, *, pks_key: str,
               opsman_key: str, minor_only: Callable[[OpsmanVersion], UpgradeError]
               ) -> tuple[Version, Version]:
        """The PKS and Ops Manager versions to trust: this reading's, checked against those
        a file declares (None: not declared).  A declared version the reading contradicts
        is refused (exit 4) naming ``pks_key``/``opsman_key`` (e.g. ``FILE: from.pks``); a
        minor-only Ops Manager reading with no declared patch raises ``minor_only(...)``."""
        if self.pks is None:
            raise AdapterError(f"Ops Manager at {self.url} has no PKS tile "
                               "(pivotal-container-service) deployed")
        if pks is not None and pks != self.pks:
            raise RefusedError(f"{pks_key} is {pks}, but Ops Manager at {self.url} reports "
                               f"the PKS tile at {self.pks}")
        if opsman is None:
            if not self.opsman.patch_known:
                raise minor_only(self.opsman)
            opsman = self.opsman.version
        elif not self.opsman.matches(opsman):
            raise RefusedError(f"{opsman_key} is {opsman}, but Ops Manager at {self.url} "
                               f"reports {self.opsman.text}")
        return self.pks, opsman

    def to_json(self) -> dict[str, object]:
        """Plain data for the journal and JSON output."""
        return {"url": self.url, "opsman": str(self.opsman.version),
                "opsman_reported": self.opsman.text,
                "pks": None if self.pks is None else str(self.pks),
                "pks_reported": self.pks_text}


def base_url(url: str) -> str:
    """``scheme://host[:port]``; InputError when ``url`` is not an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError(f"not an Ops Manager URL: {url!r} (expected https://<ops manager>)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class OpsmanClient:
    """A read-only Ops Manager API client (async, httpx)."""

    def __init__(self, url: str, login: Login, *, ca_bundle: Path | str | None = None,
                 insecure: bool = False, timeout_s: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = base_url(url)
        self._login = login
        self._token: str | None = None
        verify: ssl.SSLContext | bool = not insecure
        if ca_bundle is not None and not insecure:
            try:
                verify = ssl.create_default_context(cafile=str(ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                raise AdapterError(f"cannot read the Ops Manager CA bundle {ca_bundle}: "
                                   f"{exc}") from exc
        self._http = httpx.AsyncClient(base_url=self.url, verify=verify, timeout=timeout_s,
                                       transport=transport)

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> OpsmanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def read(self) -> OpsmanReading:
        """Ops Manager's version and the deployed PKS tile's."""
        info = await self._get("/api/v0/info")
        block = info.get("info") if isinstance(info, dict) else None
        if not isinstance(block, dict) or "version" not in block:
            raise AdapterError(f"{self.url}/api/v0/info: no info.version in the answer")
        version = parse_opsman_version(str(block["version"]))
        products = await self._get("/api/v0/deployed/products")
        if not isinstance(products, list):
            raise AdapterError(f"{self.url}/api/v0/deployed/products: not a list of products")
        pks = [p for p in products if isinstance(p, dict) and p.get("type") == PKS_TYPE]
        if len(pks) > 1:
            names = ", ".join(str(p.get("installation_name")) for p in pks)
            raise AdapterError(f"Ops Manager at {self.url} has {len(pks)} PKS tiles deployed "
                               f"({names}); a journey follows one")
        text = str(pks[0].get("product_version")) if pks else None
        return OpsmanReading(self.url, version,
                             parse_product_version(text) if text is not None else None, text)

    async def _token_now(self) -> str:
        if self._token is not None:
            return self._token
        try:
            answer = await self._http.post("/uaa/oauth/token", data=self._login.form(),
                                           auth=self._login.client(),
                                           headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        if answer.status_code in (400, 401, 403):
            raise AdapterError(
                f"Ops Manager's UAA at {self.url}/uaa refused the login of "
                f"{self._login.who()} ({answer.status_code}): check OPSMAN_USERNAME/"
                "OPSMAN_PASSWORD (or OPSMAN_CLIENT_ID/OPSMAN_CLIENT_SECRET)")
        if answer.status_code != 200:
            raise AdapterError(f"Ops Manager's UAA at {self.url}/uaa answered "
                               f"{answer.status_code} to the token request")
        try:
            body = answer.json()
            token = str(body["access_token"])
            kind = str(body.get("token_type", "bearer"))
        except (ValueError, KeyError, TypeError) as exc:
            raise AdapterError(f"Ops Manager's UAA at {self.url}/uaa gave no access_token") \
                from exc
        if kind.lower() != "bearer":
            raise AdapterError(f"Ops Manager's UAA gave a {kind!r} token, not a bearer token")
        self._token = token
        return token

    async def _get(self, path: str) -> object:
        token = await self._token_now()
        try:
            answer = await self._http.get(path, headers={"Authorization": f"Bearer {token}",
                                                         "Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        if answer.status_code in (401, 403):
            raise AdapterError(f"Ops Manager at {self.url} refused {path} "
                               f"({answer.status_code}) for {self._login.who()}")
        if answer.status_code != 200:
            raise AdapterError(f"Ops Manager at {self.url} answered {answer.status_code} to "
                               f"GET {path}")
        try:
            return answer.json()
        except ValueError as exc:
            raise AdapterError(f"Ops Manager at {self.url}: GET {path} is not JSON") from exc


def _unreachable(url: str, exc: httpx.HTTPError) -> AdapterError:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return AdapterError(f"Ops Manager at {url}: its certificate does not verify; name its "
                            "CA with ca_bundle: (or insecure: true in a lab)")
    return AdapterError(f"Ops Manager at {url} cannot be reached: {text}")


async def read_opsman(url: str, *, ca_bundle: Path | str | None = None,
                      insecure: bool = False) -> OpsmanReading:
    """One visit to Ops Manager at ``url`` with the credentials in the environment."""
    async with OpsmanClient(url, login_from_environment(), ca_bundle=ca_bundle,
                            insecure=insecure) as client:
        return await client.read()
