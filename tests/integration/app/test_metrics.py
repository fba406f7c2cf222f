"""/metrics on a running server (in-process, both backends): what an SRE reads there after
sends, refusals and logins, who may read it, and that promtool finds the exposition clean."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REQUIRE_SERVICES, AppServer, MakeServer, World
from tests.helpers import http_client

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(server: AppServer, headers: dict[str, str] | None = None) -> str:
    async with http_client(server.url) as c:
        r = await c.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text


async def test_sends_frames_logins_and_refusals_are_counted(world: World) -> None:
    server = world.server
    assert isinstance(server, AppServer)
    before = samples(await scrape(server))
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    ws_ann, ws_ben = await world.ws(ann), await world.ws(ben)
    for i in range(5):
        assert (await ws_ann.send_message(cid, f"hello {i}"))["type"] == "ack"
    await ann.send(cid, "over REST")
    refused = await ws_ann.send_message("no-such-conversation", "lost")
    assert refused["type"] == "error" and refused["error"]["code"] == "not_found"
    await ws_ann.send_raw("not json")
    for _ in range(6):  # ben sees all six messages
        await ws_ben.event("message")
    async with http_client(server.url) as c:
        r = await c.post("/api/v1/auth/login", json={"username": "ann", "password": "wrong-one"})
    assert r.status_code == 401

    after = samples(await scrape(server))

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("tidings_sends_acknowledged_total") == 6
    assert grew("tidings_sends_refused_total", code="not_found") == 1
    assert grew("tidings_commit_batch_size_count") >= 1
    assert grew("tidings_commit_batch_size_sum") == 7  # every send of a batch, refused too
    assert grew("tidings_commit_duration_seconds_count") == grew("tidings_commit_batch_size_count")
    assert grew("tidings_commit_duration_seconds_sum") > 0
    assert grew("tidings_ws_frames_received_total", type="auth") == 2
    assert grew("tidings_ws_frames_received_total", type="send") == 6
    assert grew("tidings_ws_frames_received_total", type="invalid") == 1
    assert grew("tidings_ws_frames_sent_total", type="ready") == 2
    assert grew("tidings_ws_frames_sent_total", type="ack") == 5
    assert grew("tidings_ws_frames_sent_total", type="error") == 2
    assert grew("tidings_ws_frames_sent_total", type="event") >= 12  # 6 messages, 2 sockets
    assert value(after, "tidings_connections", role="gateway", state="authenticated") == 2
    assert value(after, "tidings_connections", role="gateway", state="unauthenticated") == 0
    assert grew("tidings_logins_total", method="password", outcome="ok") == 3  # the owner, ann, ben
    assert grew("tidings_logins_total", method="password", outcome="invalid_credentials") == 1
    assert value(after, "tidings_event_stream_lag_events") == 0
    assert value(after, "tidings_event_stream_delivered_position") >= 6
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "process_open_fds") > 0
    assert value(after, "tidings_db_pool_size", pool="write") >= 1
    assert ("tidings_jobs_dead", ()) in after
    assert value(after, "tidings_role", role="gateway") == 1
    # bounded labels: no user or conversation id anywhere in the exposition
    text = await scrape(server)
    for secret_id in (ann.id, ben.id, cid):
        assert secret_id not in text


async def test_rate_limited_sends_are_counted_by_code_and_action(make_server: MakeServer) -> None:
    async with make_server(rate_send_per_user=2) as server:
        w = World(server)
        try:
            ann, ben = await w.users("ann", "ben")
            cid = await w.conversation(ann, ben)
            ws = await w.ws(ann)
            codes = [(await ws.send_message(cid, f"m{i}")).get("error", {}).get("code")
                     for i in range(4)]
            assert codes == [None, None, "rate_limited", "rate_limited"]
            found = samples(await scrape(server))
            assert value(found, "tidings_sends_refused_total", code="rate_limited") == 2
            assert value(found, "tidings_rate_limited_total", action="send") == 2
            assert value(found, "tidings_sends_acknowledged_total") == 2
        finally:
            await w.close()


async def test_slow_clients_and_queue_depth(make_server: MakeServer) -> None:
    """A connection that reads nothing while events pile up is closed (counted); the
    queue depth is read at scrape time."""
    async with make_server(ws_send_queue=10, metrics_cache_seconds=0) as server:
        w = World(server)
        try:
            ann, ben = await w.users("ann", "ben")
            cid = await w.conversation(ann, ben)
            ws_ben = await w.ws(ben)
            assert server.gateway is not None
            hub = server.gateway.hub
            conn = next(iter(hub.by_user[ben.id]))
            # frames waiting: queued without waking the writer, as if it were stuck on a
            # client that does not read
            for _ in range(5):
                conn._queue.append("{}")
            found = samples(await scrape(server))
            assert value(found, "tidings_fanout_queued_frames") >= 5
            assert value(found, "tidings_fanout_queue_max_frames") >= 5
            assert value(found, "tidings_fanout_queue_limit_frames") == 10
            for _ in range(20):
                conn.enqueue("{}")  # over the limit: closed, too slow
            assert conn.closed
            await ws_ben.conn.wait_closed()
            async with asyncio.timeout(5):
                while ben.id in hub.by_user:  # noqa: ASYNC110 - the gateway unregisters it
                    await asyncio.sleep(0.01)
            found = samples(await scrape(server))
            assert value(found, "tidings_slow_client_disconnects_total") == 1
            assert cid not in await scrape(server)
        finally:
            await w.close()


async def test_only_loopback_without_a_proxy_or_the_token(make_server: MakeServer) -> None:
    token = "metrics-token-" + uuid.uuid4().hex
    async with make_server() as server, http_client(server.url) as c:
        assert (await c.get("/metrics")).status_code == 200  # loopback (the test)
        r = await c.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"})
        # through a proxy: the forwarded client is not loopback, whatever the peer
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
        r = await c.get("/metrics", headers={"x-real-ip": "127.0.0.1"})
        assert r.status_code == 403
    async with make_server(metrics_token=token, metrics_networks="") as server:
        async with http_client(server.url) as c:
            r = await c.get("/metrics")
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
            r = await c.get("/metrics", headers={"authorization": "Bearer wrong"})
            assert r.status_code == 401
            r = await c.get("/metrics", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 200 and "tidings_build_info" in r.text
            r = await c.get(
                "/metrics",
                headers={"authorization": f"bearer {token}", "x-forwarded-for": "203.0.113.9"},
            )
            assert r.status_code == 200  # the token is good from anywhere
        assert token not in server.logs()


async def test_every_role_serves_metrics(make_server: MakeServer) -> None:
    for roles in (["gateway"], ["api"], ["worker"]):
        async with make_server(roles=roles) as server:
            found = samples(await scrape(server))
            assert value(found, "tidings_role", role=roles[0]) == 1
            assert value(found, "process_cpu_seconds_total") > 0
            has_gateway = ("tidings_fanout_queued_frames", ()) in found
            assert has_gateway == (roles == ["gateway"])
            assert (("tidings_jobs_dead", ()) in found) == (roles == ["worker"])


async def test_a_scrape_storm_reads_the_database_once_per_period(
    make_server: MakeServer,
) -> None:
    async with make_server(metrics_cache_seconds=60) as server:
        calls = 0
        jobs = server.container.services.jobs
        real = jobs.stats

        async def counted(actor: object) -> object:
            nonlocal calls
            calls += 1
            return await real(None)

        jobs.stats = counted  # type: ignore[assignment,method-assign]
        await asyncio.gather(*(scrape(server) for _ in range(30)))
        assert calls <= 1
        await scrape(server)
        assert calls <= 1


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if REQUIRE_SERVICES:
            pytest.fail("promtool is missing (Debian package prometheus) and "
                        "TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip("promtool is missing: apt-get install prometheus")
    return path


async def test_promtool_finds_the_exposition_clean(world: World) -> None:
    tool = promtool()
    server = world.server
    assert isinstance(server, AppServer)
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    await ann.send(cid, "hi")
    text = await scrape(server)
    checked = await asyncio.to_thread(
        subprocess.run,
        [tool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked
