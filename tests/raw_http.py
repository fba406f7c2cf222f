"""HTTP/1.1 over a bare asyncio socket, for what an HTTP client library would not send:
huge or endless heads, slow bodies, idle connections, a chosen source address (every
127.0.0.0/8 address is this machine's loopback: a test picks its own "client")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class RawHttp:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, url: str, source: str = "127.0.0.1") -> RawHttp:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(
            parts.hostname, parts.port, local_addr=(source, 0), limit=1 << 20
        )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, timeout: float = 10) -> Answer:
        async with asyncio.timeout(timeout):
            status_line = await self.reader.readuntil(b"\r\n")
            status = int(status_line.split(b" ", 2)[1])
            headers: dict[str, str] = {}
            while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return Answer(status, headers, body)

    async def offer(self, pieces: Iterable[bytes]) -> tuple[Answer, int]:
        """Send `pieces` while watching for an early answer, as curl does; stop when it
        comes (or the server closes). The answer, and how many bytes went out before."""
        answer = asyncio.create_task(self.answer())
        sent = 0
        with contextlib.suppress(ConnectionError):
            for piece in pieces:
                if answer.done():
                    break
                await self.send(piece)
                sent += len(piece)
        return await answer, sent

    async def closed_by_server(self, timeout: float) -> bool:
        """Whether the server closes the connection within `timeout` (whatever it sent
        before is read and dropped)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def request(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    """A request head (the body, if any, is the caller's to send)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
