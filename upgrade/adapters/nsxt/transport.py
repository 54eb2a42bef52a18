"""httpx over plain asyncio: the network layer under the NSX Manager client.

httpx talks to sockets through httpcore's AnyIO backend.  Per request that costs more
CPU than the request itself on a loopback rehearsal: every time httpcore's pool looks
at its idle connections it asks each whether its socket is readable, and AnyIO answers
that by building a fresh table of socket attributes (a ``getpeername`` system call
included) and polling the socket; reads and writes each enter a cancel scope.  A
rehearsal of 1,000 hosts spent about 2 ms of the runner's CPU per request there.

:class:`AsyncioBackend` is httpcore's network backend on an asyncio
:class:`~asyncio.Protocol`: bytes arrive in a buffer as the event loop reads them, so
"is the socket readable" is a look at that buffer (the server sent something, or hung
up), time-outs are one timer each, and TLS is ``loop.start_tls``.  Errors are httpcore's
(``ConnectError``, ``ReadTimeout``, ...), each raised from the original one, so httpx maps
them as it maps the AnyIO backend's and a certificate failure still shows its cause.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncioBackend", "AsyncioStream", "transport"]


class _Link(asyncio.Protocol):
    """The protocol under one :class:`AsyncioStream`: a receive buffer and two waiters."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake_reader()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake_reader()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_reader(self) -> None:
        waiter, self._readable = self._readable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_readable(self, timeout: float | None) -> None:
        """Until bytes or the end arrived; TimeoutError after ``timeout`` seconds."""
        if self._readable is None:
            self._readable = asyncio.get_running_loop().create_future()
        await _within(self._readable, timeout)

    async def wait_writable(self, timeout: float | None) -> None:
        """Until the transport's write buffer drained below its high mark."""
        if self._writable is not None:
            await _within(self._writable, timeout)


async def _within(waiter: asyncio.Future[None], timeout: float | None) -> None:
    """Await ``waiter``; TimeoutError after ``timeout`` seconds (one timer, no task)."""
    if timeout is None:
        await waiter
        return
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout, _expire, waiter)
    try:
        await waiter
    finally:
        timer.cancel()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection for httpcore."""

    def __init__(self, link: _Link) -> None:
        self._link = link

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        link = self._link
        if not link.buffer and not link.eof:
            try:
                await link.wait_readable(timeout)
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(str(exc) or "timed out reading") from exc
        if link.buffer:
            data = bytes(link.buffer[:max_bytes])
            del link.buffer[:max_bytes]
            return data
        if link.error is not None:
            raise httpcore.ReadError(str(link.error)) from link.error
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        link = self._link
        transport = link.transport
        if not buffer:
            return
        if transport is None or transport.is_closing():
            raise httpcore.WriteError(str(link.error or "the connection is closed"))
        transport.write(buffer)
        try:
            await link.wait_writable(timeout)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "timed out writing") from exc

    async def aclose(self) -> None:
        transport = self._link.transport
        if transport is not None and not transport.is_closing():
            transport.close()
            await asyncio.sleep(0)  # the loop lets go of the socket (no "unclosed transport")
            # TLS closes with a close_notify exchange the server may never answer: dropped
            transport.abort()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        link = self._link
        assert link.transport is not None
        loop = asyncio.get_running_loop()
        try:
            secure = await loop.start_tls(link.transport, link, ssl_context,
                                          server_hostname=server_hostname,
                                          ssl_handshake_timeout=timeout)
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        if secure is None:
            raise httpcore.ConnectError("the TLS handshake ended the connection")
        link.transport = secure
        return self

    def get_extra_info(self, info: str) -> Any:
        link = self._link
        transport = link.transport
        if info == "is_readable":  # idle and readable: the server hung up (or broke HTTP)
            return bool(link.buffer) or link.eof or transport is None or transport.is_closing()
        if transport is None:
            return None
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio protocols (see the module docstring)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        link = _Link()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can drop a connection made
                await loop.create_connection(lambda: link, host, port, local_addr=local)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "timed out connecting") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        assert link.transport is not None
        sock = link.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(link)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("the NSX Manager client speaks TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Transport(httpx.AsyncHTTPTransport):
    """httpx's own transport over an httpcore pool on :class:`AsyncioBackend`."""

    def __init__(self, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> None:
        # not super().__init__: it would build a pool (and an SSL context) only to drop it
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )


def transport(verify: ssl.SSLContext | bool, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """An httpx transport verifying TLS with ``verify``, pooled within ``limits``."""
    return _Transport(verify, limits)
