"""The nsxt client's network layer (httpx over plain asyncio) against real loopback servers:
keep-alive reuse, a connection the server hung up on, a server that never answers, one
that is not there.  Nothing may be left open after ``close``: pytest's ``filterwarnings =
error`` turns an unclosed transport or socket (a ResourceWarning) into a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from upgrade.adapters.nsxt.http import NsxtClient
from upgrade.errors import TransientAdapterError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer(body: bytes, *, keep_alive: bool = True) -> bytes:
    """One HTTP/1.1 200 response carrying ``body`` as JSON."""
    close = b"" if keep_alive else b"connection: close\r\n"
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + close + b"\r\n" + body)


class Server:
    """A loopback server running ``handler`` per connection; ``stop`` drops them all."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._one, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up
        finally:
            writer.transport.abort()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await asyncio.sleep(0)


def test_requests_share_a_kept_alive_connection() -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        n = 0
        while await reader.readuntil(b"\r\n\r\n"):
            n += 1
            writer.write(answer(b'{"n": %d}' % n))
            await writer.drain()

    async def main() -> list[object]:
        server = Server(handler)
        url = await server.start()
        client = NsxtClient(url, "admin", "pw")
        try:
            return [(await client.get("/x"))["n"] for _ in range(5)]
        finally:
            await client.close()
            await server.stop()

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]
    assert len(connections) == 1


def test_a_connection_the_server_hung_up_on_is_not_reused() -> None:
    """The server answers once and closes: the next request opens a new connection
    instead of failing on the dead one."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b'{"ok": true}'))  # says keep-alive, then hangs up anyway
        await writer.drain()
        writer.close()

    async def main() -> list[object]:
        server = Server(handler)
        url = await server.start()
        client = NsxtClient(url, "admin", "pw")
        try:
            first = await client.get("/x")
            await asyncio.sleep(0.05)  # the hang-up arrives while the connection is idle
            return [first, await client.get("/x")]
        finally:
            await client.close()
            await server.stop()

    assert asyncio.run(main()) == [{"ok": True}, {"ok": True}]


def test_a_manager_that_never_answers_times_out_as_a_transient_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)  # dropped by stop() long before

    async def main() -> None:
        server = Server(handler)
        url = await server.start()
        client = NsxtClient(url, "admin", "pw", timeout_s=0.2)
        try:
            await client.get("/upgrade/summary")
        finally:
            await client.close()
            await server.stop()

    with pytest.raises(TransientAdapterError, match=r"did not answer in time \(ReadTimeout\)"):
        asyncio.run(main())


def test_a_manager_that_is_not_there_is_a_transient_connect_error() -> None:
    async def main() -> None:
        server = Server(lambda r, w: asyncio.sleep(0))
        url = await server.start()
        await server.stop()  # the port is free again: connection refused
        client = NsxtClient(url, "admin", "pw")
        try:
            await client.get("/upgrade/summary")
        finally:
            await client.close()

    with pytest.raises(TransientAdapterError, match="cannot connect to the NSX Manager"):
        asyncio.run(main())
