"""A real HTTP receiver for webhook tests: an asyncio server on loopback that keeps every
request it gets and answers with the statuses a test gives (200 once they run out).
`LoopbackHTTP` is the server itself, which tests/push_receiver.py builds on too."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import orjson

from tidings.services.jobs import JobService


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class LoopbackHTTP:
    """An HTTP/1.1 server on loopback for tests, one request a connection: it reads each
    request whole and answers what `answer` says. `statuses` are the statuses to give, in
    order (`default_status` after them); `async with` starts and stops it."""

    default_status: ClassVar[int] = 200

    host: str = "127.0.0.1"
    statuses: list[int] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def next_status(self) -> int:
        return self.statuses.pop(0) if self.statuses else self.default_status

    async def answer(self, request: Received) -> tuple[int, bytes, dict[str, str]]:
        """The status, body and extra headers to answer this request with."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, answer, extra = await self.answer(Received(method, path, headers, body))
            more = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            head = (
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(answer)}\r\n"
                f"Connection: close\r\n{more}"
            )
            writer.write(f"{head}\r\n".encode() + answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@dataclass
class Receiver(LoopbackHTTP):
    """`async with Receiver(host="127.0.0.1") as r:` then `r.url`; `r.statuses` are the
    answers to give, in order (200 after them); `r.delay` seconds before each answer."""

    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # added to every answer
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.origin}/hook?token=receiver-side-secret"

    async def answer(self, request: Received) -> tuple[int, bytes, dict[str, str]]:
        self.received.append(request)
        status = self.next_status()
        if self.delay:
            await asyncio.sleep(self.delay)
        return status, b"ok", self.headers


async def settle(jobs: JobService, timeout: float = 20.0) -> None:
    """Run the jobs here (beside a server's own worker, which may hold some) until none
    is waiting, running or due, those waiting for a retry's backoff included."""
    async with asyncio.timeout(timeout):
        while True:
            await jobs.drain()
            stats = await jobs.stats(None)
            waiting = sum(
                n
                for states in stats.by_state.values()
                for state, n in states.items()
                if state in ("pending", "queued", "running")
            )
            if not waiting:
                return
            await asyncio.sleep(0.02)
