"""The limits every HTTP request meets before a route sees it: no NUL in its URL, a body
of at most `max_request_bytes` (counted while it streams in, whatever its transfer
encoding), each piece of it within `body_timeout_seconds`.

A pure ASGI middleware around `receive`: the body is never buffered here, and one over
the limit is answered `413 too_large` as soon as its bytes say so. The route, still
waiting for its body, is told the client went away and its own answer is dropped; the
server closes a connection answered before its body was in, reading no more of it
(app/http_protocol.py `_linger`).

Uploads (`POST /api/v1/files`, `upload_paths`) stream into the blob store and have their
own, larger limit (`upload_body_bytes`: max_upload_bytes and room for the multipart
framing); the files service counts the file itself against max_upload_bytes exactly."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.errors import error_body
from tidings.core.errors import ErrorCode

_GONE: Message = {"type": "http.disconnect"}


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout: float,
        upload_paths: frozenset[str] = frozenset(),
        upload_body_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.upload_paths = upload_paths
        self.upload_body_bytes = upload_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"%00" in raw.lower() or b"\x00" in raw:
            why = "the URL must not contain NUL characters"
            await _answer(send, 400, ErrorCode.INVALID_REQUEST, why)
            return
        limit = self.max_body_bytes
        if scope["method"] == "POST" and scope["path"] in self.upload_paths:
            limit = max(limit, self.upload_body_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                # refused before a byte of the body is read
                why = f"request body over {limit} bytes"
                await _answer(send, 413, ErrorCode.TOO_LARGE, why, limit)
                return
        received = 0
        body_done = False  # then `receive` only waits for the client to go away: untimed
        answered = False  # by this middleware: the application's answer is dropped
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done, answered
            if answered:
                return _GONE
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout):
                    message = await receive()
            except TimeoutError:
                why = f"request body not received within {self.body_timeout:g} s"
                answered = await _refuse(started, send, 408, ErrorCode.INVALID_REQUEST, why)
                return _GONE
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    why = f"request body over {limit} bytes"
                    answered = await _refuse(started, send, 413, ErrorCode.TOO_LARGE, why, limit)
                    return _GONE
                body_done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _refuse(
    started: bool, send: Send, status: int, code: ErrorCode, message: str, limit: int | None = None
) -> bool:
    """Answer in the application's stead, unless it has begun its own answer (then the
    connection only closes: uvicorn closes one whose response never ends)."""
    if not started:
        await _answer(send, status, code, message, limit)
    return True


async def _answer(
    send: Send,
    status: int,
    code: ErrorCode,
    message: str,
    limit: int | None = None,
) -> None:
    body = error_body(code, message, {} if limit is None else {"limit": limit})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
