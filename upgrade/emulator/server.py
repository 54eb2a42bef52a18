"""Serve the emulator: uvicorn on a private socket behind a gate that can stop accepting.

While the emulated manager's API is down during its own upgrade, clients must
see what they would see from a real manager: connection refused.  uvicorn
cannot stop listening and start again, so it listens on a private loopback
port and the public port is a :class:`Gate`, a small TCP forwarder (which also
terminates TLS) that closes its listening socket, drops every open connection
for the outage, and listens again on the same port when the manager is back.

A tick loop brings the site to now several times a second (the coordinator's
plan keeps moving with no client asking), saves it, and opens or closes the
gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from upgrade.emulator.app import create_app
from upgrade.emulator.coordinator import sync
from upgrade.emulator.site import Site
from upgrade.errors import InputError

log = structlog.get_logger(__name__)
#: real seconds between ticks
TICK_S = 0.05
_BUFFER = 65536


class Gate:
    """The public listener: forwards each connection to ``upstream_port``; can be shut."""

    def __init__(self, host: str, port: int, upstream_port: int,
                 context: ssl.SSLContext | None) -> None:
        self.host = host
        self.port = port
        self.upstream_port = upstream_port
        self.context = context
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    @property
    def is_open(self) -> bool:
        """True while accepting connections."""
        return self._server is not None

    async def open(self) -> None:
        """Listen (again) on the public port; port 0 picks a free one the first time.

        Raises :class:`InputError` (one line) when the port is taken or not allowed.
        """
        try:
            self._server = await asyncio.start_server(
                self._link, self.host, self.port, ssl=self.context, reuse_address=True,
                ssl_handshake_timeout=10 if self.context else None,
            )
        except OSError as exc:
            where = f"{self.host}:{self.port}"
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"{where} is already in use; pick another --port or 0 for a "
                                 "free one") from None
            raise InputError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection: clients now get connection refused."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()
        if server is not None:
            await server.wait_closed()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links.difference_update((writer, up_writer))
            for w in (writer, up_writer):
                if not w.transport.is_closing():
                    w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the end: an orderly end closes after the last byte, an error drops."""
    try:
        while data := await reader.read(_BUFFER):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        writer.transport.abort()
    else:
        writer.close()  # flushes what is buffered: a response's last bytes are not lost


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: :func:`serve` handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _quiet_tls_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    if isinstance(exc, ssl.SSLError | ConnectionError):
        return  # a client that rejects the certificate or hangs up is the client's business
    loop.default_exception_handler(context)


async def serve(site: Site, username: str, password: str, *, host: str = "127.0.0.1",
                port: int = 0, tls: tuple[Path, Path] | None = None,
                ready: Callable[[str], None] = lambda url: None,
                stop: asyncio.Event | None = None, record: Path | None = None) -> None:
    """Serve ``site`` until SIGINT/SIGTERM (or ``stop``); ``ready(url)`` once accepting."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_tls_errors)
    stop = stop or asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    # proto given: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # without it every answer after a connection's first waited ~40 ms (Nagle, delayed ACK)
    inner = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    inner.bind(("127.0.0.1", 0))
    app = create_app(site, username, password, record)
    config = uvicorn.Config(app, log_level="warning",
                            access_log=False, lifespan="off", timeout_graceful_shutdown=1)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[inner]))
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
    gate = Gate(host, port, inner.getsockname()[1], context)
    try:
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        await gate.open()
        app.state.public_port = gate.port
        scheme = "https" if tls else "http"
        shown = f"[{host}]" if ":" in host else host
        ready(f"{scheme}://{shown}:{gate.port}")
        await _tick(site, gate, stop)
    finally:
        await gate.close()
        server.should_exit = True
        await task
        inner.close()
        site.close()


async def _tick(site: Site, gate: Gate, stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = sync(site)
        site.save()
        down = site.manager_phase(now) == "down"
        if down and gate.is_open:
            log.info("emulator.manager_down", time=round(now, 1))
            await gate.close()
        elif not down and not gate.is_open:
            try:
                await gate.open()
            except InputError as exc:  # someone took the port meanwhile: try again
                log.warning("emulator.reopen_failed", error=str(exc))
            else:
                log.info("emulator.manager_back", time=round(now, 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_S)
