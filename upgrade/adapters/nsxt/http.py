"""The NSX Manager REST client under the ``nsxt`` adapter: httpx, basic auth, TLS, errors.

Every failure leaves this module as an :class:`~upgrade.errors.AdapterError`
that says what to do, or a :class:`~upgrade.errors.TransientAdapterError` when
trying again may work:

* 5xx, refused or dropped connections, time-outs: transient (a manager that is
  upgrading itself answers 503, then refuses connections for minutes);
* 401/403: "authentication failed for user X at URL: check NSXT_USERNAME/NSXT_PASSWORD";
* a certificate that does not verify: names the fix (``ca_bundle``, or ``insecure: true``);
* other 4xx: the NSX error body's ``error_message`` (with its code and module).

The password is given to httpx's basic auth and appears in no message or log.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import structlog

from upgrade.adapters.nsxt.transport import transport
from upgrade.core.versions import Version
from upgrade.errors import AdapterError, TransientAdapterError

log = structlog.get_logger(__name__)

API = "/api/v1"


class NsxtHttpError(AdapterError):
    """The manager answered with an HTTP error status (kept in ``status``; the NSX
    ``error_code`` of its ApiError body, when it has one, in ``error_code``)."""

    def __init__(self, message: str, status: int, error_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class NsxtTransientHttpError(TransientAdapterError):
    """The manager answered 5xx: it may answer better later."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def nsx_version(text: str) -> Version:
    """NSX writes builds too (``2.1.0.0.0.7395503``): the first four parts are the version."""
    try:
        return Version.parse(".".join(str(text).split(".")[:4]))
    except ValueError as exc:
        raise AdapterError(f"the NSX Manager reports an unreadable version {text!r}") from exc


def manager_address(url: str) -> str:
    """``scheme://host[:port]`` of the manager URL; AdapterError when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AdapterError(f"not an NSX Manager URL: {url!r} (expected https://<manager>[:port])")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _verify(where: str, ca_bundle: str | Path | None, insecure: bool) -> ssl.SSLContext | bool:
    if insecure:
        log.warning("nsxt.tls_verification_disabled", manager=where,
                    hint="insecure: true accepts any certificate; use ca_bundle outside a lab")
        return False
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise AdapterError(f"cannot read the NSX Manager CA bundle {ca_bundle}: {exc}") from exc


def _cert_problem(exc: BaseException) -> str | None:
    """Why certificate verification failed, when that is what ``exc`` comes from."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return cur.verify_message or str(cur)
        cur = cur.__cause__ or cur.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip()
    return None


def nsx_error_code(response: httpx.Response) -> int | None:
    """The ``error_code`` of an NSX ApiError body, None when there is none."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error_code") if isinstance(body, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def nsx_message(response: httpx.Response) -> str:
    """The NSX error body as one sentence (or the raw text when it is not one)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error_message"):
        text = str(body["error_message"])
        extra = [str(e.get("error_message")) for e in body.get("related_errors") or []
                 if isinstance(e, dict) and e.get("error_message")]
        if extra:
            text += " (" + "; ".join(extra) + ")"
        where = ", ".join(p for p in (
            f"error {body['error_code']}" if body.get("error_code") is not None else "",
            str(body.get("module_name") or "")) if p)
        return f"{text} [{where}]" if where else text
    text = response.text.strip()[:200]
    return text or response.reason_phrase or f"HTTP {response.status_code}"


#: concurrent connections to one manager
MAX_CONNECTIONS = 8


