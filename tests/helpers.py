"""Test helpers: a REST client per user and a WebSocket client, as a real client would.

HTTP clients made here reach an in-process server (tests/conftest.py `AppServer`)
through its ASGI transport, registered under its base URL in `TRANSPORTS`; any other
URL (a real server process) over the network."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import websockets

_refs = itertools.count(1)

# Origin ("http://127.0.0.1:port") of an in-process server -> its ASGI transport.
TRANSPORTS: dict[str, httpx.AsyncBaseTransport] = {}


def http_client(base_url: str = "", **kw: Any) -> httpx.AsyncClient:
    """An httpx client of `base_url`: in-process when a test's server serves it there."""
    parts = urlsplit(base_url)
    transport = TRANSPORTS.get(f"{parts.scheme}://{parts.netloc}")
    if transport is not None:
        kw.setdefault("transport", transport)
    return httpx.AsyncClient(base_url=base_url, **kw)


class ApiError(AssertionError):
    pass


class Api:
    """One signed-in user over REST."""

    def __init__(self, base_url: str, token: str | None = None, user: dict[str, Any] | None = None):
        self.base_url = base_url
        self.token = token
        self.user = user or {}
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = http_client(base_url + "/api/v1", headers=headers, timeout=30)

    @property
    def id(self) -> str:
        return str(self.user["id"])

    async def call(self, method: str, path: str, *, expect: int | None = None, **kw: Any) -> Any:
        r = await self.http.request(method, path, **kw)
        if expect is not None and r.status_code != expect:
            raise ApiError(f"{method} {path}: expected {expect}, got {r.status_code} {r.text}")
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    async def get(self, path: str, expect: int | None = 200, **kw: Any) -> Any:
        return await self.call("GET", path, expect=expect, **kw)

    async def post(self, path: str, body: Any = None, expect: int | None = 200, **kw: Any) -> Any:
        return await self.call("POST", path, expect=expect, json=body, **kw)

    async def send(
        self, cid: str, body: str, client_msg_id: str | None = None, **extra: Any
    ) -> Any:
        data = {"client_msg_id": client_msg_id or uuid.uuid4().hex, "body": body, **extra}
        return (await self.post(f"/conversations/{cid}/messages", data, expect=None))["message"]

    async def close(self) -> None:
        await self.http.aclose()


async def login(base_url: str, username: str, password: str) -> Api:
    async with http_client(base_url) as c:
        r = await c.post("/api/v1/auth/login", json={"username": username, "password": password})
    if r.status_code != 200:
        raise ApiError(f"login {username}: {r.status_code} {r.text}")
    data = r.json()
    return Api(base_url, data["token"], data["user"])


# make_user's default password: one the password policy accepts (zxcvbn score 4)
USER_PASSWORD = "plum-orbit-123"


async def make_user(
    admin: Api,
    username: str,
    *,
    role: str = "member",
    display_name: str | None = None,
    password: str = USER_PASSWORD,
) -> Api:
    await admin.post(
        "/users",
        {
            "username": username,
            "password": password,
            "role": role,
            "display_name": display_name or username.title(),
        },
        expect=201,
    )
    return await login(admin.base_url, username, password)


async def resume_refused(ws_url: str, token: str, since: str) -> tuple[list[dict[str, Any]], int]:
    """Authenticate with `since` and read until the server closes: the frames it sent
    and the close code."""
    async with websockets.connect(ws_url) as conn:
        await conn.send(orjson.dumps({"type": "auth", "token": token, "since": since}).decode())
        frames = []
        try:
            while True:
                frames.append(orjson.loads(await asyncio.wait_for(conn.recv(), 5)))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, frames
            return frames, closed.rcvd.code


class Ws:
    """A WebSocket client: keeps every frame it gets, in order."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.ready: dict[str, Any] = {}
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.last_position = "0"

    @classmethod
    async def connect(cls, ws_url: str, token: str, since: str | None = None) -> Ws:
        conn = await websockets.connect(ws_url, max_size=None)
        ws = cls(conn)
        frame: dict[str, Any] = {"type": "auth", "token": token}
        if since is not None:
            frame["since"] = since
        await conn.send(orjson.dumps(frame).decode())
        ws.ready = await ws.recv()
        assert ws.ready["type"] == "ready", ws.ready
        ws.last_position = ws.ready["position"] if since is None else since
        return ws

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(self.conn.recv(), timeout))
        if frame.get("type") == "event":
            self.last_position = frame["position"]
        return frame

    async def recv_type(self, *types: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame of one of these types (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame["type"] in types:
                    return frame

    async def event(self, kind: str | None = None, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv_type("event", timeout=timeout)
                if kind is None or frame["event"]["kind"] == kind:
                    return frame

    async def request(self, frame: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send a frame with a fresh ref and return its ack or error (other frames skipped)."""
        ref = next(_refs)
        await self.conn.send(orjson.dumps({**frame, "ref": ref}).decode())
        async with asyncio.timeout(timeout):
            while True:
                reply = await self.recv(timeout)
                if reply["type"] in ("ack", "error") and reply.get("ref") == ref:
                    return reply

    async def send_message(self, cid: str, body: str, timeout: float = 10) -> dict[str, Any]:
        """Send a message (a fresh client_msg_id) and return its ack or error."""
        frame = {
            "type": "send",
            "conversation_id": cid,
            "client_msg_id": uuid.uuid4().hex,
            "body": body,
        }
        return await self.request(frame, timeout)

    async def send_raw(self, text: str | bytes) -> None:
        await self.conn.send(text)

    async def close(self) -> None:
        await self.conn.close()
