"""Faults of what the server stands on (docs/security.md, "Faults"): another process
holding the database's write lock, a data file the server can no longer write."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ARTIFACTS, REQUIRE_SERVICES, Backend, LiveServer, free_port
from tests.helpers import Api, Ws, login, make_user
from tests.security_helpers import server_with
from tidings.app.fatal import bus_error_line

pytestmark = pytest.mark.e2e

LOCK_BOUND_S = 1.0  # write_lock_timeout_seconds of these servers
SLACK_S = 2.5  # generous: a loaded machine; the old server took 10 s and more


def _holder_script(backend: Backend, data_dir: Path) -> str:
    """Another process that takes the database's write lock, says `locked`, and holds it
    until a line arrives on its stdin: SQLite's BEGIN IMMEDIATE on the file, or on
    PostgreSQL the stream counter's row that every write transaction locks first."""
    if backend.database_url is None:
        return f"""
import sqlite3, sys
db = sqlite3.connect({str(data_dir / "tidings.db")!r}, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.rollback()
"""
    return f"""
import asyncio, sys
import asyncpg
async def main():
    conn = await asyncpg.connect({backend.database_url!r})
    tx = conn.transaction()
    await tx.start()
    await conn.execute("SELECT value FROM counters WHERE name = 'events' FOR UPDATE")
    print("locked", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await tx.rollback()
    await conn.close()
asyncio.run(main())
"""


@contextlib.asynccontextmanager
async def write_lock_held(backend: Backend, data_dir: Path) -> AsyncIterator[None]:
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _holder_script(backend, data_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 20)
        assert line.strip() == b"locked", line
        yield
        holder.stdin.write(b"release\n")
        await holder.stdin.drain()
        assert await asyncio.wait_for(holder.wait(), 20) == 0
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


def server_with_bound(
    tmp_path: Path, backend: Backend
) -> contextlib.AbstractContextManager[LiveServer]:
    return server_with(
        tmp_path, {**backend.env, "TIDINGS_WRITE_LOCK_TIMEOUT_SECONDS": str(LOCK_BOUND_S)}
    )


async def direct_conversation(server: LiveServer) -> tuple[Api, str]:
    """alice (who is returned) and bob, and their direct conversation with one message."""
    admin = await login(server.url, server.admin_username, server.admin_password)
    alice, bob = await make_user(admin, "alice"), await make_user(admin, "bob")
    conv = await alice.post(
        "/conversations", {"kind": "direct", "member_ids": [bob.id]}, expect=201
    )
    cid: str = conv["conversation"]["id"]
    await alice.send(cid, "before")
    return alice, cid


