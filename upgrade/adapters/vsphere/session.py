"""One logged-in vCenter session: TLS, login, renewal, and the error boundary.

Blocking pyVmomi calls run in worker threads through :meth:`Session.run`; pyVmomi,
TLS and socket errors become AdapterError / TransientAdapterError here, and the
password never reaches a message or log.
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from pyVim.connect import SmartStubAdapter
from pyVmomi import vim, vmodl

from upgrade.errors import AdapterError, TransientAdapterError

__all__ = ["Session", "fault_text"]

log = structlog.get_logger(__name__)
T = TypeVar("T")
# pyVmomi's stubs leave these untyped; mypy --strict wants them declared Any.
_stub_adapter: Callable[..., Any] = SmartStubAdapter
_service_instance: Callable[..., Any] = vim.ServiceInstance


class Session:
    """A vCenter service instance logged in as one user; make one with :meth:`login`."""

    def __init__(self, si: Any, where: str, username: str, password: str) -> None:
        self.si: Any = si  #: the service instance; None once closed
        self.where = where  #: ``https://host[:port]``, for messages
        self._username = username
        self.__password = password  # only to log in again when the session expires
        self._login_lock = threading.Lock()

    @classmethod
    async def login(
        cls,
        url: str,
        username: str,
        password: str,
        *,
        ca_bundle: str | None = None,
        insecure: bool = False,
        timeout_s: float = 60.0,
    ) -> Session:
        """Log in to the vCenter at ``url`` (``https://vc.example[:port][/sdk]``).

        Its TLS certificate is verified against ``ca_bundle`` (or the system's CAs) unless
        ``insecure``. A refused login or a bad certificate raises AdapterError; a vCenter
        that cannot be reached raises TransientAdapterError.
        """
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise AdapterError(f"not an https:// vCenter URL: {parts.scheme}://{parts.hostname}")
        where = f"https://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        if insecure:
            log.warning("vsphere.tls_verification_disabled", vcenter=where)
        context = _ssl_context(ca_bundle, insecure)

        def login() -> Any:
            stub = None
            try:
                stub = _stub_adapter(
                    host=parts.hostname,
                    port=parts.port or 443,
                    path=parts.path.rstrip("/") or "/sdk",
                    sslContext=context,
                    httpConnectionTimeout=timeout_s,
                )
                si = _service_instance("ServiceInstance", stub)
                si.content.sessionManager.Login(username, password, None)
                return si
            except Exception as exc:
                if stub is not None:
                    stub.DropConnections()
                if isinstance(exc, vim.fault.InvalidLogin):
                    raise AdapterError(
                        f"vCenter {where} refused the login of user {username!r}: wrong user "
                        "name or password (VSPHERE_USERNAME / VSPHERE_PASSWORD)"
                    ) from exc
                raise _translate(exc, where, "connecting") from exc

        try:  # the stub's API version probe has no timeout of its own
            si = await asyncio.wait_for(asyncio.to_thread(login), timeout_s)
        except TimeoutError as exc:
            raise TransientAdapterError(
                f"connecting: vCenter {where} did not answer within {timeout_s:g}s"
            ) from exc
        log.info("vsphere.connected", vcenter=where, user=username)
        return cls(si, where, username, password)

    async def close(self) -> None:
        """Log out; closing twice is harmless."""
        si, self.si = self.si, None
        if si is not None:
            try:
                await asyncio.to_thread(_logout, si)
            except Exception as exc:  # a vCenter gone away has logged us out anyway
                log.warning("vsphere.logout_failed", vcenter=self.where, error=fault_text(exc))

    async def run(self, doing: str, fn: Callable[[Any], T]) -> T:
        """``fn(service instance)`` in a worker thread, logging in again once if the
        session expired; any error becomes an AdapterError that says what was ``doing``."""
        return await asyncio.to_thread(self._guarded, doing, fn)

    def _guarded(self, doing: str, fn: Callable[[Any], T]) -> T:
        si = self.si
        if si is None:
            raise AdapterError(f"{doing}: the client of vCenter {self.where} is closed")
        try:
            try:
                return fn(si)
            except vim.fault.NotAuthenticated:  # the session expired: log in once more
                with self._login_lock:
                    sessions = si.content.sessionManager
                    try:
                        alive = sessions.currentSession is not None
                    except vim.fault.NotAuthenticated:
                        alive = False
                    if not alive:
                        sessions.Login(self._username, self.__password, None)
                        log.info("vsphere.session_renewed", vcenter=self.where)
                return fn(si)
        except AdapterError:
            raise
        except vim.fault.InvalidLogin as exc:
            raise AdapterError(
                f"{doing}: vCenter {self.where} no longer accepts user {self._username!r}"
            ) from exc
        except Exception as exc:
            raise _translate(exc, self.where, doing) from exc


def fault_text(fault: BaseException) -> str:
    """What a pyVmomi fault (or any exception) says, for a message or a log."""
    msg = getattr(fault, "msg", None) or getattr(fault, "localizedMessage", None)
    return str(msg) if msg else type(fault).__name__


def _logout(si: Any) -> None:
    try:
        si.content.sessionManager.Logout()
    finally:
        si._stub.DropConnections()


def _ssl_context(ca_bundle: str | None, insecure: bool) -> ssl.SSLContext:
    # Always an explicit context: given none, pyVmomi skips verification for localhost.
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_bundle is not None:
        try:
            context = ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise AdapterError(f"cannot read the vCenter CA bundle {ca_bundle}: {exc}") from exc
    return context


def _translate(exc: Exception, where: str, doing: str) -> AdapterError:
    """The AdapterError that tells an operator what went wrong, without secrets."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return AdapterError(
            f"{doing}: the TLS certificate of vCenter {where} cannot be verified "
            f"({exc.verify_message}); give its CA as ca_bundle, or set insecure: true"
        )
    if isinstance(exc, ssl.SSLError):
        return AdapterError(f"{doing}: TLS with vCenter {where} failed: {exc.reason or exc}")
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return TransientAdapterError(f"{doing}: cannot reach vCenter {where}: {reason}")
    if isinstance(exc, http.client.HTTPException):
        reason = str(exc) or type(exc).__name__
        return TransientAdapterError(f"{doing}: vCenter {where} answered: {reason}")
    if isinstance(exc, vim.fault.NotAuthenticated):
        return TransientAdapterError(f"{doing}: the session with vCenter {where} ended")
    if isinstance(exc, (vmodl.MethodFault, vmodl.RuntimeFault)):
        return AdapterError(f"{doing}: vCenter {where} said: {fault_text(exc)}")
    return AdapterError(f"{doing}: unexpected {type(exc).__name__} from vCenter {where}: {exc}")
