"""Every HTTP request's log lines carry its `request_id` (structlog's context variables,
app/logging.py), and the answer says it in `X-Request-ID`: the client's own, when it sent
a short plain one (a proxy's, say), else a new one. The user's id joins it once the
request's token is checked (api/routes.py)."""

from __future__ import annotations

import re
import secrets

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_GIVEN = re.compile(rb"[A-Za-z0-9._:-]{1,64}")  # anything else is replaced, never logged


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _GIVEN.fullmatch(value):
                    request_id = value.decode("ascii")
                break
        request_id = request_id or secrets.token_hex(8)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                structlog.contextvars.unbind_contextvars("user_id")