async def timed_get(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.get(url, timeout=30)
    return response, time.monotonic() - started


async def test_held_write_lock_bounds_writes_and_reads_go_on(
    tmp_path: Path, backend: Backend
) -> None:
    """Another process holds the write lock past the bound: /healthz, /readyz and a
    history read answer at once; a send over REST and one over the WebSocket answer
    `unavailable` after the bound, nothing acknowledged; once the lock is released the
    next send succeeds by itself and history holds none of the refused ones."""
    with server_with_bound(tmp_path, backend) as server:
        alice, cid = await direct_conversation(server)
        history_url = f"{server.url}/api/v1/conversations/{cid}/messages"
        ws = await Ws.connect(server.ws_url, alice.token or "")
        headers = {"authorization": f"Bearer {alice.token}"}
        async with httpx.AsyncClient(headers=headers) as client:
            async with write_lock_held(backend, server.data_dir):

                async def rest_send() -> tuple[httpx.Response, float]:
                    started = time.monotonic()
                    r = await client.post(
                        history_url,
                        json={"client_msg_id": uuid.uuid4().hex, "body": "refused over REST"},
                        timeout=60,
                    )
                    return r, time.monotonic() - started

                async def ws_send() -> tuple[dict[str, object], float]:
                    started = time.monotonic()
                    reply = await ws.send_message(cid, "refused over the WebSocket", timeout=60)
                    return reply, time.monotonic() - started

                sending = asyncio.gather(rest_send(), ws_send())
                await asyncio.sleep(0.2)  # both sends now wait for the lock
                health, health_s = await timed_get(client, server.url + "/healthz")
                ready, ready_s = await timed_get(client, server.url + "/readyz")
                page, page_s = await timed_get(client, history_url)
                (rest, rest_s), (reply, ws_s) = await sending

            assert health.status_code == 200 and health_s < 2, (health.status_code, health_s)
            assert ready.status_code == 200 and ready_s < 2, (ready.text, ready_s)
            assert page.status_code == 200 and page_s < 2, (page.status_code, page_s)
            assert [m["body"] for m in page.json()["messages"]] == ["before"]

            assert rest.status_code == 503, rest.text
            assert rest.json()["error"]["code"] == "unavailable"
            assert LOCK_BOUND_S * 0.8 <= rest_s < LOCK_BOUND_S + SLACK_S, rest_s
            assert reply["type"] == "error", reply
            assert reply["error"]["code"] == "unavailable", reply  # type: ignore[index]
            assert ws_s < LOCK_BOUND_S + SLACK_S, ws_s

            # Released: writes work again by themselves, over both transports.
            after = await alice.send(cid, "after, over REST")
            assert after["seq"] == 2, after
            acked = await ws.send_message(cid, "after, over the WebSocket")
            assert acked["type"] == "ack", acked
            bodies = [m["body"] for m in (await client.get(history_url)).json()["messages"]]
            assert bodies == ["before", "after, over REST", "after, over the WebSocket"]
        await ws.close()


async def test_under_a_held_write_lock_each_write_is_bounded_from_its_own_start(
    tmp_path: Path, backend: Backend
) -> None:
    """Writes keep coming while the lock stays held for several bounds: sends (group
    commit, retried alone after a failed batch) and read positions (one transaction
    each) taking this node's write slot in turn. Each answers `unavailable` within the
    bound of its own start, none queues up behind the others' waits (before: sends
    waited for every read position ahead of them, up to the lock's release)."""
    with server_with_bound(tmp_path, backend) as server:
        alice, cid = await direct_conversation(server)
        headers = {"authorization": f"Bearer {alice.token}"}
        base = f"{server.url}/api/v1/conversations/{cid}"
        async with (
            httpx.AsyncClient(headers=headers, timeout=60) as client,
            write_lock_held(backend, server.data_dir),
        ):

            async def write(i: int) -> tuple[str, int, float]:
                await asyncio.sleep(i * 0.1)  # over five bounds
                started = time.monotonic()
                if i % 3 == 0:
                    kind, r = "read", await client.post(f"{base}/read", json={"seq": 1})
                else:
                    body = {"client_msg_id": uuid.uuid4().hex, "body": f"refused {i}"}
                    kind, r = "send", await client.post(f"{base}/messages", json=body)
                return kind, r.status_code, time.monotonic() - started

            outcomes = await asyncio.gather(*(write(i) for i in range(50)))
        assert {status for _, status, _ in outcomes} == {503}, outcomes
        slowest = max(outcomes, key=lambda o: o[2])
        assert slowest[2] < LOCK_BOUND_S + SLACK_S, (slowest, outcomes)
        page = await alice.get(f"/conversations/{cid}/messages")
        assert [m["body"] for m in page["messages"]] == ["before"]
        assert (await alice.send(cid, "after"))["seq"] == 2


async def test_a_data_file_failing_under_the_server_is_one_line_and_a_non_zero_exit(
    tmp_path: Path,
) -> None:
    """The SQLite WAL index (tidings.db-shm, mapped into memory) is truncated while the
    server runs, as a failing disk or a careless tool would: the next access raises
    SIGBUS. The server exits non-zero (EX_IOERR) with one line on stderr that names the
    data directory, no traceback; before, it died silently."""
    server = LiveServer(tmp_path / "data", free_port())
    server.start()
    try:
        admin = await login(server.url, server.admin_username, server.admin_password)
        alice = await make_user(admin, "alice")
        cid = (await alice.post("/conversations", {"kind": "channel", "name": "c"}, expect=201))[
            "conversation"
        ]["id"]
        await alice.send(cid, "before")
        shm = server.data_dir / "tidings.db-shm"
        assert shm.stat().st_size > 0
        os.truncate(shm, 0)
        with contextlib.suppress(httpx.HTTPError):
            await alice.send(cid, "after")
        assert server.proc is not None
        code = await asyncio.to_thread(server.proc.wait, 30)
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())
    logs = server.logs()
    assert code == 74, (code, logs[-2000:])
    line = bus_error_line(server.data_dir.resolve())
    assert [each for each in logs.splitlines() if "SIGBUS" in each] == [line], logs[-2000:]
    assert "Traceback" not in logs and "Fatal Python error" not in logs, logs[-2000:]


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path` (root only: skipped where it cannot be mounted, except
    under TIDINGS_REQUIRE_SERVICES=1, where it fails: CI runs as root)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        message = f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_a_full_disk_answers_unavailable_and_recovers_when_space_returns(
    tmp_path: Path,
) -> None:
    """The data directory's disk fills up: sends answer 503 `unavailable` saying the
    disk is full (nothing written, nothing acknowledged), reads and /healthz go on;
    once there is room again the next send succeeds, with the next seq."""
    with small_disk(tmp_path / "disk", "2m") as disk:
        server = LiveServer(disk / "data", free_port())
        server.log_path = tmp_path / "server.log"  # not on the full disk
        server.start()
        try:
            admin = await login(server.url, server.admin_username, server.admin_password)
            alice = await make_user(admin, "alice")
            cid = (
                await alice.post("/conversations", {"kind": "channel", "name": "c"}, expect=201)
            )["conversation"]["id"]
            stored = 0
            refused: httpx.Response | None = None
            async with httpx.AsyncClient(
                headers={"authorization": f"Bearer {alice.token}"}, timeout=30
            ) as client:
                url = f"{server.url}/api/v1/conversations/{cid}/messages"
                for i in range(400):  # 16 KiB each: the 2 MiB disk is full long before
                    r = await client.post(
                        url, json={"client_msg_id": f"m{i}", "body": f"{i:04} " + "x" * 16000}
                    )
                    if r.status_code != 201:
                        refused = r
                        break
                    stored += 1
                assert refused is not None and refused.status_code == 503, refused
                assert refused.json()["error"]["code"] == "unavailable"
                assert "disk is full" in refused.json()["error"]["message"], refused.text
                assert (await client.get(server.url + "/healthz")).status_code == 200
                page = (await client.get(url, params={"limit": 1})).json()["messages"]
                assert page[-1]["seq"] == stored  # nothing of the refused one

                remount = ["mount", "-o", "remount,size=64m", str(disk)]
                grown = await asyncio.to_thread(subprocess.run, remount, check=False)
                assert grown.returncode == 0
                r = await client.post(url, json={"client_msg_id": "again", "body": "room"})
                assert r.status_code == 201, r.text
                assert r.json()["message"]["seq"] == stored + 1
        finally:
            server.stop()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())
