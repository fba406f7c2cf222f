"""Resource exhaustion against the real server process: a huge chunked body does not
grow the server's memory, and a flood of idle sockets beyond the open-files limit does
not keep a new client out (docs/security.md, "Request and connection limits")."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import select
import socket
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, LiveServer, free_port
from tests.helpers import USER_PASSWORD, Ws, login, make_user

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_huge_chunked_body_does_not_grow_the_server(live_server: LiveServer) -> None:
    """64 MiB chunked to the login route (no authentication needed): answered 413 after
    the first MiB (max_request_bytes), and the server's memory stays where it was."""
    before = peak = rss_mib(live_server.pid)
    sock = socket.create_connection(("127.0.0.1", live_server.port))
    sock.sendall(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    answer = b""
    sent = 0
    try:
        while sent < 64 * MIB:
            if select.select([sock], [], [], 0)[0]:  # an early answer, as curl reads it
                break
            sock.sendall(piece)
            sent += len(piece)
            if sent % MIB < len(piece):
                peak = max(peak, rss_mib(live_server.pid))
    except OSError:
        pass  # the server closed it
    sock.settimeout(5)
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            answer += chunk
    sock.close()
    peak = max(peak, rss_mib(live_server.pid))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"code":"too_large"' in answer
    assert sent < 48 * MIB  # it stopped reading (the kernel's buffers took a few MiB)
    assert peak - before < 16, (before, peak)


def _read_answer(sock: socket.socket) -> bytes:
    """One HTTP answer with a Content-Length body, read off a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed inside an answer"
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_request_that_arrives_in_one_read_is_answered_and_kept_alive(
    live_server: LiveServer,
) -> None:
    """A request whose head and 69 KB body (over max_header_bytes) come in one read is
    answered, and the connection serves the next request (the whole read was once
    counted as an unfinished head: the connection was dropped unanswered)."""
    body = b'{"url": "https://example.com/' + b"x" * 69_000 + b'", "events": ["message"]}'
    sock = socket.create_connection(("127.0.0.1", live_server.port))
    sock.settimeout(10)
    try:
        sock.sendall(
            b"POST /api/v1/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer not-a-token\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        answer = _read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
        assert b"connection: close" not in answer.lower()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
    finally:
        sock.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_answer_before_the_body_is_in_says_the_connection_closes(
    live_server: LiveServer,
) -> None:
    """A body over max_request_bytes is answered 413 before it is read: the answer says
    `connection: close` (a client must not send its next request on it), and the client
    still reads the whole answer while it goes on sending; the server then closes."""
    sock = socket.create_connection(("127.0.0.1", live_server.port))
    sock.settimeout(10)
    try:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (8 * MIB)
        )
        with contextlib.suppress(OSError):
            for _ in range(16):  # some of the body, as a client that does not wait
                sock.sendall(b"x" * 64 * 1024)
        answer = _read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"connection: close" in answer.lower()
        ended = b""
        with contextlib.suppress(OSError):
            ended = sock.recv(65536)
        assert ended == b""  # closed, nothing more
    finally:
        sock.close()


def _low_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


async def test_idle_sockets_beyond_the_open_files_limit_do_not_keep_clients_out(
    tmp_path: Path,
) -> None:
    """Under `ulimit -n 256` (the default reserve of 128 leaves 128 connections), 400
    idle sockets from 40 addresses: a fresh client still logs in and sends, a client
    connected before still receives, and the server never runs out of descriptors."""
    server = LiveServer(
        tmp_path / "data",
        free_port(),
        env={"TIDINGS_HEADER_TIMEOUT_SECONDS": "60"},  # the flood stays while we look
        preexec=_low_open_files,
    )
    server.start()
    flood: list[socket.socket] = []
    try:
        admin = await login(server.url, server.admin_username, server.admin_password)
        ann, ben = await make_user(admin, "ann"), await make_user(admin, "ben")
        conv = await ann.post(
            "/conversations", {"kind": "group", "name": "g", "member_ids": [ben.id]}, expect=201
        )
        cid = conv["conversation"]["id"]
        ann_ws = await Ws.connect(server.ws_url, ann.token or "")
        for i in range(400):
            sock = socket.socket()
            sock.bind((f"127.0.0.{2 + i // 10}", 0))
            sock.connect(("127.0.0.1", server.port))
            flood.append(sock)
        await asyncio.sleep(0.5)  # the server has accepted what it takes
        assert open_files(server.pid) < 256
        # a fresh client: new connections for its login, its REST send and its socket
        fresh = await login(server.url, "ben", USER_PASSWORD)
        ben_ws = await Ws.connect(server.ws_url, fresh.token or "")
        await fresh.send(cid, "over REST")
        ack = await ben_ws.send_message(cid, "over the socket")
        assert ack["type"] == "ack", ack
        bodies = []
        while len(bodies) < 2:
            frame = await ann_ws.recv_type("event")
            if frame["event"]["kind"] == "message":
                bodies.append(frame["event"]["message"]["body"])
        assert bodies == ["over REST", "over the socket"]
        assert open_files(server.pid) < 256
        for api in (admin, ann, ben, fresh):
            await api.close()
        await ann_ws.close()
        await ben_ws.close()
    finally:
        for sock in flood:
            sock.close()
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())
    logs = server.logs()
    assert logs.count('"connection_limit"') == 1, logs[-3000:]
    assert "Too many open files" not in logs