class NsxtClient:
    """JSON over HTTP(S) to one NSX Manager's ``/api/v1``."""

    def __init__(self, manager: str, username: str, password: str, *,
                 ca_bundle: str | Path | None = None, insecure: bool = False,
                 timeout_s: float = 30.0) -> None:
        self.where = manager_address(manager)
        self.username = username
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS,
                              max_keepalive_connections=MAX_CONNECTIONS)
        self._http = httpx.AsyncClient(
            base_url=self.where + API,
            auth=httpx.BasicAuth(username, password),
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": "application/json"},
            # httpx over plain asyncio, not AnyIO: a third of httpx's CPU per request
            transport=transport(_verify(self.where, ca_bundle, insecure), limits),
        )
        # a few kept-alive connections, the requests beyond them queued here: httpx's pool
        # scans its connections for every queued request each time one completes (with its
        # default 100 connections and a rehearsal's hundreds of polls a rehearsal's client
        # spent 7 ms of CPU per request), and a manager serves a client's concurrent
        # requests only up to a limit anyway
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def get(self, path: str, **params: str) -> Any:
        """GET ``path`` (under /api/v1); the JSON body."""
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any = None, **params: str) -> Any:
        """POST ``body`` as JSON; the JSON body of the answer (None when empty)."""
        return await self.request("POST", path, params=params, json=body)

    async def put(self, path: str, body: Any) -> Any:
        """PUT ``body`` as JSON."""
        return await self.request("PUT", path, json=body)

    async def pages(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every item of a paged list (``results`` + ``cursor``)."""
        items: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(1000):
            body = await self.get(path, **params, **({"cursor": cursor} if cursor else {}))
            page = body.get("results", []) if isinstance(body, dict) else []
            items += [i for i in page if isinstance(i, dict)]
            cursor = str(body.get("cursor") or "") if isinstance(body, dict) else ""
            if not cursor or not page:
                break
        return items

    async def upload(self, path: str, name: str, stream: IO[bytes], timeout_s: float,
                     **params: str) -> Any:
        """POST a multipart ``file`` part (streamed from ``stream``)."""
        return await self.request(
            "POST", path, params=params,
            files={"file": (name, stream, "application/octet-stream")},
            timeout=httpx.Timeout(timeout_s, connect=30.0),
        )

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      json: Any = None, files: Any = None,
                      timeout: httpx.Timeout | None = None) -> Any:
        """One request; errors translated (see the module docstring)."""
        what = f"{method} {API}{path}"
        extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
        try:
            async with self._slots:
                response = await self._http.request(method, path, params=params or None,
                                                    json=json, files=files, **extra)
        except httpx.TimeoutException as exc:
            raise TransientAdapterError(
                f"{what}: the NSX Manager at {self.where} did not answer in time "
                f"({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            problem = _cert_problem(exc)
            if problem is not None:
                raise AdapterError(
                    f"TLS verification of the NSX Manager at {self.where} failed ({problem}): "
                    "set ca_bundle in the playbook's inventory to the PEM file of the CA that "
                    "signed the manager's certificate (or, in a lab only, insecure: true)"
                ) from exc
            raise TransientAdapterError(
                f"{what}: cannot connect to the NSX Manager at {self.where}: "
                f"{exc or 'connection refused'}") from exc
        except httpx.TransportError as exc:
            raise TransientAdapterError(
                f"{what}: the connection to the NSX Manager at {self.where} failed: "
                f"{exc or type(exc).__name__}") from exc
        return self._body(what, response)

    def _body(self, what: str, response: httpx.Response) -> Any:
        code = response.status_code
        if code in (401, 403):
            raise AdapterError(
                f"authentication failed for user {self.username!r} at {self.where}: check "
                f"NSXT_USERNAME/NSXT_PASSWORD (HTTP {code}: {nsx_message(response)})")
        if code >= 500:
            raise NsxtTransientHttpError(
                f"{what}: the NSX Manager at {self.where} answered {code}: "
                f"{nsx_message(response)}", code)
        if code >= 400:
            raise NsxtHttpError(
                f"{what}: the NSX Manager at {self.where} refused ({code}): "
                f"{nsx_message(response)}", code, nsx_error_code(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise AdapterError(f"{what}: the NSX Manager at {self.where} answered "
                               f"{code} with a body that is not JSON") from exc
