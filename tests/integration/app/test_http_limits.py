"""Request and connection limits of the HTTP server (app/http_protocol.py,
app/connections.py, api/limits.py), over bare sockets against the server's own uvicorn:
bodies counted while they stream (chunked too), bounded heads answered 431, slow and
idle connections closed, a cap per client address. (No store involved: SQLite only.)"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.conftest import AppServer, MakeServer
from tests.raw_http import LAST_CHUNK, RawHttp, chunk, request

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

LOGIN = "/api/v1/auth/login"


def assert_too_large(answer: object, status: int) -> None:
    from tests.raw_http import Answer

    assert isinstance(answer, Answer)
    assert answer.status == status, (answer.status, answer.body)
    assert answer.json()["error"]["code"] == "too_large"


# --- item 1: bodies ---------------------------------------------------------------
async def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(
    make_server: MakeServer,
) -> None:
    async with make_server(max_request_bytes=4096) as server:
        http = await RawHttp.connect(server.url)
        await http.send(request("POST", LOGIN, {"Transfer-Encoding": "chunked"}))
        offered = 64 * 1024  # 1 KiB chunks: 64 MiB; the limit is 4 KiB
        answer, sent = await http.offer(chunk(b"x" * 1024) for _ in range(offered))
        assert_too_large(answer, 413)
        assert answer.json()["error"]["details"] == {"limit": 4096}
        # what was read, beside what the kernel's socket buffers took (several MiB)
        assert sent < 32 * 1024 * 1024
        assert await http.closed_by_server(5)  # and it reads no more of it
        await http.close()


async def test_a_chunked_body_under_the_limit_is_served(make_server: MakeServer) -> None:
    async with make_server(max_request_bytes=4096) as server:
        http = await RawHttp.connect(server.url)
        body = orjson.dumps({"username": server.admin_username, "password": server.admin_password})
        head = request(
            "POST", LOGIN, {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
        )
        await http.send(head + chunk(body[:10]) + chunk(body[10:]) + LAST_CHUNK)
        answer = await http.answer()
        assert answer.status == 200, answer.body
        assert answer.json()["token"]
        # and the connection stays open for the next request
        await http.send(request("GET", "/healthz"))
        assert (await http.answer()).status == 200
        await http.close()


async def test_a_large_body_ending_in_one_read_is_no_request_head(server: AppServer) -> None:
    """The read in which a request's body ends (here: more than the 64 KiB head limit
    of body in one piece) is the body's, not the next request's head: it is answered,
    and the connection serves the next request."""
    http = await RawHttp.connect(server.url)
    credentials = {"username": server.admin_username, "password": server.admin_password}
    body = orjson.dumps({**credentials, "device": "x" * 500_000})
    head = request(
        "POST", LOGIN, {"Content-Length": str(len(body)), "Content-Type": "application/json"}
    )
    await http.send(head + body)
    answer = await http.answer()
    assert answer.status != 431 and answer.status < 500, answer.body
    await http.send(request("GET", "/healthz"))
    assert (await http.answer()).status == 200
    await http.close()


async def test_a_content_length_over_the_limit_is_refused_before_reading(
    make_server: MakeServer,
) -> None:
    async with make_server(max_request_bytes=4096) as server:
        http = await RawHttp.connect(server.url)
        await http.send(request("POST", LOGIN, {"Content-Length": str(1 << 30)}))
        assert_too_large(await http.answer(), 413)
        assert await http.closed_by_server(5)
        await http.close()


async def test_a_body_that_stops_coming_is_answered_408(make_server: MakeServer) -> None:
    async with make_server(body_timeout_seconds=0.5) as server:
        http = await RawHttp.connect(server.url)
        await http.send(request("POST", LOGIN, {"Content-Length": "100"}) + b'{"user')
        answer = await http.answer(timeout=5)
        assert answer.status == 408
        assert answer.json()["error"]["code"] == "invalid_request"
        assert await http.closed_by_server(5)
        await http.close()


# --- item 2: heads ------------------------------------------------------------------
async def test_a_head_over_the_size_limit_is_answered_431(server: AppServer) -> None:
    limit = server.settings.max_header_bytes
    # many header lines, each under the limit
    http = await RawHttp.connect(server.url)
    lines = {f"X-Filler-{i}": "v" * 1000 for i in range(80)}
    await http.send(request("GET", "/healthz", lines))
    answer = await http.answer()
    assert_too_large(answer, 431)
    assert answer.json()["error"]["details"] == {"limit": limit}
    assert await http.closed_by_server(5)
    await http.close()
    # one endless line: refused before it ends, without reading all of it
    http = await RawHttp.connect(server.url)
    await http.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
    answer, sent = await http.offer(b"v" * 65536 for _ in range(1024))  # 64 MiB
    assert_too_large(answer, 431)
    assert sent < 32 * 1024 * 1024  # (the kernel's socket buffers took some)
    assert await http.closed_by_server(5)
    await http.close()
    http = await RawHttp.connect(server.url)
    await http.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: " + b"v" * 2 * limit)
    assert_too_large(await http.answer(), 431)
    await http.close()


async def test_too_many_header_lines_are_answered_431(server: AppServer) -> None:
    count = server.settings.max_header_count
    http = await RawHttp.connect(server.url)
    await http.send(request("GET", "/healthz", {f"X-{i}": "1" for i in range(count)}))
    answer = await http.answer()
    assert_too_large(answer, 431)
    assert answer.json()["error"]["details"] == {"limit": count}
    await http.close()


async def test_a_head_within_the_limits_is_served(server: AppServer) -> None:
    count = server.settings.max_header_count
    http = await RawHttp.connect(server.url)
    fillers = {f"X-{i}": "v" * 500 for i in range(count - 2)}  # with Host: just under
    await http.send(request("GET", "/healthz", fillers))
    assert (await http.answer()).status == 200
    await http.send(request("GET", "/healthz"))  # the next request on the connection
    assert (await http.answer()).status == 200
    await http.close()


# --- item 5: slow and idle connections, the cap per address --------------------------
async def test_slow_and_idle_connections_are_closed_after_the_header_timeout(
    make_server: MakeServer,
) -> None:
    async with make_server(header_timeout_seconds=0.5) as server:
        idle = await RawHttp.connect(server.url)  # connects, never sends
        slow = await RawHttp.connect(server.url)  # a slowloris: a line every 0.1 s
        kept = await RawHttp.connect(server.url)  # a request, then another one slowly

        async def trickle(http: RawHttp) -> None:
            for i in range(60):
                await http.send(f"X-{i}: 1\r\n".encode())
                await asyncio.sleep(0.1)

        await slow.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        slow_sender = asyncio.create_task(trickle(slow))
        await kept.send(request("GET", "/healthz"))
        assert (await kept.answer()).status == 200
        await kept.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        kept_sender = asyncio.create_task(trickle(kept))
        try:
            closed = await asyncio.gather(
                idle.closed_by_server(3), slow.closed_by_server(3), kept.closed_by_server(3)
            )
            assert closed == [True, True, True]
        finally:
            for task in (slow_sender, kept_sender):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        # a client that sends its request at once is served as ever
        http = await RawHttp.connect(server.url)
        await http.send(request("GET", "/healthz"))
        assert (await http.answer()).status == 200
        for h in (idle, slow, kept, http):
            await h.close()


async def test_one_address_holds_at_most_its_cap_of_connections(
    make_server: MakeServer,
) -> None:
    async with make_server(max_connections_per_address=3) as server:
        held = [await RawHttp.connect(server.url, source="127.0.0.2") for _ in range(3)]
        over = await RawHttp.connect(server.url, source="127.0.0.2")
        assert await over.closed_by_server(2)  # refused at once
        # others are served: another address, and a trusted proxy (127.0.0.1)
        for source in ("127.0.0.3", "127.0.0.1"):
            http = await RawHttp.connect(server.url, source=source)
            await http.send(request("GET", "/healthz"))
            assert (await http.answer()).status == 200
            await http.close()
        proxied = [await RawHttp.connect(server.url) for _ in range(5)]
        for http in proxied:
            await http.send(request("GET", "/healthz"))
            assert (await http.answer()).status == 200
        # one of the three closes: the address may connect again
        await held.pop().close()
        await asyncio.sleep(0.2)
        again = await RawHttp.connect(server.url, source="127.0.0.2")
        await again.send(request("GET", "/healthz"))
        assert (await again.answer()).status == 200
        assert "address_connection_limit" in server.logs()
        for http in [*held, over, again, *proxied]:
            await http.close()
        await server.counts_nothing()
