"""A real HTTP receiver on a loopback port, for what the server calls out to (slash
command URLs): it records each request, checks its signature when it knows the secret,
and answers what the test told it to."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tidings.core.integrations import signature_ok


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool | None  # None: no secret known to check it

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


Answer = Callable[[Received], Response]


def reply(data: object, status: int = 200) -> Answer:
    return lambda _r: Response(orjson.dumps(data), status, media_type="application/json")


def empty(status: int = 200) -> Answer:
    return lambda _r: Response(b"", status)


@dataclass
class Receiver:
    secret: str | None = None
    answer: Answer = field(default_factory=empty)
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        signed = None
        if self.secret is not None:
            signed = signature_ok(
                self.secret,
                headers.get("x-tidings-timestamp", ""),
                body,
                headers.get("x-tidings-signature", ""),
            )
        got = Received(request.url.path, headers, body, signed)
        self.received.append(got)
        self.arrived.set()
        if not signed and self.secret is not None:
            return Response(b"bad signature", 401)
        return self.answer(got)

    async def __aenter__(self) -> Receiver:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = server = uvicorn.Server(config)
        server.capture_signals = _no_signals  # type: ignore[method-assign]  # in pytest
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
            await asyncio.sleep(0.005)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    async def wait(self, count: int = 1, timeout: float = 10) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


class _NoSignals:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _no_signals() -> _NoSignals:
    return _NoSignals()
