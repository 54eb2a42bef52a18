"""What the emulator accepts as a request body: bounded in size, JSON parsed safely.

:class:`BodyLimit` reads a request's whole body before the application sees it
(every endpoint takes small JSON documents) and answers 413 past
:data:`MAX_BODY` bytes; the bundle upload (``POST /upgrade/bundles?action=upload``)
is exempt and streams, counting bytes.  A client that hangs up mid-body gets no
answer and leaves no trace.  :func:`parse_object` turns a body into a JSON
object or a 400: invalid JSON, numbers too long to convert, nesting deeper than
:data:`MAX_DEPTH`, anything but an object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upgrade.emulator.layout import ApiError

#: the largest request body any endpoint but the bundle upload accepts
MAX_BODY = 1024 * 1024
#: a body declared or found larger than this is refused without reading the rest
MAX_DRAIN = 16 * MAX_BODY
#: the deepest nesting of objects and arrays a request body may have
MAX_DEPTH = 32

#: answers the middleware sends itself: (status, NSX error code, message)
Refusal = Callable[[int, int, str], ASGIApp]


def is_bundle_upload(scope: Scope) -> bool:
    """True for ``POST /api/v1/upgrade/bundles?action=upload`` (the only streamed body)."""
    return (scope["method"] == "POST" and scope["path"].rstrip("/") == "/api/v1/upgrade/bundles"
            and b"action=upload" in scope.get("query_string", b"").split(b"&"))


class BodyLimit:
    """ASGI middleware: read the body (at most :data:`MAX_BODY` bytes) before the app runs."""

    def __init__(self, app: ASGIApp, refuse: Refusal, limit: int = MAX_BODY) -> None:
        self.app = app
        self.refuse = refuse
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_bundle_upload(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"").strip()
        if declared and not declared.isdigit():
            await self.refuse(400, 255, "Content-Length is not a number")(scope, receive, send)
            return
        if declared and int(declared) > MAX_DRAIN:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client hung up mid-body: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.limit:
                chunks.append(chunk)
            elif size > MAX_DRAIN:
                break
            if not message.get("more_body", False):
                break
        if size > self.limit:
            await self._too_large(scope, receive, send)
            return
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self.refuse(413, 413, f"the request body is larger than {self.limit} bytes; "
                             "only the bundle upload (POST /api/v1/upgrade/bundles"
                             "?action=upload) takes more")
        await answer(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def parse_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object; :class:`ApiError` 400 when it is anything else."""
    too_deep = ApiError(400, 255, "the request body nests objects and arrays deeper than "
                        f"{MAX_DEPTH} levels")
    try:
        value = json.loads(body)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise ApiError(400, 255, f"the request body is not valid JSON: {exc}") from None
    if _depth(value) > MAX_DEPTH:
        raise too_deep
    if not isinstance(value, dict):
        raise ApiError(400, 255, "the request body must be a JSON object")
    return value


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in item)
    return deepest
