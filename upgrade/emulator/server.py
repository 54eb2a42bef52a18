"""Serve the emulator: uvicorn's HTTP protocol on a public listener that can stop accepting.

While the emulated manager's API is down during its own upgrade, clients must
see what they would see from a real manager: connection refused.  uvicorn
cannot stop listening and start again, so uvicorn runs with no socket of its own
and the public port is a :class:`Gate`: an asyncio server (which also terminates
TLS) whose connections each speak uvicorn's HTTP protocol over the application.
It closes its listening socket and drops every open connection for the outage,
and listens again on the same port when the manager is back.  (It used to be a
TCP forwarder to a private uvicorn port: two more loopback hops and four more
copies for every request.)

A tick loop brings the site to now several times a second (the coordinator's
plan keeps moving with no client asking), saves it, and opens or closes the
gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import ssl
import weakref
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


class Gate:
    """The public listener: each connection served by ``protocol()``; can be shut."""

    def __init__(self, host: str, port: int, protocol: Callable[[], asyncio.Protocol],
                 context: ssl.SSLContext | None) -> None:
        self.host = host
        self.port = port
        self.protocol = protocol
        self.context = context
        self._server: asyncio.Server | None = None
        #: the connections' protocols (gone with their connections)
        self._links: weakref.WeakSet[asyncio.Protocol] = weakref.WeakSet()

    @property
    def is_open(self) -> bool:
        """True while accepting connections."""
        return self._server is not None

    async def open(self) -> None:
        """Listen (again) on the public port; port 0 picks a free one the first time.

        Raises :class:`InputError` (one line) when the port is taken or not allowed.
        """
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._protocol, self.host, self.port, ssl=self.context, reuse_address=True,
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
        for protocol in list(self._links):
            transport = getattr(protocol, "transport", None)  # uvicorn's, once connected
            if transport is not None:
                transport.abort()
        self._links.clear()
        if server is not None:
            await server.wait_closed()

    def _protocol(self) -> asyncio.Protocol:
        """uvicorn's protocol for one accepted connection, kept to be dropped on close."""
        protocol = self.protocol()
        self._links.add(protocol)
        return protocol


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
    app = create_app(site, username, password, record)
    config = uvicorn.Config(app, log_level="warning",
                            access_log=False, lifespan="off", timeout_graceful_shutdown=1)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[]))  # the gate listens, not uvicorn
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))

    def protocol() -> asyncio.Protocol:  # what uvicorn makes for each of its connections
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=server.server_state, app_state=server.lifespan.state)

    gate = Gate(host, port, protocol, context)
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
